"""Output paths checked before any work, and atomic writers for mattes, cutouts and trimaps.

Every writer is atomic: the file is written under a temporary name in the target folder and
renamed over the target, so an interrupted run never leaves a torn file and a failed run
never replaces a good one. Re-exported by :mod:`diffmatte.io`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from .errors import InputError

__all__ = [
    "atomic_write",
    "to_uint8",
    "output_format",
    "check_output_path",
    "check_writable_folder",
    "save_alpha",
    "save_rgba",
    "save_rgb",
    "save_trimap",
    "save_frames",
]

# Output formats by purpose; others (PDF, EPS, ...) are refused rather than half-supported.
_GREY_FORMATS = ("PNG", "TIFF", "WEBP", "JPEG", "BMP")
_SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
_RGBA_FORMATS = ("PNG", "TIFF", "WEBP")
_RGB_FORMATS = ("PNG", "TIFF", "WEBP", "JPEG", "BMP")
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP", "TIFF")
_PURPOSE_FORMATS = {
    "alpha": _GREY_FORMATS,
    "alpha16": _SIXTEEN_BIT_FORMATS,
    "rgba": _RGBA_FORMATS,
    "rgb": _RGB_FORMATS,
    "frames": _ANIMATED_FORMATS,
}
_SAVE_PARAMS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}


def output_format(path: str | os.PathLike[str], purpose: str = "alpha") -> str:
    """The PIL format name for ``path``'s extension, if it can hold ``purpose``.

    ``purpose`` is one of "alpha", "alpha16", "rgba", "rgb", "frames".
    """
    Image.init()
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    allowed = _PURPOSE_FORMATS[purpose]
    if fmt not in allowed:
        exts = sorted(e for e, f in Image.registered_extensions().items() if f in allowed)
        what = {
            "alpha": "a matte",
            "alpha16": "a 16-bit matte",
            "rgba": "an image with transparency",
            "rgb": "an image",
            "frames": "an animation",
        }[purpose]
        got = f"extension {suffix!r}" if suffix else "no extension"
        raise InputError(f"output {path}: {got} cannot hold {what}; use one of {', '.join(exts)}")
    return fmt


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_path(
    path: str | os.PathLike[str],
    *,
    purpose: str = "alpha",
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    overwrite: bool = False,
) -> Path:
    """Check, before any work, that ``path`` can be written; return it as a Path.

    Raises InputError when the extension cannot hold ``purpose`` (see output_format), the
    path is one of ``inputs``, it exists and ``overwrite`` is False, it is a folder, or its
    folder cannot be created or written. Nothing is created.
    """
    p = Path(path)
    output_format(p, purpose)
    for src in inputs:
        if src is not None and _same_file(p, Path(src)):
            raise InputError(f"output {p} is also an input; choose another output path")
    if p.is_dir():
        raise InputError(f"output {p} is a folder; give a file name")
    if p.exists() and not overwrite:
        raise InputError(f"output {p} exists; pass --overwrite to replace it")
    check_writable_folder(p.parent)
    return p


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Raise InputError unless ``folder`` exists and is writable, or could be created."""
    base = _nearest_existing(Path(folder))
    if not base.is_dir():
        raise InputError(f"output folder {folder}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"output folder {folder}: {base} is not writable")


# -- writers --------------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it over ``path``, so that
    a failure half-way leaves the previous file whole (and no temporary file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_save(img: Image.Image | Sequence[Image.Image], path: str | os.PathLike[str], purpose: str, **params: Any) -> None:
    """Write to a temporary file in the target folder, then rename it over ``path``."""
    p = Path(path)
    fmt = output_format(p, purpose)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"output {p}: cannot create its folder ({e.strerror or e})") from e
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    opts = {**_SAVE_PARAMS.get(fmt, {}), **params}
    try:
        if isinstance(img, Image.Image):
            img.save(tmp, format=fmt, **opts)
        else:
            img[0].save(tmp, format=fmt, save_all=True, append_images=list(img[1:]), **opts)
        os.replace(tmp, p)
    except OSError as e:
        raise InputError(f"output {p}: cannot write ({e.strerror or e})") from e
    finally:
        if tmp.exists():
            tmp.unlink()


def to_uint8(x: Any) -> np.ndarray:
    """Float in [0, 1] to uint8 the way the DIM metrics' files are written: as ``cv2.imwrite``
    rounds, half to even, saturated (DEFINITIONS.md, "Common conventions"); NaN as 0. The one
    quantiser: every 8-bit matte, image and cutout diffmatte writes or scores goes through it.

    Examples
    --------
    >>> to_uint8(np.array([[0.0, 0.5 / 255, 1.5 / 255, 1.2]]))
    array([[  0,   0,   2, 255]], dtype=uint8)
    """
    return np.clip(np.rint(np.nan_to_num(np.asarray(x, dtype=np.float64)) * 255.0), 0, 255).astype(np.uint8)


def _unit_array(x: Any, ndim: int, channels: int | None, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != ndim or (channels is not None and a.shape[-1] != channels):
        want = "(H, W)" if channels is None else f"(H, W, {channels})"
        raise InputError(f"{name} must be {want}, got shape {a.shape}")
    return a


def save_alpha(alpha: np.ndarray, path: str | os.PathLike[str], *, bit_depth: int = 8) -> None:
    """Write an alpha matte (H, W) float in [0, 1] as 8- or 16-bit greyscale, atomically.

    16 bits needs PNG or TIFF. Values outside [0, 1] are clipped.
    """
    a = np.clip(np.nan_to_num(_unit_array(alpha, 2, None, "alpha")), 0.0, 1.0)
    if bit_depth == 16:
        img = Image.fromarray(np.rint(a * 65535.0).astype(np.uint16))  # rounded as to_uint8 rounds
        _atomic_save(img, path, "alpha16")
    elif bit_depth == 8:
        _atomic_save(Image.fromarray(to_uint8(a)), path, "alpha")
    else:
        raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")


def save_rgba(rgba: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an RGBA cutout (H, W, 4) float in [0, 1] as 8-bit PNG/TIFF/WebP, atomically."""
    a = _unit_array(rgba, 3, 4, "RGBA image")
    _atomic_save(Image.fromarray(to_uint8(a)), path, "rgba")


def save_rgb(rgb: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an RGB image (H, W, 3) float in [0, 1] as 8 bits, atomically."""
    a = _unit_array(rgb, 3, 3, "RGB image")
    _atomic_save(Image.fromarray(to_uint8(a)), path, "rgb")


def save_trimap(trimap: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a trimap (H, W) in {0, 0.5, 1} as 8-bit 0/128/255, atomically (lossless formats only)."""
    t = _unit_array(trimap, 2, None, "trimap")
    codes = np.select([t == 0, t == 1], [0, 255], default=128).astype(np.uint8)
    if output_format(path, "alpha") == "JPEG":
        raise InputError(f"output {path}: JPEG would blur the trimap's 0/128/255 values; use .png")
    _atomic_save(Image.fromarray(codes), path, "alpha")


def save_frames(frames: np.ndarray, path: str | os.PathLike[str], *, frame_ms: int = 250) -> None:
    """Write (S, H, W) float frames in [0, 1] as a looping greyscale animation (GIF/APNG/WebP/TIFF)."""
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim != 3 or f.shape[0] == 0:
        raise InputError(f"frames must be (S, H, W) with S >= 1, got shape {f.shape}")
    images = [Image.fromarray(to_uint8(x)) for x in f]
    # The last frame (the final matte) is held longer so the result can be seen.
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 4]
    _atomic_save(images, path, "frames", duration=durations, loop=0)
