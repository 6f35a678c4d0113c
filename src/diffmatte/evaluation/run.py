"""The run: every method on every sample, predictions quantised, cached and scored.

A prediction is quantised to 8 bits the way ``cv2.imwrite`` does (DEFINITIONS.md, "Common
conventions"), stored in a cache keyed by everything that determines it, and scored with
:func:`diffmatte.evaluation.metrics.compute_all`. Re-runs only compute what is not cached.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ..errors import DiffMatteError
from ..io import read_alpha_u8, read_trimap_levels
from ..writers import atomic_write, to_uint8
from .baselines import NoSolution
from .dataset import Dataset, Sample
from .methods import Method, MethodSpec
from .metrics import compute_all

logger = logging.getLogger("diffmatte.evaluation")

__all__ = ["METRICS", "PredictionError", "ImageScore", "EvaluationResult", "evaluate"]

#: Metric columns, in the order of published tables.
METRICS: tuple[str, ...] = ("sad", "mse", "grad", "conn")

# Bump when the meaning of a cached file changes, so that old caches are not reused.
CACHE_FORMAT = 1
_CACHE_TEXT_KEY = "diffmatte-cache"

ProgressFn = Callable[[int], object]


class PredictionError(DiffMatteError):
    """A method returned something that is not an alpha matte of the image's size."""


def _where(spec: MethodSpec, sample: Sample) -> str:
    return f"{spec.label} on {sample.name} ({sample.trimap_set})"


def _check_shape(actual: tuple[int, ...], shape: tuple[int, ...], spec: MethodSpec, sample: Sample) -> None:
    if actual != shape:
        # Never resize: a wrong size means a bug in the method, and a resized matte would
        # produce plausible-looking numbers for the wrong pixels.
        raise PredictionError(f"{_where(spec, sample)}: prediction has shape {actual}, the image is {shape}")


