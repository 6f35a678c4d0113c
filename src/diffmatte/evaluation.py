"""Score matting methods on a dataset with ground truth: SAD, MSE, Grad and Conn.

The pieces, in the order a run uses them:

1. :func:`load_dataset` finds and checks a dataset: the Composition-1k layout (``merged/`` or
   ``image/``, ``trimaps/`` or ``trimap/``, ``alpha_copy/`` or ``alpha/``) or the alphamatting.com
   layout (``input_*/``, ``gt_*/``, ``trimap_*/<set>/``). Everything wrong with it (missing,
   orphaned or unreadable files, sizes that differ, trimap values other than 0/128/255) is
   collected and raised at once as a :class:`DatasetError`, before any method runs.
2. :func:`build_methods` turns method names into :class:`Method` objects: the DiffMatte model(s)
   (loaded once, one method per number of steps) and the classical baselines of
   :mod:`diffmatte.baselines`. A :class:`Method` is just a spec and a predict function, so tests
   and new methods plug in without touching this module.
3. :func:`evaluate` runs every method on every (image, trimap set) pair. A prediction is
   quantised to 8 bits the way ``cv2.imwrite`` does (DEFINITIONS.md, "Common conventions"),
   stored in a cache keyed by everything that determines it, and scored with
   :func:`diffmatte.metrics.compute_all`. Re-runs only compute what is not cached.
4. :func:`summarize` and :func:`write_reports` give the means per method and trimap set, a
   per-image CSV, a JSON summary, a Markdown table and matplotlib plots.

Arrays in, arrays out; nothing here prints (progress goes through a callback).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from . import __version__
from .baselines import CLASSICAL_METHODS, estimate_alpha, pymatting_version
from .errors import DiffMatteError, InputError
from .io import IMAGE_EXTENSIONS, read_alpha_u8, read_trimap_levels
from .metrics import UNKNOWN_VALUE, compute_all
from .runtime import PRECISIONS
from .selection import select_names

__all__ = [
    "METHOD_NAMES",
    "METRICS",
    "DatasetError",
    "PredictionError",
    "Sample",
    "Dataset",
    "load_dataset",
    "select_names",
    "MethodSpec",
    "Method",
    "build_methods",
    "quantize_alpha",
    "ImageScore",
    "EvaluationResult",
    "evaluate",
    "SummaryRow",
    "summarize",
    "markdown_table",
    "write_reports",
    "environment",
]

logger = logging.getLogger(__name__)

#: Names accepted by :func:`build_methods` (and the CLI's ``--method``).
METHOD_NAMES: tuple[str, ...] = ("diffmatte", *CLASSICAL_METHODS)
#: Metric columns, in the order of published tables.
METRICS: tuple[str, ...] = ("sad", "mse", "grad", "conn")

# Bump when the meaning of a cached file changes, so that old caches are not reused.
CACHE_FORMAT = 1
_CACHE_TEXT_KEY = "diffmatte-cache"
_TRIMAP_VALUES = (0, UNKNOWN_VALUE, 255)
# Modes whose first channel (or grey level) is a usable 8- or 16-bit alpha.
_READABLE_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "I", "I;16", "I;16L", "I;16B"})
_LIST_LIMIT = 10  # names shown per problem line; the rest are counted
# Environment variables that set the thread counts of OpenMP, numba (pymatting) and BLAS.
_THREAD_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

PredictFn = Callable[[NDArray[np.float32], NDArray[np.float32]], NDArray[np.floating]]
ProgressFn = Callable[[int], object]


class DatasetError(InputError):
    """A dataset that cannot be evaluated; ``problems`` lists every reason, one per line."""

    def __init__(self, root: Path, problems: Sequence[str]) -> None:
        self.root = root
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"dataset {root} has {n} problem{'s' * (n != 1)}:\n{lines}")


class PredictionError(DiffMatteError):
    """A method returned something that is not an alpha matte of the image's size."""


