"""Methods to score: the DiffMatte model(s) and the classical baselines.

:func:`build_methods` turns method names into :class:`Method` objects: the DiffMatte model(s)
(loaded once, one method per number of steps and precision) and the classical baselines of
:mod:`diffmatte.evaluation.baselines`. A :class:`Method` is just a spec and a predict function, so tests
and new methods plug in without touching this package.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .._version import __version__
from ..errors import InputError
from ..runtime import PRECISION_CHOICES, resolve_precision
from .baselines import CLASSICAL_METHODS, estimate_alpha, pymatting_version

__all__ = ["METHOD_NAMES", "MethodSpec", "Method", "build_methods"]

#: Names accepted by :func:`build_methods` (and the CLI's ``--method``).
METHOD_NAMES: tuple[str, ...] = ("diffmatte", *CLASSICAL_METHODS)

PredictFn = Callable[[NDArray[np.float32], NDArray[np.float32]], NDArray[np.floating]]


@dataclass(frozen=True)
class MethodSpec:
    """What produces a prediction; everything except ``model`` goes into the cache key.

    Attributes
    ----------
    method : str
        "diffmatte", "cf", "knn", "lkm", "rw" or any name of a user-made :class:`Method`.
    steps : int or None
        Sampling steps (DiffMatte only).
    seed : int or None
        Noise seed (DiffMatte only).
    model : str or None
        Display name of the model: a packaged name or the checkpoint's file stem.
    model_sha256 : str or None
        sha256 of the model file; identifies the model in the cache, wherever it lies.
    implementation : str
        Version of the code that computes the prediction, e.g. "pymatting 1.1.16".
    precision : str
        "fp32" or "bf16" (DiffMatte only).
    """

    method: str
    steps: int | None = None
    seed: int | None = None
    model: str | None = None
    model_sha256: str | None = None
    implementation: str = ""
    precision: str = "fp32"

    @property
    def label(self) -> str:
        """Short unique name for tables and plots: ``cf``, ``diffmatte:vits@10``."""
        text = self.method if self.model is None else f"{self.method}:{self.model}"
        return text if self.steps is None else f"{text}@{self.steps}"

    def cache_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["model"]  # a display name; the hash identifies the model
        if self.precision == "fp32":
            del fields["precision"]  # keeps the keys of caches written before bf16 existed
        return fields


@dataclass(frozen=True)
class Method:
    """A spec and the function that mattes one image.

    ``predict(image, trimap)`` gets image (H, W, 3) float32 RGB in [0, 1] and trimap (H, W)
    float32 in {0, 0.5, 1}, and returns (H, W) float alpha in [0, 1].
    """

    spec: MethodSpec
    predict: PredictFn = field(compare=False)


def build_methods(
    names: Sequence[str],
    *,
    models: Sequence[str] = (),
    steps: Sequence[int] = (10,),
    seed: int = 0,
    precisions: Sequence[str] = ("fp32",),
) -> list[Method]:
    """Methods for the given names; DiffMatte models are resolved and loaded here, once.

    Parameters
    ----------
    names : sequence of str
        Entries of :data:`METHOD_NAMES`, in the order the reports should show them.
    models : sequence of str
        For "diffmatte": packaged model names or checkpoint paths (``.safetensors``/``.pth``);
        empty means the packaged default model.
    steps : sequence of int
        For "diffmatte": one method per number of sampling steps (each >= 1).
    seed : int
        For "diffmatte": noise seed, the same for every image.
    precisions : sequence of str
        For "diffmatte": "fp32" and/or "bf16"; one method per precision. A bf16 model is shown
        as "<model> bf16".

    Returns
    -------
    list of Method
        Classical methods once each; DiffMatte once per (model, precision, steps).

    Raises
    ------
    InputError
        Unknown method name, steps < 1 or an unknown precision.
    CheckpointError
        A model that cannot be found or loaded (raised before any image is processed).
    """
    unknown = [n for n in names if n not in METHOD_NAMES]
    if unknown:
        raise InputError(f"unknown method {', '.join(unknown)}; known: {', '.join(METHOD_NAMES)}")
    bad_steps = [s for s in steps if s < 1]
    if bad_steps or not steps:
        raise InputError(f"steps must be integers >= 1, got {list(steps)}")
    if not precisions or any(p not in PRECISION_CHOICES for p in precisions):
        raise InputError(f"precision must be auto, fp32 and/or bf16, got {list(precisions)}")
    methods: list[Method] = []
    for name in dict.fromkeys(names):
        if name == "diffmatte":
            methods += _diffmatte_methods(models, sorted(set(steps)), seed, list(dict.fromkeys(precisions)))
        else:
            # The wrapper (known-region writing, edge cases) is diffmatte's, so both versions count.
            spec = MethodSpec(name, implementation=f"pymatting {pymatting_version()}, diffmatte {__version__}")
            methods.append(Method(spec, partial(estimate_alpha, name)))
    return methods


def _diffmatte_methods(
    models: Sequence[str], steps: Sequence[int], seed: int, precisions: Sequence[str] = ("fp32",)
) -> list[Method]:
    from ..hashing import sha256_file
    from ..loading import load_model
    from ..registry import DEFAULT_MODEL, resolve_model_path

    resolved = {}  # sha256 -> (spec as given, path); the same file given twice runs once
    for spec in models or [DEFAULT_MODEL]:
        path = resolve_model_path(spec)
        resolved.setdefault(sha256_file(path), (spec, path))
    display = _model_names(resolved)
    methods = []
    for sha, (spec, _) in resolved.items():
        loaded = load_model(spec, digest=sha)
        # "auto" is recorded as the arithmetic it chose on this machine (the method's name and key)
        for precision in dict.fromkeys(resolve_precision(p, loaded.device.type) for p in precisions):
            # One network read from disk, shared: precision is a setting of the pipeline around it.
            model = loaded.with_precision(precision)
            name = display[sha] if precision == "fp32" else f"{display[sha]} {precision}"
            for n in steps:
                ms = MethodSpec("diffmatte", steps=n, seed=seed, model=name, model_sha256=sha,
                                implementation=f"diffmatte {__version__}", precision=precision)
                methods.append(Method(ms, partial(_diffmatte_predict, model, n, seed)))
    return methods


def _model_names(resolved: Mapping[str, tuple[str, Path]]) -> dict[str, str]:
    """Display names: the packaged name or file stem. Where stems collide (run folders all hold
    ``best/ema.safetensors`` and ``last/ema.safetensors``), the shortest path tail that tells
    them apart, e.g. ``ablation-uti/last/ema``; a short hash where the paths are the same."""
    from ..registry import PACKAGED_MODELS

    def tail(path: Path, n: int) -> str:
        return "/".join([*path.parts[-n:-1], path.stem])

    names = {sha: spec if spec in PACKAGED_MODELS else path.stem for sha, (spec, path) in resolved.items()}
    for name in set(names.values()):
        group = {sha: resolved[sha][1].resolve() for sha, n in names.items() if n == name}
        if len(group) < 2 or len(set(group.values())) < len(group) or name in PACKAGED_MODELS:
            continue
        for n in range(2, 1 + max(len(p.parts) for p in group.values())):
            tails = {sha: tail(p, n) for sha, p in group.items()}
            if len(set(tails.values())) == len(tails):
                names.update(tails)
                break
    counts = {name: list(names.values()).count(name) for name in names.values()}
    return {sha: name if counts[name] == 1 else f"{name}-{sha[:8]}" for sha, name in names.items()}


def _diffmatte_predict(model: Any, steps: int, seed: int, image: NDArray, trimap: NDArray) -> NDArray:
    return model.predict(image, trimap, steps=steps, seed=seed)
