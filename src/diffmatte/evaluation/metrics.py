"""Composition-1k matting metrics: SAD, MSE, Grad and Conn.

A NumPy/SciPy port of the MATLAB evaluation code released with Deep Image
Matting (DIM, Xu et al. 2017), which is where the numbers in Composition-1k
tables come from.  The specification followed here is
``shared/reference/metrics/DEFINITIONS.md`` (cited below as "DEFINITIONS,
<section>"); the reference kit beside it holds MATLAB-computed values for 33
cases, and this module agrees with them to about 1e-6 relative.

Every metric is called as ``f(pred, gt, trimap) -> float`` with three 2-D
``numpy.uint8`` arrays of the same shape (alpha values 0..255, trimap
0/128/255).  Only pixels with ``trimap == 128`` are scored, but Grad and Conn
are computed on the full image first (DEFINITIONS, "Common conventions"), so
do not crop the inputs.  The values are returned in the units of published
tables (DEFINITIONS, "Reported units"):

=====  =====================================================================
sad    sum over the unknown region of ``|p - g|`` (``p = pred/255``), / 1000
mse    mean over the unknown region of ``(p - g)**2``, x 1000
grad   sum over the unknown region of the squared difference of gradient
       magnitudes (derivative of Gaussian, sigma = 1.4), / 1000
conn   connectivity error (threshold step 0.1, theta = 0.15,
       4-connectivity), / 1000
=====  =====================================================================

A paper number is the mean of these per-image values over the test set.

Examples
--------
>>> import numpy as np
>>> gt = np.zeros((4, 4), np.uint8); gt[:, 2:] = 255
>>> pred = gt.copy(); pred[0, 0] = 51
>>> trimap = np.full((4, 4), 128, np.uint8)
>>> round(sad(pred, gt, trimap), 6)
0.0002
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["sad", "mse", "grad", "conn", "compute_all"]

#: Trimap value of the scored ("unknown") region; only exact matches count
#: (DEFINITIONS, "Common conventions": 127, 129 or 64 are not scored).
UNKNOWN_VALUE = 128

# Gradient error constants (DEFINITIONS, "Gradient error", step 2).
_GRAD_SIGMA = 1.4
_GRAD_EPSILON = 1e-2

# Connectivity error constants (DEFINITIONS, "Connectivity error").
_CONN_STEPS = 10  # thresholds t_k = k / 10, k = 0..10 (MATLAB 0:0.1:1)
_CONN_THETA = 0.15
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)

ConnVariant = Literal["guard", "continue"]

_QUANTIZE_HINT = (
    "quantise float alphas in [0, 1] first, the way cv2.imwrite rounds "
    "(DEFINITIONS.md, 'Common conventions'): "
    "np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)"
)


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------


def _check_image(name: str, x: object) -> NDArray[np.uint8]:
    """Return ``x`` as an ndarray after checking it is a non-empty 2-D uint8 image.

    Parameters
    ----------
    name : str
        Argument name used in error messages ("pred", "gt" or "trimap").
    x : object
        The value passed by the caller.

    Returns
    -------
    numpy.ndarray
        ``x`` as a 2-D ``uint8`` array (no copy for ndarray input).

    Raises
    ------
    ValueError
        If ``x`` is not ``uint8``, not 2-D, or empty.
    """
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        hint = ""
        if np.issubdtype(arr.dtype, np.floating):
            # DEFINITIONS only specifies quantising a float prediction the
            # way cv2.imwrite does; which scale (0..1 or 0..255) a float array
            # uses cannot be told from its values, so we refuse to guess.
            hint = f"; {_QUANTIZE_HINT}"
        raise ValueError(
            f"{name} must be a numpy.uint8 array with values 0..255, "
            f"got dtype {arr.dtype}{hint}"
        )
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 3:
            # DIM's evaluate.m keeps channel 1 of a 3-channel file
            # (DEFINITIONS, "Common conventions"); we ask the caller to do it.
            hint = "; for a 3-channel image pass its first channel, x[..., 0]"
        raise ValueError(
            f"{name} must be a 2-D (H, W) array, got {arr.ndim}-D array "
            f"with shape {arr.shape}{hint}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def _check_inputs(
    pred: object, gt: object, trimap: object
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """Validate the three metric arguments and check that their shapes agree.

    Parameters
    ----------
    pred, gt, trimap : array_like
        Predicted alpha, ground-truth alpha and trimap.

    Returns
    -------
    tuple of numpy.ndarray
        ``(pred, gt, trimap)`` as 2-D ``uint8`` arrays.

    Raises
    ------
    ValueError
        If any argument is not a non-empty 2-D ``uint8`` array, or if the
        shapes differ.
    """
    p = _check_image("pred", pred)
    g = _check_image("gt", gt)
    t = _check_image("trimap", trimap)
    if p.shape != g.shape:
        raise ValueError(f"pred has shape {p.shape} but gt has shape {g.shape}")
    if t.shape != p.shape:
        raise ValueError(
            f"trimap has shape {t.shape} but pred and gt have shape {p.shape}"
        )
    return p, g, t


def _unknown(trimap: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Return the scored region ``trimap == 128`` (exact match only)."""
    return trimap == UNKNOWN_VALUE


