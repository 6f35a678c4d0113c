"""Classical matting baselines: closed-form, KNN, large-kernel and random-walk matting.

Thin wrappers around pymatting's ``estimate_alpha_*`` functions so that the evaluation can run
them next to a DiffMatte model on the same images and trimaps. The solvers keep pymatting's
default parameters (listed in :data:`CLASSICAL_METHODS`), because those are what a user of
pymatting gets and what published pymatting comparisons use.

pymatting is imported on first use: its import compiles numba kernels (about a minute the
first time after installation, cached afterwards), which a DiffMatte-only run should not pay.

Example
-------
>>> import numpy as np
>>> image = np.zeros((4, 4, 3))
>>> trimap = np.array([[0, 0, 255, 255]] * 4, dtype=np.uint8)  # nothing unknown
>>> estimate_alpha("cf", image, trimap)[0]
array([0., 0., 1., 1.])
"""
from __future__ import annotations

import contextlib
import functools
import logging
from io import StringIO
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from ..errors import DiffMatteError, InputError
from ..io import trimap_from_array

__all__ = ["CLASSICAL_METHODS", "NoSolution", "estimate_alpha", "pymatting_version"]

logger = logging.getLogger(__name__)

#: Method name -> what it is, with pymatting's defaults that every run here uses.
CLASSICAL_METHODS: dict[str, str] = {
    "cf": "closed-form matting (Levin et al. 2008); pymatting estimate_alpha_cf: "
    "epsilon 1e-7, radius 1, CG with incomplete-Cholesky preconditioner",
    "cf-amg": "closed-form matting as cf, the same linear system to the same tolerance, with pyamg's "
    "smoothed-aggregation multigrid as the CG preconditioner (large unknown regions: minutes, not hours; "
    "pip install pyamg)",
    "knn": "KNN matting (Chen et al. 2013); pymatting estimate_alpha_knn: "
    "n_neighbors [20, 10], distance weights [2, 0.1], binary kernel, CG with Jacobi preconditioner",
    "knn-amg": "KNN matting as knn, the same linear system to the same tolerance, with pyamg's "
    "smoothed-aggregation multigrid as the CG preconditioner (pip install pyamg)",
    "lkm": "large-kernel matting Laplacian (He et al. 2010); pymatting estimate_alpha_lkm: "
    "epsilon 1e-7, radius 10, CG with Jacobi preconditioner",
    "rw": "random-walk matting (Grady et al. 2005); pymatting estimate_alpha_rw: "
    "sigma 0.033, radius 1, CG with Jacobi preconditioner",
}

# pymatting's large-kernel box filter needs h - 2r >= 2r + 1 on both sides (radius r = 10).
_LKM_MIN_SIDE = 4 * 10 + 1

_SolverFn = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


class NoSolution(DiffMatteError):
    """The solver did not converge (pymatting's CG stops after 10000 iterations): no matte to score."""


def pymatting_version() -> str:
    """Installed pymatting version, read without importing it (no numba compilation)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pymatting")
    except PackageNotFoundError:
        return "not installed"


def _solver(method: str) -> _SolverFn:
    """The pymatting function for ``method``; imported late (see the module docstring)."""
    try:
        import pymatting
    except ImportError as e:  # a broken install, not a user mistake: let it surface as such
        raise ImportError("the classical baselines need pymatting: pip install pymatting") from e
    if method == "cf-amg":
        return functools.partial(pymatting.estimate_alpha_cf, preconditioner=_amg_preconditioner)
    if method == "knn-amg":
        return functools.partial(pymatting.estimate_alpha_knn, preconditioner=_amg_preconditioner)
    solvers: dict[str, _SolverFn] = {
        "cf": pymatting.estimate_alpha_cf,
        "knn": pymatting.estimate_alpha_knn,
        "lkm": pymatting.estimate_alpha_lkm,
        "rw": pymatting.estimate_alpha_rw,
    }
    return solvers[method]


def _amg_preconditioner(matrix):  # type: ignore[no-untyped-def]
    try:
        import pyamg
    except ImportError as e:
        raise InputError("methods cf-amg and knn-amg need pyamg: pip install pyamg (or diffmatte[eval])") from e
    return pyamg.smoothed_aggregation_solver(matrix.tocsr()).aspreconditioner()


def _check_image(image: NDArray) -> NDArray[np.float64]:
    """``image`` as contiguous float64 (H, W, 3) in [0, 1], the layout pymatting's kernels need."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"image must be (H, W, 3) RGB, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"image must be uint8 or float in [0, 1], got dtype {a.dtype}")
    if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
        raise InputError(f"float image values must lie in [0, 1], got range [{a.min():g}, {a.max():g}]")
    return np.ascontiguousarray(a, dtype=np.float64)