def _checked_alpha(alpha: object, shape: tuple[int, ...], spec: MethodSpec, sample: Sample) -> NDArray[np.floating]:
    """``alpha`` as an array after checking it is a finite float matte of ``shape``."""
    a = np.asarray(alpha)
    where = _where(spec, sample)
    _check_shape(a.shape, shape, spec, sample)
    if not np.issubdtype(a.dtype, np.floating):
        raise PredictionError(f"{where}: prediction must be float alpha in [0, 1], got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise PredictionError(f"{where}: prediction has {int((~np.isfinite(a)).sum())} NaN or infinite values")
    return a


def _file_id(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "mtime_ns": st.st_mtime_ns, "size": st.st_size}


def _cache_key(spec: MethodSpec, sample: Sample) -> dict[str, Any]:
    """Everything a prediction depends on. Inputs are identified by path, mtime and size."""
    return {
        "format": CACHE_FORMAT,
        "spec": spec.cache_fields(),
        "image": _file_id(sample.image),
        "trimap": _file_id(sample.trimap),
        "trimap_set": sample.trimap_set,
    }


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _cache_path(cache_dir: Path, spec: MethodSpec, sample: Sample, digest: str) -> Path:
    # The image name up front keeps the cache browsable; the digest makes it unique.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", sample.name)
    return cache_dir / re.sub(r"[^A-Za-z0-9._-]", "_", spec.method) / f"{safe}-{digest[:24]}.png"


@dataclass(frozen=True)
class _Timing:
    """Cost of one predict call: wall-clock seconds and CPU seconds of this process.

    On a shared machine the wall time grows with the other load, the CPU time of a
    single-threaded run much less so; with several threads the CPU time is their sum.
    """

    seconds: float
    cpu_seconds: float


def _read_cached(path: Path, digest: str) -> tuple[NDArray[np.uint8], _Timing] | None:
    """(prediction, what it cost) from a cache file, or None when absent or not ours."""
    if not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            meta = json.loads(im.text.get(_CACHE_TEXT_KEY, "{}"))  # type: ignore[attr-defined]
            pred = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        logger.warning("cache file %s is unreadable (%s); recomputing it", path, e)
        return None
    if meta.get("digest") != digest:
        return None
    return pred, _Timing(float(meta["seconds"]), float(meta.get("cpu_seconds", math.nan)))


def _write_cached(path: Path, digest: str, key: Mapping[str, Any], pred: NDArray[np.uint8], timing: _Timing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text(_CACHE_TEXT_KEY, json.dumps({"digest": digest, **asdict(timing), "key": key}))
    # Write then rename, so an interrupted run never leaves a truncated file under a valid name
    # (nor its temporary file after a failure).
    atomic_write(path, lambda tmp: Image.fromarray(pred).save(tmp, format="PNG", pnginfo=info))


@dataclass(frozen=True)
class ImageScore:
    """Metrics (paper units, DEFINITIONS.md) of one method on one image and trimap."""

    spec: MethodSpec
    image: str
    trimap_set: str
    sad: float
    mse: float
    grad: float
    conn: float
    seconds: float  # wall-clock time of the method's predict call when it was computed
    cpu_seconds: float  # CPU time of that call (all threads of the process)
    cached: bool  # taken from the cache in this run
    # the trimap marks some foreground: without any, closed-form-like methods can only answer 0,
    # so comparisons also report means over the images where this holds (evaluation.comparison)
    fg_constraint: bool = True


@dataclass(frozen=True)
class EvaluationResult:
    dataset: Dataset
    specs: tuple[MethodSpec, ...]
    scores: tuple[ImageScore, ...]

    @property
    def computed(self) -> int:
        """Predictions computed in this run."""
        return sum(not s.cached for s in self.scores)

    @property
    def cached(self) -> int:
        """Predictions taken from the cache in this run."""
        return sum(s.cached for s in self.scores)


class _Inputs:
    """One sample's image and method-ready trimap, read only when some method has to run."""

    def __init__(self, sample: Sample, trimap8: NDArray[np.uint8]) -> None:
        self._sample = sample
        self._trimap8 = trimap8
        self._arrays: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None

    def get(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self._arrays is None:
            from ..io import read_image, trimap_from_array

            self._arrays = (read_image(self._sample.image), trimap_from_array(self._trimap8))
        return self._arrays


def evaluate(
    dataset: Dataset,
    methods: Sequence[Method],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> EvaluationResult:
    """Run every method on every sample and score the predictions.

    Parameters
    ----------
    dataset : Dataset
        From :func:`load_dataset`.
    methods : sequence of Method
        From :func:`build_methods`, or hand-made.
    cache_dir : path, optional
        Where predictions are kept as 8-bit PNGs (with their key and timing in a text chunk);
        a prediction whose key is there is read instead of computed. None disables caching.
    progress : callable, optional
        Called with 1 after each (sample, method).

    Returns
    -------
    EvaluationResult
        Per-image scores in the order sample, then method.

    Raises
    ------
    PredictionError
        A method returned a matte of the wrong shape, a non-float or non-finite matte.
    """
    cache = Path(cache_dir) if cache_dir is not None else None
    scores = []
    for sample in dataset.samples:
        gt = read_alpha_u8(sample.alpha)
        trimap8 = read_trimap_levels(sample.trimap)
        inputs = _Inputs(sample, trimap8)
        has_fg = bool((trimap8 == 255).any())
        for method in methods:
            try:
                pred, timing, cached = _prediction(method, sample, inputs, gt.shape, cache)
            except NoSolution as e:
                # one image a solver cannot solve is a result (no matte), not the end of the run
                logger.warning("%s: %s; its metrics are left empty", _where(method.spec, sample), e)
                scores.append(ImageScore(method.spec, sample.name, sample.trimap_set, math.nan, math.nan, math.nan,
                                         math.nan, math.nan, math.nan, cached=False, fg_constraint=has_fg))
                if progress is not None:
                    progress(1)
                continue
            metrics = compute_all(pred, gt, trimap8)
            scores.append(ImageScore(method.spec, sample.name, sample.trimap_set, **metrics,
                                     **asdict(timing), cached=cached, fg_constraint=has_fg))
            if progress is not None:
                progress(1)
    return EvaluationResult(dataset, tuple(m.spec for m in methods), tuple(scores))


def _prediction(
    method: Method, sample: Sample, inputs: _Inputs, shape: tuple[int, ...], cache: Path | None
) -> tuple[NDArray[np.uint8], _Timing, bool]:
    """(8-bit prediction, what it cost, whether it came from the cache)."""
    key = _cache_key(method.spec, sample)
    digest = _digest(key)
    path = _cache_path(cache, method.spec, sample, digest) if cache is not None else None
    hit = _read_cached(path, digest) if path is not None else None
    if hit is not None:
        pred, timing = hit
        _check_shape(pred.shape, shape, method.spec, sample)
        return pred, timing, True
    image, trimap = inputs.get()
    wall, cpu = time.perf_counter(), time.process_time()
    alpha = method.predict(image, trimap)
    timing = _Timing(time.perf_counter() - wall, time.process_time() - cpu)
    pred = to_uint8(_checked_alpha(alpha, shape, method.spec, sample))
    if path is not None:
        _write_cached(path, digest, key, pred, timing)
    return pred, timing, False
