"""Finding and checking training files: foreground/alpha pairs, backgrounds, image triplets.

Folders are read as they are: searched recursively, files that are not images by their
extension (``.txt`` descriptions, ``MANIFEST.csv``, ``SOURCE.md``) are ignored, and files are
matched by their path relative to their folder without the extension (``fg/a/cat.png`` pairs
with ``alpha/a/cat.jpg``). Every image is opened and checked once before training starts,
so a bad file stops the run with its name instead of crashing a worker hours later.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..io import IMAGE_EXTENSIONS, read_alpha_u8, read_image_u8, read_rgba_u8, read_trimap, trimap_levels
from ..selection import select_names, split_patterns

__all__ = [
    "IMAGE_EXTENSIONS",
    "FgAlphaPair",
    "Triplet",
    "ScanReport",
    "find_images",
    "scan_foregrounds",
    "scan_backgrounds",
    "scan_triplets",
    "read_background",
    "load_rgb",
    "load_alpha",
    "load_trimap",
    "load_foreground",
    "load_pair_alpha",
]

log = logging.getLogger(__name__)

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


@dataclass(frozen=True)
class FgAlphaPair:
    fg: Path
    alpha: Path | None  # None: the alpha channel of ``fg``
    size: tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class Triplet:
    image: Path
    alpha: Path
    trimap: Path | None  # None: a trimap is generated from the alpha
    size: tuple[int, int]  # (width, height)


@dataclass
class ScanReport:
    """Files left out by ``skip_bad`` scans, with the reason for each."""

    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: Path, reason: str, skip_bad: bool) -> None:
        if not skip_bad:
            raise InputError(f"{path}: {reason}")
        log.warning("skipping %s: %s", path, reason)
        self.skipped.append((path, reason))


def find_images(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Images under ``folder`` (recursive), keyed by relative path without extension."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"data folder {root}: no such directory")
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            key = p.relative_to(root).with_suffix("").as_posix()
            if key in found:
                raise InputError(f"{found[key]} and {p} have the same name; rename one so files pair unambiguously")
            found[key] = p
    return found


def _probe(path: Path) -> tuple[tuple[int, int], str]:
    """(size, mode) of an image file, after checking that it is a readable image."""
    try:
        with Image.open(path) as img:
            size, mode, has_transparency = img.size, img.mode, "transparency" in img.info
            img.verify()  # checks the file's structure (PNG CRCs) without decoding pixels
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _Unreadable(f"not a readable image ({e})") from e
    if mode == "P" and has_transparency:
        mode = "PA"
    return size, mode


class _Unreadable(Exception):
    pass


def scan_foregrounds(fg_dir: str, alpha_dir: str, report: ScanReport, skip_bad: bool) -> list[FgAlphaPair]:
    """Foreground/alpha pairs; without ``alpha_dir`` each foreground must carry an alpha channel."""
    fgs = find_images(fg_dir)
    alphas = find_images(alpha_dir) if alpha_dir else {}
    pairs = []
    for key, fg in fgs.items():
        try:
            size, mode = _probe(fg)
        except _Unreadable as e:
            report.add(fg, str(e), skip_bad)
            continue
        alpha = alphas.get(key)
        if alpha_dir and alpha is None:
            report.add(fg, f"foreground has no alpha in {alpha_dir} (looked for {key}.*)", skip_bad)
            continue
        if alpha is None:
            if mode not in _ALPHA_MODES:
                report.add(fg, f"foreground has no alpha channel (mode {mode}) and no alpha folder was given", skip_bad)
                continue
        else:
            try:
                alpha_size, _ = _probe(alpha)
            except _Unreadable as e:
                report.add(alpha, str(e), skip_bad)
                continue
            if alpha_size != size:
                report.add(
                    fg,
                    f"foreground is {size[0]}x{size[1]} but its alpha {alpha} is {alpha_size[0]}x{alpha_size[1]}",
                    skip_bad,
                )
                continue
        pairs.append(FgAlphaPair(fg, alpha, size))
    for key in sorted(set(alphas) - set(fgs)):
        log.info("alpha %s has no foreground; ignored", alphas[key])
    if not pairs:
        where = f"{fg_dir} with alphas in {alpha_dir}" if alpha_dir else f"{fg_dir} (RGBA images)"
        raise InputError(f"no usable foreground/alpha pairs in {where}")
    return pairs


def scan_backgrounds(bg_dir: str, report: ScanReport, skip_bad: bool) -> list[Path]:
    bgs = []
    for path in find_images(bg_dir).values():
        try:
            _probe(path)
        except _Unreadable as e:
            report.add(path, str(e), skip_bad)
            continue
        bgs.append(path)
    if not bgs:
        raise InputError(f"no usable background images in {bg_dir}")
    return bgs


def scan_triplets(
    image_dir: str, alpha_dir: str, trimap_dir: str, report: ScanReport, skip_bad: bool, names: str = ""
) -> list[Triplet]:
    """(image, alpha[, trimap]) triplets matched by name; all three must have the same size.

    ``names`` keeps only the images picked by its comma-separated patterns (exact names,
    globs or ranges, see diffmatte.selection), e.g. "GT01-GT18" for a training split.
    """
    if not alpha_dir:
        raise InputError(f"images in {image_dir} need an alpha folder (alpha_dir) to train or validate on")
    images = find_images(image_dir)
    keep, problems = select_names(list(images), split_patterns(names))
    if problems:
        raise InputError(f"{image_dir}: " + "; ".join(problems))
    images = {k: images[k] for k in keep}
    alphas = find_images(alpha_dir)
    trimaps = find_images(trimap_dir) if trimap_dir else {}
    out = []
    for key, image in images.items():
        alpha, trimap = alphas.get(key), trimaps.get(key)
        if alpha is None:
            report.add(image, f"image has no alpha in {alpha_dir} (looked for {key}.*)", skip_bad)
            continue
        if trimap_dir and trimap is None:
            report.add(image, f"image has no trimap in {trimap_dir} (looked for {key}.*)", skip_bad)
            continue
        try:
            size, _ = _probe(image)
        except _Unreadable as e:
            report.add(image, str(e), skip_bad)
            continue
        bad = False
        for other in (alpha, trimap):
            if other is None:
                continue
            try:
                other_size, _ = _probe(other)
            except _Unreadable as e:
                report.add(other, str(e), skip_bad)
                bad = True
                break
            if other_size != size:
                report.add(
                    image,
                    f"image is {size[0]}x{size[1]} but {other} is {other_size[0]}x{other_size[1]}",
                    skip_bad,
                )
                bad = True
                break
        if not bad:
            out.append(Triplet(image, alpha, trimap, size))
    if not out:
        raise InputError(f"no usable (image, alpha) pairs in {image_dir} with alphas in {alpha_dir}")
    return out


# -- reading (called by the datasets, in worker processes) -----------------------------------
# diffmatte.io's readers, so that training reads every file as predict and evaluate do.


def load_rgb(path: Path, draft_size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB (:func:`diffmatte.io.read_image_u8`)."""
    return read_image_u8(path, draft_size=draft_size)