def estimate_alpha(method: str, image: NDArray, trimap: NDArray) -> NDArray[np.float64]:
    """Alpha matte of one image by a classical method.

    Parameters
    ----------
    method : {"cf", "cf-amg", "knn", "knn-amg", "lkm", "rw"}
        Which solver (see :data:`CLASSICAL_METHODS`).
    image : numpy.ndarray
        (H, W, 3) RGB, uint8 or float in [0, 1].
    trimap : numpy.ndarray
        (H, W), uint8 (0 background, 255 foreground, anything else unknown) or float in
        [0, 1] (0 background, 1 foreground); quantised with :func:`diffmatte.io.trimap_from_array`,
        the same rule DiffMatte's ``predict`` uses.

    Returns
    -------
    numpy.ndarray
        (H, W) float64 alpha in [0, 1]. Known trimap pixels are exactly 0 or 1.

    Raises
    ------
    ValueError
        If ``method`` is unknown.
    InputError
        If the shapes or value ranges are wrong, the image is too small for "lkm" (41 px per
        side), or the trimap has no known pixel at all (every constant matte then fits the
        equations equally well, so there is no answer to give).
    NoSolution
        If the solver's conjugate gradients do not converge (pymatting's 10000 iterations).
    """
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"unknown classical method {method!r}; known: {', '.join(CLASSICAL_METHODS)}")
    img = _check_image(image)
    tri = trimap_from_array(np.asarray(trimap)).astype(np.float64)  # {0, 0.5, 1}
    if tri.shape != img.shape[:2]:
        raise InputError(f"trimap has shape {tri.shape} but the image is {img.shape[:2]}")
    known_only = _alpha_without_solving(tri)
    if known_only is not None:
        return known_only
    if method == "lkm" and min(tri.shape) < _LKM_MIN_SIDE:
        raise InputError(f"lkm needs images of at least {_LKM_MIN_SIDE} px per side, got {tri.shape[1]}x{tri.shape[0]}")
    try:
        alpha = np.asarray(_quietly(_solver(method), img, tri), dtype=np.float64).reshape(tri.shape)
    except ValueError as e:
        if "did not converge" not in str(e):
            raise
        raise NoSolution(f"{method}: {e}") from e
    # KNN, LKM and RW only pull known pixels towards 0 and 1 (soft constraints). Writing the
    # trimap's known regions, as DiffMatte's pipeline does, makes the comparison differ only
    # in the unknown region; Grad and Conn would otherwise see the known pixels' residue.
    return np.where(tri == 0.5, alpha, tri)


def _quietly(solver: _SolverFn, image: NDArray[np.float64], trimap: NDArray[np.float64]) -> NDArray[np.float64]:
    """Run ``solver`` with its ``print`` output sent to the log instead of stdout.

    pymatting's incomplete-Cholesky preconditioner (used by "cf") prints a performance note
    when it has to retry with a diagonal shift; the result is still the CG solution, and a
    library must not write into its caller's stdout (the CLI prints its table there).
    """
    captured = StringIO()
    with contextlib.redirect_stdout(captured):
        alpha = solver(image, trimap)
    if captured.getvalue().strip():
        logger.info("pymatting: %s", " ".join(captured.getvalue().split()))
    return alpha


def _alpha_without_solving(trimap: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """The matte when the trimap leaves nothing to solve for, else None.

    pymatting raises when the trimap lacks foreground or background, and a solver on zero
    unknowns has nothing to do. The answers follow from the Laplacian formulation: constant
    mattes are in the Laplacian's null space, so with only background constraints the
    minimiser is 0 everywhere, and with only foreground constraints it is 1.
    """
    unknown = trimap == 0.5
    if not unknown.any():
        return trimap.copy()
    has_fg, has_bg = bool((trimap == 1.0).any()), bool((trimap == 0.0).any())
    if not has_fg and not has_bg:
        raise InputError("trimap has no known pixel (all unknown); a classical matting method needs some")
    if has_fg and has_bg:
        return None
    return np.where(unknown, 1.0 if has_fg else 0.0, trimap)