# --------------------------------------------------------------------------
# SAD and MSE
# --------------------------------------------------------------------------


def _sad(pred: NDArray[np.uint8], gt: NDArray[np.uint8], u: NDArray[np.bool_]) -> float:
    # Summing integer differences is exact; MATLAB's single-precision sum
    # differs by < 1e-6 relative (DEFINITIONS, "Common conventions").
    diff = np.abs(pred[u].astype(np.int64) - gt[u].astype(np.int64))
    return float(diff.sum()) / 255.0 / 1000.0


def _mse(pred: NDArray[np.uint8], gt: NDArray[np.uint8], u: NDArray[np.bool_]) -> float:
    n = int(np.count_nonzero(u))
    if n == 0:
        # MATLAB computes 0/0 = NaN here (DEFINITIONS, "MSE"); the Python
        # ports' 1e-8 guard would silently report a perfect 0 instead.
        return math.nan
    diff = pred[u].astype(np.int64) - gt[u].astype(np.int64)
    return float(np.dot(diff, diff)) / (255.0 * 255.0) / n * 1000.0


def sad(pred: NDArray[np.uint8], gt: NDArray[np.uint8], trimap: NDArray[np.uint8]) -> float:
    """Sum of absolute differences over the unknown region, in thousands.

    ``SAD = (1/1000) * sum_{trimap == 128} |pred - gt| / 255``
    (DEFINITIONS, "SAD"); this is MATLAB ``compute_sad_loss``, which already
    divides by 1000.

    Parameters
    ----------
    pred : numpy.ndarray
        Predicted alpha, 2-D ``uint8`` in 0..255.
    gt : numpy.ndarray
        Ground-truth alpha, 2-D ``uint8`` in 0..255, same shape as ``pred``.
    trimap : numpy.ndarray
        Trimap, 2-D ``uint8``, same shape; pixels equal to 128 are scored.

    Returns
    -------
    float
        SAD in paper units (0 when no pixel is unknown).

    Raises
    ------
    ValueError
        If an input is not a non-empty 2-D ``uint8`` array or the shapes differ.
    """
    p, g, t = _check_inputs(pred, gt, trimap)
    return _sad(p, g, _unknown(t))


def mse(pred: NDArray[np.uint8], gt: NDArray[np.uint8], trimap: NDArray[np.uint8]) -> float:
    """Mean squared error over the unknown region, times 1000.

    ``MSE = 1000 * mean_{trimap == 128} ((pred - gt) / 255)**2``
    (DEFINITIONS, "MSE" and "Reported units").

    Parameters
    ----------
    pred : numpy.ndarray
        Predicted alpha, 2-D ``uint8`` in 0..255.
    gt : numpy.ndarray
        Ground-truth alpha, 2-D ``uint8`` in 0..255, same shape as ``pred``.
    trimap : numpy.ndarray
        Trimap, 2-D ``uint8``, same shape; pixels equal to 128 are scored.

    Returns
    -------
    float
        MSE in paper units.  NaN when no pixel is unknown, as in MATLAB
        (0/0); the Python ports' ``+1e-8`` denominator would give 0.

    Raises
    ------
    ValueError
        If an input is not a non-empty 2-D ``uint8`` array or the shapes differ.
    """
    p, g, t = _check_inputs(pred, gt, trimap)
    return _mse(p, g, _unknown(t))