def read_background(path: Path, draft_size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a background photo; an alpha channel (some wallpapers have one)
    is dropped without a warning."""
    return read_image_u8(path, draft_size=draft_size, what="background", warn_alpha=False)


def load_alpha(path: Path) -> np.ndarray:
    """(H, W) uint8 alpha (:func:`diffmatte.io.read_alpha_u8`: a colour matte's first channel)."""
    return read_alpha_u8(path)


def load_trimap(path: Path) -> np.ndarray:
    """(H, W) uint8 trimap 0 / 128 / 255 by :func:`diffmatte.io.read_trimap`'s rule: exactly 0 and 255
    (all channels, for colour) are known, every other value is unknown."""
    return trimap_levels(read_trimap(path, max_pixels=None))


def load_pair_alpha(pair: FgAlphaPair) -> np.ndarray:
    """(H, W) uint8 alpha of a pair, without decoding a foreground photo it does not need."""
    if pair.alpha is not None:
        return load_alpha(pair.alpha)
    return np.ascontiguousarray(read_rgba_u8(pair.fg)[..., 3])


def load_foreground(pair: FgAlphaPair) -> tuple[np.ndarray, np.ndarray]:
    """((H, W, 3) uint8 foreground, (H, W) uint8 alpha)."""
    if pair.alpha is not None:
        return load_rgb(pair.fg), load_alpha(pair.alpha)
    rgba = read_rgba_u8(pair.fg)
    return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
