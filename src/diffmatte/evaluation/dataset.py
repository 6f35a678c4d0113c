"""Finding and checking an evaluation dataset (Composition-1k or alphamatting.com layout).

Everything wrong with a dataset (missing, orphaned or unreadable files, sizes that differ,
trimap values other than 0/128/255) is collected and raised at once as a :class:`DatasetError`,
before any method runs. Files are read with :mod:`diffmatte.io`'s readers.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..io import is_image_file, read_trimap_levels
from ..selection import select_names
from .metrics import UNKNOWN_VALUE

__all__ = ["DatasetError", "Sample", "Dataset", "load_dataset", "select_names"]

_TRIMAP_VALUES = (0, UNKNOWN_VALUE, 255)
# Modes whose first channel (or grey level) is a usable 8- or 16-bit alpha.
_READABLE_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "I", "I;16", "I;16L", "I;16B"})
_LIST_LIMIT = 10  # names shown per problem line; the rest are counted


class DatasetError(InputError):
    """A dataset that cannot be evaluated; ``problems`` lists every reason, one per line."""

    def __init__(self, root: Path, problems: Sequence[str]) -> None:
        self.root = root
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"dataset {root} has {n} problem{'s' * (n != 1)}:\n{lines}")


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
    # image name -> subset ("hair", "transparent", ...) from the folder's manifest.json (`diffmatte data valset`)
    subsets: Mapping[str, str] = field(default_factory=dict)

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
    return Dataset(root=root, layout=folders.layout, trimap_sets=tuple(sets), samples=tuple(samples),
                   subsets=_subsets(root))


def _subsets(root: Path) -> dict[str, str]:
    """The subset of each image named in ``root/manifest.json`` (a validation set's); {} without one."""
    path = root / "manifest.json"
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text()).get("images", [])
        return {str(r["name"]): str(r["subset"]) for r in rows if "subset" in r}
    except (ValueError, AttributeError, KeyError, TypeError) as e:
        raise DatasetError(root, [f"{path}: not a validation-set manifest ({e})"]) from e


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
        if is_image_file(p):
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