# --------------------------------------------------------------------------
# Gradient error
# --------------------------------------------------------------------------


def _gauss(u: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    """1-D Gaussian ``exp(-u^2 / 2 sigma^2) / (sigma sqrt(2 pi))``."""
    return np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))


def _gauss_derivative_kernels(
    sigma: float = _GRAD_SIGMA, epsilon: float = _GRAD_EPSILON
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Separable factors of MATLAB ``gaussgradient``'s x-kernel.

    The 2-D kernel is ``hx[r, c] = g(r) * g'(c)`` divided by its Frobenius
    norm (DEFINITIONS, "Gradient error", step 2).  Because
    ``||outer(a, b)||_F = ||a|| * ||b||``, normalising each factor by its own
    L2 norm gives exactly the normalised 2-D kernel, and lets us filter with
    two 1-D passes instead of one 9x9 pass.

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian (1.4 in DIM).
    epsilon : float
        Truncation level that sets the half size (0.01 in DIM).

    Returns
    -------
    smooth : numpy.ndarray
        Normalised Gaussian ``g``, applied across the derivative direction.
    deriv : numpy.ndarray
        Normalised derivative ``g'(u) = -u g(u) / sigma^2``.
    """
    # Same formula as gaussgradient.m; gives 4 (a 9x9 kernel) for sigma 1.4.
    half = math.ceil(
        sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon))
    )
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = _gauss(u, sigma)
    dg = -u * g / sigma**2
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)


def _mat2gray(x: NDArray[np.uint8]) -> NDArray[np.float64]:
    """MATLAB ``mat2gray``: min-max normalise one image on its own.

    DEFINITIONS, "Gradient error", step 1: this is *not* ``x / 255``; the
    difference is large when an image does not span 0..255.  A constant image
    is only clipped to [0, 1] (its gradient is 0 either way).
    """
    lo, hi = int(x.min()), int(x.max())
    if lo == hi:
        return np.clip(x.astype(np.float64), 0.0, 1.0)
    return (x.astype(np.float64) - lo) / float(hi - lo)


def _gradient_magnitude(img: NDArray[np.float64]) -> NDArray[np.float64]:
    """``sqrt(gx^2 + gy^2)`` with DIM's derivative-of-Gaussian filter.

    ``imfilter(..., 'replicate', 'conv')`` is a convolution with edge
    replication, i.e. ``mode='nearest'`` (DEFINITIONS, "Gradient error",
    step 3; SciPy's default 'reflect' changes 10 of the 33 reference cases).
    Replicate padding is separable, so the two 1-D passes equal the 2-D one.
    """
    smooth, deriv = _gauss_derivative_kernels()
    # hx[r, c] = g(r) g'(c): smooth along rows (axis 0), differentiate along
    # columns (axis 1); hy = hx^T swaps the roles.
    gx = ndimage.convolve1d(
        ndimage.convolve1d(img, smooth, axis=0, mode="nearest"), deriv, axis=1, mode="nearest"
    )
    gy = ndimage.convolve1d(
        ndimage.convolve1d(img, deriv, axis=0, mode="nearest"), smooth, axis=1, mode="nearest"
    )
    return np.hypot(gx, gy)


def _grad(pred: NDArray[np.uint8], gt: NDArray[np.uint8], u: NDArray[np.bool_]) -> float:
    # Filter the whole image, mask only the final sum (DEFINITIONS, "Common
    # conventions"): neighbourhoods and the mat2gray range reach outside U.
    amp_p = _gradient_magnitude(_mat2gray(pred))
    amp_g = _gradient_magnitude(_mat2gray(gt))
    diff = amp_p[u] - amp_g[u]
    return float(np.dot(diff, diff)) / 1000.0


def grad(pred: NDArray[np.uint8], gt: NDArray[np.uint8], trimap: NDArray[np.uint8]) -> float:
    """Gradient error over the unknown region, in thousands.

    ``Grad = (1/1000) * sum_{trimap == 128} (|grad P| - |grad G|)**2`` with
    ``P = mat2gray(pred)``, ``G = mat2gray(gt)`` and DIM's 9x9
    derivative-of-Gaussian filter (sigma 1.4, L2-normalised kernel, replicate
    padding); see DEFINITIONS, "Gradient error".

    Parameters
    ----------
    pred : numpy.ndarray
        Predicted alpha, 2-D ``uint8`` in 0..255.
    gt : numpy.ndarray
        Ground-truth alpha, 2-D ``uint8`` in 0..255, same shape as ``pred``.
    trimap : numpy.ndarray
        Trimap, 2-D ``uint8``, same shape; pixels equal to 128 are scored.

    Returns
    -------
    float
        Grad in paper units (``compute_gradient_loss / 1000``).

    Raises
    ------
    ValueError
        If an input is not a non-empty 2-D ``uint8`` array or the shapes differ.
    """
    p, g, t = _check_inputs(pred, gt, trimap)
    return _grad(p, g, _unknown(t))


# --------------------------------------------------------------------------
# Connectivity error
# --------------------------------------------------------------------------


def _threshold_levels() -> NDArray[np.uint8]:
    """Smallest 8-bit value that passes each threshold ``t_k = k/10``, k = 0..10.

    MATLAB compares ``single(a)/255 >= t_k``.  For an integer ``a`` that is
    ``10 a >= 255 k``, i.e. ``a >= ceil(25.5 k)``: float32 rounding never
    pushes a value below a threshold it equals (e.g. ``single(153/255)`` is
    0.6000000238), whereas float64 ``np.arange(0, 1.1, 0.1)`` would drop
    alpha 153 at t = 0.6 (DEFINITIONS, "Known differences").  Integer
    thresholds make the comparison exact.
    """
    k = np.arange(_CONN_STEPS + 1)
    return ((255 * k + _CONN_STEPS - 1) // _CONN_STEPS).astype(np.uint8)


def _largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
    """Largest 4-connected component of ``mask``, or None when it is empty.

    MATLAB's ``bwconncomp`` numbers components in column-major scan order
    and ``max`` returns the first of equal sizes (DEFINITIONS, "Connectivity
    error", step 2).  Labelling the transpose makes SciPy's row-major
    numbering match that order, so ties resolve as in MATLAB.  The
    background label 0 is excluded: counting it is GCA's bug (-31% on the
    reference cases, DEFINITIONS, "Known differences").
    """
    labels_t, n = ndimage.label(mask.T, structure=_FOUR_CONNECTED)
    if n == 0:
        return None
    sizes = np.bincount(labels_t.ravel(), minlength=n + 1)
    best = int(np.argmax(sizes[1:])) + 1
    return (labels_t == best).T


def _conn_levels(
    pred: NDArray[np.uint8], gt: NDArray[np.uint8], variant: ConnVariant
) -> NDArray[np.int8]:
    """Per-pixel level index ``j`` with ``l_i = j / 10`` (DEFINITIONS, "Connectivity error").

    A pixel gets ``t_{k-1}`` at the first threshold ``t_k`` whose largest
    component does not contain it; pixels in the component at every
    threshold get 1.
    """
    levels = _threshold_levels()
    # p >= t and g >= t  <=>  min(p, g) >= t, so one comparison per threshold.
    both = np.minimum(pred, gt)
    lev = np.full(pred.shape, -1, dtype=np.int8)
    for k in range(1, _CONN_STEPS + 1):
        omega = _largest_component(both >= levels[k])
        if omega is None:
            if variant == "continue":
                # IndexNet/GFM: skip this threshold entirely.
                continue
            # GCA guard (the reference): omega is empty, so every pixel still
            # unassigned is "not in omega" and takes t_{k-1}.
            lev[lev < 0] = k - 1
            # Later thresholds cannot assign anything any more.
            break
        lev[(lev < 0) & ~omega] = k - 1
    lev[lev < 0] = _CONN_STEPS
    return lev


def _conn(
    pred: NDArray[np.uint8],
    gt: NDArray[np.uint8],
    u: NDArray[np.bool_],
    variant: ConnVariant = "guard",
) -> float:
    lev = _conn_levels(pred, gt, variant)[u]
    l_map = lev.astype(np.float64) / _CONN_STEPS
    # phi(a) = 1 - d [d >= theta], d = a - l.  No 8-bit alpha lands within
    # float rounding of d = 0.15 (255 * (t + 0.15) is never an integer), so
    # float64 reproduces MATLAB's single-precision comparison exactly.
    d_p = pred[u] / 255.0 - l_map
    d_g = gt[u] / 255.0 - l_map
    phi_p = 1.0 - d_p * (d_p >= _CONN_THETA)
    phi_g = 1.0 - d_g * (d_g >= _CONN_THETA)
    return float(np.abs(phi_p - phi_g).sum()) / 1000.0


def conn(
    pred: NDArray[np.uint8],
    gt: NDArray[np.uint8],
    trimap: NDArray[np.uint8],
    *,
    variant: ConnVariant = "guard",
) -> float:
    """Connectivity error over the unknown region, in thousands.

    DIM's ``compute_connectivity_error(pred, gt, trimap, 0.1) / 1000``
    (DEFINITIONS, "Connectivity error"): for ``t_k = 0.1, ..., 1.0`` take the
    largest 4-connected component of ``(p >= t_k) & (g >= t_k)`` over the
    whole image; a pixel's level ``l`` is ``t_{k-1}`` for the first ``t_k``
    whose component misses it (1 if none does); then
    ``phi(a) = 1 - (a - l) [a - l >= 0.15]`` and
    ``Conn = sum_{trimap == 128} |phi(p) - phi(g)| / 1000``.

    Parameters
    ----------
    pred : numpy.ndarray
        Predicted alpha, 2-D ``uint8`` in 0..255.
    gt : numpy.ndarray
        Ground-truth alpha, 2-D ``uint8`` in 0..255, same shape as ``pred``.
    trimap : numpy.ndarray
        Trimap, 2-D ``uint8``, same shape; pixels equal to 128 are scored.
    variant : {"guard", "continue"}, optional
        What a threshold with an empty intersection does (DEFINITIONS,
        "Empty intersection at some threshold").  ``"guard"`` (default, the
        reference; GCA's MATLAB copy and mmeval): the component is empty, so
        all unassigned pixels take ``t_{k-1}``.  ``"continue"`` (IndexNet's
        MATLAB copy, GFM/P3M/AIM): the threshold is skipped.

    Returns
    -------
    float
        Conn in paper units.

    Raises
    ------
    ValueError
        If an input is not a non-empty 2-D ``uint8`` array, the shapes
        differ, or ``variant`` is unknown.
    """
    if variant not in ("guard", "continue"):
        raise ValueError(f"variant must be 'guard' or 'continue', got {variant!r}")
    p, g, t = _check_inputs(pred, gt, trimap)
    return _conn(p, g, _unknown(t), variant)


# --------------------------------------------------------------------------
# all four
# --------------------------------------------------------------------------


def compute_all(
    pred: NDArray[np.uint8], gt: NDArray[np.uint8], trimap: NDArray[np.uint8]
) -> dict[str, float]:
    """Compute SAD, MSE, Grad and Conn at once (inputs validated once).

    Parameters
    ----------
    pred : numpy.ndarray
        Predicted alpha, 2-D ``uint8`` in 0..255.
    gt : numpy.ndarray
        Ground-truth alpha, 2-D ``uint8`` in 0..255, same shape as ``pred``.
    trimap : numpy.ndarray
        Trimap, 2-D ``uint8``, same shape; pixels equal to 128 are scored.

    Returns
    -------
    dict of str to float
        ``{"sad": ..., "mse": ..., "grad": ..., "conn": ...}`` in paper units,
        identical to calling the four functions separately.

    Raises
    ------
    ValueError
        If an input is not a non-empty 2-D ``uint8`` array or the shapes differ.
    """
    p, g, t = _check_inputs(pred, gt, trimap)
    u = _unknown(t)
    return {
        "sad": _sad(p, g, u),
        "mse": _mse(p, g, u),
        "grad": _grad(p, g, u),
        "conn": _conn(p, g, u),
    }