# --------------------------------------------------------------------------------------------
# dataset discovery and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One scored case: an image, its ground-truth alpha and one of its trimaps."""

    name: str  # file stem, e.g. "GT05"
    image: Path
    alpha: Path
    trimap: Path
    trimap_set: str  # e.g. "Trimap1"; the trimap folder's name in the Composition-1k layout


@dataclass(frozen=True)
class Dataset:
    """A checked dataset: every sample's files exist, are readable and have one size."""

    root: Path
    layout: str  # "composition-1k" or "alphamatting"
    trimap_sets: tuple[str, ...]
    samples: tuple[Sample, ...]  # sorted by image name, then trimap set

    @property
    def images(self) -> list[str]:
        """Image names in order, each once."""
        return list(dict.fromkeys(s.name for s in self.samples))


@dataclass(frozen=True)
class _Folders:
    layout: str
    image: Path
    alpha: Path
    trimaps: dict[str, Path]  # trimap set -> folder


def load_dataset(
    root: str | os.PathLike[str],
    *,
    trimap_sets: Sequence[str] | None = None,
    images: Sequence[str] | None = None,
) -> Dataset:
    """Find, select and check the samples of a matting dataset.

    Parameters
    ----------
    root : path
        Dataset folder in the Composition-1k or the alphamatting.com layout (module docstring).
    trimap_sets : sequence of str, optional
        Trimap sets to use (e.g. ``["Trimap1"]``); all of them when None.
    images : sequence of str, optional
        Image selection, see :func:`select_names`; all images when None.

    Returns
    -------
    Dataset
        The selected samples, each checked.

    Raises
    ------
    DatasetError
        Listing every problem found: unknown layout, missing or orphaned files, unreadable
        files, sizes that differ, trimap values other than 0/128/255, a selection that matches
        nothing.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, [f"{root} is not a folder"])
    folders, problems = _find_folders(root)
    if folders is None:
        raise DatasetError(root, problems)
    sets, set_problems = _select_trimap_sets(folders, trimap_sets)
    index, index_problems = _index_folders(folders, sets)
    names, name_problems = select_names(sorted(index["image"]), images or [])
    problems += set_problems + index_problems + name_problems
    if not images:  # with a selection, files outside it do not matter
        problems += _orphans(index, sets)
    samples, pair_problems = _pair(names, index, sets)
    problems += pair_problems
    problems += _check_files(samples)
    if not samples and not problems:
        problems.append(f"no images found in {folders.image}")
    if problems:
        raise DatasetError(root, problems)
    return Dataset(root=root, layout=folders.layout, trimap_sets=tuple(sets), samples=tuple(samples))


def _find_folders(root: Path) -> tuple[_Folders | None, list[str]]:
    """The layout's folders, or None and what is missing."""
    composition = {
        "image": ("merged", "image"),
        "trimap": ("trimaps", "trimap"),
        "alpha": ("alpha_copy", "alpha"),
    }
    found = {role: _first_dir(root, names) for role, names in composition.items()}
    if not any(found.values()):
        return _alphamatting_folders(root)
    image, trimap, alpha = found["image"], found["trimap"], found["alpha"]
    if image is None or trimap is None or alpha is None:
        return None, [
            f"Composition-1k layout: no {role} folder ({' or '.join(n + '/' for n in names)})"
            for role, names in composition.items()
            if found[role] is None
        ]
    return _Folders("composition-1k", image, alpha, {trimap.name: trimap}), []


def _alphamatting_folders(root: Path) -> tuple[_Folders | None, list[str]]:
    """Folders of the alphamatting.com layout: ``input_*``, ``gt_*``, ``trimap_*/<set>``."""
    dirs = {prefix: sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith(prefix))
            for prefix in ("input_", "gt_", "trimap_")}
    if not any(dirs.values()):
        return None, [
            f"{root} has neither the Composition-1k layout (merged/ or image/, trimaps/ or trimap/, "
            "alpha_copy/ or alpha/) nor the alphamatting.com layout (input_*/, gt_*/, trimap_*/<set>/)"
        ]
    problems = []
    for prefix, found in dirs.items():
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} ({', '.join(d.name for d in found)}) instead of one"
            problems.append(f"alphamatting.com layout: {what} {prefix}* folder")
    if problems:
        return None, problems
    trimap_root = dirs["trimap_"][0]
    # Trimap1/, Trimap2/ ... are the sets; a trimap folder without sub-folders is one set.
    subsets = {d.name: d for d in sorted(trimap_root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    return _Folders("alphamatting", dirs["input_"][0], dirs["gt_"][0], subsets or {trimap_root.name: trimap_root}), []


def _first_dir(root: Path, names: Iterable[str]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _select_trimap_sets(folders: _Folders, wanted: Sequence[str] | None) -> tuple[list[str], list[str]]:
    available = list(folders.trimaps)
    if not wanted:
        return available, []
    unknown = [s for s in wanted if s not in folders.trimaps]
    if unknown:
        return [], [f"trimap set {', '.join(unknown)} not found; the dataset has: {', '.join(available)}"]
    return list(dict.fromkeys(wanted)), []


def _index_folders(folders: _Folders, sets: Sequence[str]) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """Image files by stem for the image, alpha and each trimap folder ("trimap:<set>")."""
    named = {"image": folders.image, "alpha": folders.alpha}
    named.update({f"trimap:{s}": folders.trimaps[s] for s in sets})
    index, problems = {}, []
    for role, folder in named.items():
        index[role], dup = _index_images(folder)
        if dup:
            problems.append(f"{folder}: several files per name (different extensions): {_names(dup)}")
    return index, problems


def _index_images(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Image files of ``folder`` by stem, and the stems that occur more than once."""
    files: dict[str, Path] = {}
    dup = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            if p.stem in files:
                dup.append(p.stem)
            files[p.stem] = p
    return files, dup


def _orphans(index: Mapping[str, Mapping[str, Path]], sets: Sequence[str]) -> list[str]:
    """Alphas and trimaps without an image: usually a naming mismatch worth showing."""
    images = set(index["image"])
    problems = []
    for role in ["alpha", *(f"trimap:{s}" for s in sets)]:
        extra = sorted(set(index[role]) - images)
        if extra:
            problems.append(f"{_role_name(role)} without an image: {_names(extra)}")
    return problems


def _pair(
    names: Sequence[str], index: Mapping[str, Mapping[str, Path]], sets: Sequence[str]
) -> tuple[list[Sample], list[str]]:
    """Samples for every selected name whose files all exist; the missing ones as problems."""
    missing: dict[str, list[str]] = {}
    samples = []
    for name in names:
        absent = [role for role in ["alpha", *(f"trimap:{s}" for s in sets)] if name not in index[role]]
        for role in absent:
            missing.setdefault(role, []).append(name)
        if absent:
            continue
        for s in sets:
            samples.append(Sample(name, index["image"][name], index["alpha"][name], index[f"trimap:{s}"][name], s))
    problems = [f"{_role_name(role)} missing for: {_names(n)}" for role, n in missing.items()]
    return samples, problems


def _role_name(role: str) -> str:
    return f"trimap ({role.split(':', 1)[1]})" if role.startswith("trimap:") else role


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LIST_LIMIT])
    more = len(names) - _LIST_LIMIT
    return f"{shown} (and {more} more)" if more > 0 else shown


def _check_files(samples: Sequence[Sample]) -> list[str]:
    """Readability, equal sizes and trimap values of every sample, as problem lines."""
    problems: list[str] = []
    sizes: dict[Path, tuple[int, int] | None] = {}  # None: unreadable, already reported
    for s in samples:
        files = {"image": s.image, "alpha": s.alpha, f"trimap ({s.trimap_set})": s.trimap}
        for what, path in files.items():
            if path not in sizes:
                try:
                    sizes[path] = _header_size(path, need_alpha_mode=what != "image")
                except InputError as e:
                    problems.append(str(e))
                    sizes[path] = None
        found = {what: sizes[p] for what, p in files.items()}
        if None in found.values():
            continue
        if len(set(found.values())) > 1:
            shown = ", ".join(f"{what} {hw[1]}x{hw[0]}" for what, hw in found.items() if hw is not None)
            problems.append(f"{s.name}: sizes differ (width x height): {shown}")
            continue
        problems += _check_trimap_values(s)
    return problems


def _header_size(path: Path, need_alpha_mode: bool) -> tuple[int, int]:
    """(height, width) as displayed (EXIF orientation applied), read from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            mode = im.mode
            orientation = im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from e
    if need_alpha_mode and mode not in _READABLE_MODES:
        raise InputError(f"{path}: image mode {mode} is not an 8- or 16-bit grey/RGB image")
    # Orientations 5-8 swap width and height; the readers below transpose accordingly.
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _check_trimap_values(s: Sample) -> list[str]:
    values = np.unique(read_trimap_levels(s.trimap))
    bad = np.setdiff1d(values, _TRIMAP_VALUES)
    if bad.size == 0:
        return []
    # Methods would treat such greys as unknown while the metrics score only 128: silently
    # unscored pixels, so refuse rather than report numbers that mean something else.
    shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
    return [f"{s.trimap}: trimap values other than 0, 128, 255 ({shown}); the metrics score only pixels equal to 128"]


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------


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
    if not precisions or any(p not in PRECISIONS for p in precisions):
        raise InputError(f"precision must be fp32 and/or bf16, got {list(precisions)}")
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
    from .hashing import sha256_file
    from .loading import load_model
    from .pipeline import DiffMatte
    from .registry import DEFAULT_MODEL, resolve_model_path

    resolved = {}  # sha256 -> (spec as given, path); the same file given twice runs once
    for spec in models or [DEFAULT_MODEL]:
        path = resolve_model_path(spec)
        resolved.setdefault(sha256_file(path), (spec, path))
    display = _model_names(resolved)
    methods = []
    for sha, (spec, _) in resolved.items():
        loaded = load_model(spec)
        for precision in precisions:
            # One network read from disk, shared: precision is a setting of the pipeline around it.
            model = loaded if precision == loaded.precision else DiffMatte(loaded.net, loaded.diffusion, precision)
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
    from .registry import PACKAGED_MODELS

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


# --------------------------------------------------------------------------------------------
# predictions: quantisation, checks, cache
# --------------------------------------------------------------------------------------------


def quantize_alpha(alpha: NDArray[np.floating]) -> NDArray[np.uint8]:
    """A float alpha in [0, 1] as the 8-bit PNG the metrics are defined on.

    ``cv2.imwrite`` rounds half to even and saturates (DEFINITIONS.md, "Common conventions"),
    which is ``np.rint`` followed by clipping.

    Examples
    --------
    >>> quantize_alpha(np.array([[0.0, 0.5 / 255, 1.5 / 255, 1.2]]))
    array([[  0,   0,   2, 255]], dtype=uint8)
    """
    a = np.asarray(alpha)
    return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)


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
    # Write then rename, so an interrupted run never leaves a truncated file under a valid name.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(pred).save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


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
            from .io import read_image, trimap_from_array

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
        for method in methods:
            pred, timing, cached = _prediction(method, sample, inputs, gt.shape, cache)
            metrics = compute_all(pred, gt, trimap8)
            scores.append(ImageScore(method.spec, sample.name, sample.trimap_set, **metrics,
                                     **asdict(timing), cached=cached))
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
    pred = quantize_alpha(_checked_alpha(alpha, shape, method.spec, sample))
    if path is not None:
        _write_cached(path, digest, key, pred, timing)
    return pred, timing, False


# --------------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """Means over the images of one method and trimap set."""

    spec: MethodSpec
    trimap_set: str
    n: int
    sad: float
    mse: float  # images without unknown pixels (MSE NaN, as in MATLAB) are left out of its mean
    grad: float
    conn: float
    seconds: float  # mean wall-clock seconds per image
    cpu_seconds: float  # mean CPU seconds per image


def summarize(result: EvaluationResult) -> list[SummaryRow]:
    """Mean metrics and times per (method, trimap set), methods in run order."""
    rows = []
    for spec in result.specs:
        for tset in result.dataset.trimap_sets:
            group = [s for s in result.scores if s.spec == spec and s.trimap_set == tset]
            if not group:
                continue
            means = {m: _mean(getattr(s, m) for s in group) for m in (*METRICS, "seconds", "cpu_seconds")}
            rows.append(SummaryRow(spec, tset, len(group), **means))
    return rows


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------

_HEADERS = {"sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn"}


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The summary as a Markdown table (means; SAD, Grad, Conn /1000, MSE x1000)."""
    lines = [
        "| method | model | steps | trimap set | images | SAD | MSE | Grad | Conn | s / image | CPU s / image |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        metric_cells = " | ".join(_fmt(getattr(r, m)) for m in METRICS)
        lines.append(
            f"| {r.spec.method} | {r.spec.model or '-'} | {r.spec.steps if r.spec.steps is not None else '-'} "
            f"| {r.trimap_set} | {r.n} | {metric_cells} | {_fmt(r.seconds, 2)} | {_fmt(r.cpu_seconds, 2)} |"
        )
    return "\n".join(lines)


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def write_reports(
    result: EvaluationResult, out_dir: str | os.PathLike[str], *, command: str | None = None
) -> dict[str, Path]:
    """Write ``per_image.csv``, ``summary.json``, ``summary.md`` and ``plots/*.png``.

    Parameters
    ----------
    result : EvaluationResult
        From :func:`evaluate`.
    out_dir : path
        Results folder (created if needed); files of earlier runs with the same names are replaced.
    command : str, optional
        The command line that produced the result, recorded in the JSON and Markdown files.

    Returns
    -------
    dict of str to Path
        What was written, by kind: "per_image", "summary_json", "summary_md", "plot_methods"
        and, when DiffMatte ran, "plot_steps".
    """
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    rows = summarize(result)
    paths = {
        "per_image": out / "per_image.csv",
        "summary_json": out / "summary.json",
        "summary_md": out / "summary.md",
        "plot_methods": out / "plots" / "methods.png",
    }
    _write_csv(paths["per_image"], result.scores)
    _write_json(paths["summary_json"], result, rows, command)
    paths["summary_md"].write_text(_markdown_report(result, rows, command))
    _plot_methods(paths["plot_methods"], rows)
    steps_plot = out / "plots" / "steps.png"
    if _plot_steps(steps_plot, rows):
        paths["plot_steps"] = steps_plot
    elif steps_plot.exists():
        steps_plot.unlink()  # from an earlier run with DiffMatte; it would describe other results
    return paths


_CSV_COLUMNS = ("method", "model", "model_sha256", "steps", "seed", "trimap_set", "image",
                *METRICS, "seconds", "cpu_seconds", "cached")


def _write_csv(path: Path, scores: Sequence[ImageScore]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_CSV_COLUMNS)
        for s in scores:
            writer.writerow([
                s.spec.method, s.spec.model or "", s.spec.model_sha256 or "",
                "" if s.spec.steps is None else s.spec.steps, "" if s.spec.seed is None else s.spec.seed,
                s.trimap_set, s.image, *(repr(getattr(s, m)) for m in METRICS), f"{s.seconds:.4f}",
                f"{s.cpu_seconds:.4f}", int(s.cached),
            ])


def _write_json(path: Path, result: EvaluationResult, rows: Sequence[SummaryRow], command: str | None) -> None:
    ds = result.dataset
    doc = {
        "command": command,
        "dataset": {"root": str(ds.root), "layout": ds.layout, "trimap_sets": list(ds.trimap_sets),
                    "images": ds.images},
        "predictions": {"computed": result.computed, "cached": result.cached},
        "environment": environment(),
        "results": [
            {**asdict(r.spec), "label": r.spec.label, "trimap_set": r.trimap_set, "n": r.n,
             **{m: _json_number(getattr(r, m)) for m in METRICS}, "seconds_per_image": r.seconds,
             "cpu_seconds_per_image": _json_number(r.cpu_seconds)}
            for r in rows
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _json_number(v: float) -> float | None:
    return v if math.isfinite(v) else None  # JSON has no NaN


def _markdown_report(result: EvaluationResult, rows: Sequence[SummaryRow], command: str | None) -> str:
    ds = result.dataset
    env = environment()
    parts = [
        "# Evaluation results",
        "",
        f"Dataset: `{ds.root}` ({ds.layout}), {len(ds.images)} images, trimap sets {', '.join(ds.trimap_sets)}.",
    ]
    if command:
        parts += ["", "Command:", "", "```bash", command, "```"]
    parts += [
        "",
        markdown_table(rows),
        "",
        "Means over the images. SAD, Grad and Conn are /1000 and MSE is x1000, as in Composition-1k "
        "tables; predictions are quantised to 8 bits before scoring. Seconds per image are the "
        "wall-clock and CPU time of the method's call when the prediction was computed (cached "
        "ones keep those times); for a single-threaded run the CPU time is much less affected "
        "than the wall-clock time by other load on the machine.",
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} CPUs; thread settings {env['threads']}.",
        "",
    ]
    return "\n".join(parts)


def environment() -> dict[str, Any]:
    """Where timings were taken: CPU, thread settings, package versions."""
    packages = {}
    for name in ("diffmatte", "numpy", "scipy", "torch", "pymatting", "numba"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in _THREAD_VARS}
        | ({"torch": torch.get_num_threads()} if torch is not None else {}),
        "packages": packages,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _plot_methods(path: Path, rows: Sequence[SummaryRow]) -> None:
    """Bars of each metric and of seconds per image, one group per method, one bar per trimap set."""
    from matplotlib.figure import Figure

    labels = list(dict.fromkeys(r.spec.label for r in rows))
    sets = list(dict.fromkeys(r.trimap_set for r in rows))
    panels = (*METRICS, "seconds")
    fig = Figure(figsize=(max(8.0, 1.1 * len(labels) * len(panels) / 2), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels))
    width = 0.8 / len(sets)
    x = np.arange(len(labels))
    for ax, metric in zip(axes, panels, strict=True):
        for i, tset in enumerate(sets):
            by_label = {r.spec.label: getattr(r, metric) for r in rows if r.trimap_set == tset}
            ax.bar(x + (i - (len(sets) - 1) / 2) * width, [by_label.get(lb, np.nan) for lb in labels],
                   width, label=tset)
        ax.set_title(_HEADERS.get(metric, "s / image"))
        ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    _legend_below(fig, axes[0])
    fig.savefig(path, dpi=110)


def _legend_below(fig: Any, ax: Any) -> None:
    """One legend for all panels, under them, so that it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)


def _plot_steps(path: Path, rows: Sequence[SummaryRow]) -> bool:
    """Each metric against DiffMatte's sampling steps, classical methods as dotted lines."""
    stepped = [r for r in rows if r.spec.steps is not None]
    if not stepped:
        return False
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    curves = dict.fromkeys((r.spec.method, r.spec.model, r.trimap_set) for r in stepped)
    all_steps = sorted({r.spec.steps for r in stepped if r.spec.steps is not None})
    for ax, metric in zip(axes, METRICS, strict=True):
        for method, model, tset in curves:
            pts = sorted((r.spec.steps, getattr(r, metric)) for r in stepped
                         if (r.spec.method, r.spec.model, r.trimap_set) == (method, model, tset))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{model or method} ({tset})")
        flat = [r for r in rows if r.spec.steps is None]
        for k, r in enumerate(flat):
            ax.axhline(getattr(r, metric), linestyle=":", linewidth=1, label=f"{r.spec.label} ({r.trimap_set})",
                       color=f"C{(len(curves) + k) % 10}")
        if len(all_steps) > 1 and all_steps[-1] / all_steps[0] >= 4:
            ax.set_xscale("log")
        ax.set_xticks(all_steps, [str(s) for s in all_steps])
        ax.minorticks_off()  # log-scale minor labels such as "3x10^0" only clutter
        ax.set_xlabel("sampling steps")
        ax.set_title(_HEADERS[metric])
    _legend_below(fig, axes[0])
    fig.savefig(path, dpi=110)
    return True
