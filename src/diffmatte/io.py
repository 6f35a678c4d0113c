"""Images, trimaps and mattes in and out, as users have them: paths, PIL images, NumPy arrays.

Converted here and nowhere else:

* image  -> (H, W, 3) float32 RGB in [0, 1] (tensor: (1, 3, H, W));
* trimap -> (H, W) float32 in {0, 0.5, 1} (tensor: (1, 1, H, W));
* alpha  -> written as 8- or 16-bit greyscale.

What is accepted:

* Images: RGB, RGBA/LA/transparent palette (the alpha channel is ignored, with a warning),
  greyscale, palette, CMYK, 16-bit greyscale PNG/TIFF; arrays (H, W, 3|4) or (H, W) of
  uint8, uint16 or float in [0, 1]. The EXIF orientation is applied.
* Trimaps: 0 is background, 255 (65535 in 16 bits, 1.0 as float) is foreground and *every
  other value is unknown*: 128 is usual, hand-drawn trimaps often use other greys (e.g. 102),
  and resized or anti-aliased trimaps have in-between values at the edges, all of which are
  treated as unknown. **Colour trimaps** (files and arrays alike) are read through the mean of
  R, G and B, so a pixel is background only where all three are 0, foreground only where all
  three are full scale, and every other colour (greys, coloured strokes, near-white) is
  unknown; an alpha channel is ignored. JPEG compression moves 0 and 255 to nearby values, so a
  JPEG trimap is read as (mostly) unknown: save trimaps as PNG.
* Alpha mattes: grey levels (8 or 16 bits). A colour matte is read from its first channel, as
  DIM's ``evaluate.m`` reads ground truth; a matte whose alpha channel is not fully opaque (a
  cutout) is read from that channel.

These are the only readers: prediction, evaluation, training and validation all read images,
trimaps and mattes through :func:`read_image` / :func:`read_image_u8`, :func:`read_trimap` /
:func:`read_trimap_levels` and :func:`read_alpha` / :func:`read_alpha_u8`, and find them by
:data:`IMAGE_EXTENSIONS`.

The writers (:mod:`diffmatte.writers`, imported here too) are atomic: the file is written under
a temporary name in the target folder and renamed over the target, so an interrupted run never
leaves a torn file and a failed run never replaces a good one.
"""
from __future__ import annotations

import os
import sys
import warnings
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError, TooLarge
from .limits import DEFAULT_MAX_PIXELS

# The writers live in .writers; importing them here keeps ``diffmatte.io`` the one place for both.
from .writers import (
    check_output_path,
    check_writable_folder,
    output_format,
    save_alpha,
    save_frames,
    save_rgb,
    save_rgba,
    save_trimap,
    to_uint8,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_SIDE",
    "DEFAULT_MAX_PIXELS",
    "read_image",
    "load_image",
    "read_trimap",
    "read_mask",
    "read_alpha",
    "read_image_u8",
    "read_rgba_u8",
    "read_trimap_levels",
    "read_alpha_u8",
    "trimap_levels",
    "load_pair",
    "image_to_array",
    "trimap_from_array",
    "as_image_tensor",
    "as_trimap_tensor",
    "check_image_size",
    "check_output_path",
    "check_writable_folder",
    "output_format",
    "is_image_file",
    "save_alpha",
    "save_rgba",
    "save_rgb",
    "save_trimap",
    "save_frames",
    "warn_user",
]

#: File extensions read as images wherever a folder is searched (predict's folder mode,
#: evaluation datasets, training data).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

MIN_SIDE = 32  # px; the encoders downsample by 16-32, smaller inputs carry no usable context

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# EXIF orientation tag 0x0112 -> the transpose that shows the image upright.
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = (5, 6, 7, 8)
_EXIF_PROBLEM = "diffmatte_exif_problem"  # key in img.info: PIL's complaint about the EXIF block



# -- warnings -------------------------------------------------------------------------------------
def warn_user(message: str) -> None:
    """``warnings.warn`` attributed to the first caller outside diffmatte, whatever the depth."""
    # stacklevel=2 names warn_user's caller; each frame inside the package adds one.
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


# -- opening --------------------------------------------------------------------------------------
def _open(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    what: str,
    max_pixels: int | None,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Open and decode a file, the bytes of one or a binary file object (an upload); the pixel
    limit is checked from the header, before decoding.

    ``draft_size`` (width, height) lets a large JPEG decode at a reduced scale that is still at
    least that size (4-8x faster; training backgrounds).
    """
    fp: Any
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise InputError(f"{what}: the upload is empty")
        label, fp = what, BytesIO(source)
    elif _is_binary_file(source):
        # an upload spooled to a temporary file: read from where it is, never copied whole
        if source.seek(0, os.SEEK_END) == 0:
            raise InputError(f"{what}: the upload is empty")
        source.seek(0)
        label, fp = what, source
    else:
        p = Path(source)
        if p.is_dir():
            raise InputError(f"{what} {p}: is a folder, not an image file")
        if not p.is_file():
            raise InputError(f"{what} {p}: no such file")
        label, fp = f"{what} {p}", p
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Our own max_pixels is the limit; PIL's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # The with-block closes the file (multi-frame formats keep it open otherwise);
            # the decoded pixels stay usable.
            with Image.open(fp) as img:
                _check_pixels(img.height, img.width, max_pixels, label)
                if draft_size is not None and img.format == "JPEG":
                    img.draft("RGB", draft_size)
                img.load()
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise TooLarge(f"{label}: too large to decode safely ({e})", label) from e
    except UnidentifiedImageError:
        raise InputError(
            f"{label}: not a readable image (not a format diffmatte reads: PNG, JPEG, WebP, TIFF, BMP)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"{label}: not a readable image ({type(e).__name__}: {e})") from e
    for w in caught:
        # PIL reports a corrupt EXIF block while decoding and then acts as if it had none;
        # kept so that _orientation can say so, naming the file.
        if "exif" in str(w.message).lower():
            img.info[_EXIF_PROBLEM] = str(w.message).strip()
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return img


def _is_binary_file(x: Any) -> bool:
    return hasattr(x, "read") and hasattr(x, "seek") and not isinstance(x, Image.Image)


def _is_file(x: Any) -> bool:
    """A path, the bytes of a file or a binary file object: what ``_open`` reads."""
    return isinstance(x, (str, os.PathLike, bytes, bytearray, memoryview)) or _is_binary_file(x)


def _orientation(img: Image.Image | np.ndarray, name: str = "image") -> int:
    """EXIF orientation 1..8 (1 = upright; arrays have none).

    A corrupt EXIF block or an orientation outside 1..8 is taken as upright, with a warning
    naming the file: the pixels are fine, but the picture may be shown turned.
    """
    if not isinstance(img, Image.Image):
        return 1
    if _EXIF_PROBLEM in img.info:
        warn_user(f"{name}: its EXIF block is corrupt ({img.info[_EXIF_PROBLEM]}); the image is taken as upright, "
                  "check that it is")
        return 1
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = img.getexif().get(_ORIENTATION_TAG, 1)
        value = int(raw)
    except Exception as e:  # corrupt EXIF blocks raise many types
        problem = f"{type(e).__name__}: {e}"
    else:
        corrupt = [str(w.message) for w in caught if "exif" in str(w.message).lower()]
        if not corrupt and (value == 1 or value in _TRANSPOSE):
            return value
        problem = corrupt[0].strip() if corrupt else f"orientation {raw!r} is not one of 1-8"
    warn_user(f"{name}: its EXIF block is corrupt ({problem}); the image is taken as upright, check that it is")
    return 1


def _orient(img: Image.Image | np.ndarray, orientation: int) -> Image.Image | np.ndarray:
    if orientation == 1 or not isinstance(img, Image.Image):
        return img
    return img.transpose(_TRANSPOSE[orientation])


def _hw(img: Image.Image | np.ndarray) -> tuple[int, int]:
    if isinstance(img, Image.Image):
        return img.height, img.width
    return int(img.shape[0]), int(img.shape[1])


def _source(x: Any, what: str, max_pixels: int | None) -> Image.Image | np.ndarray:
    """A path or the bytes of a file are opened, a PIL image passed through, anything else
    taken as an array."""
    if _is_file(x):
        return _open(x, what, max_pixels)
    if isinstance(x, Image.Image):
        _check_pixels(x.height, x.width, max_pixels, what)
        return x
    # torch is imported only by callers that have tensors: evaluation and training read files
    # through this module without it.
    torch_module = sys.modules.get("torch")
    if torch_module is not None and isinstance(x, torch_module.Tensor):
        raise InputError(f"{what}: pass a path, PIL image or NumPy array (for tensors use DiffMatte.sample)")
    a = np.asarray(x)
    if a.ndim >= 2:
        _check_pixels(a.shape[0], a.shape[1], max_pixels, what)
    return a


# -- size checks ----------------------------------------------------------------------------------
def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n} pixels"


def _check_pixels(h: int, w: int, max_pixels: int | None, name: str) -> None:
    if max_pixels is not None and h * w > max_pixels:
        raise TooLarge(
            f"{name} is {w}x{h} = {_pixels(h * w)}, over the limit of {_pixels(max_pixels)}; "
            "raise it with max_pixels= (--max-pixels on the command line)",
            name, w, h, max_pixels,
        )


def check_image_size(h: int, w: int, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str = "image") -> None:
    """Raise InputError unless both sides are >= MIN_SIDE and h * w <= max_pixels (None: no limit)."""
    if min(h, w) < MIN_SIDE:
        raise InputError(f"{name} is {w}x{h} pixels; both sides must be at least {MIN_SIDE} px")
    _check_pixels(h, w, max_pixels, name)


# -- images ---------------------------------------------------------------------------------------
def _in_unit_range(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).all()) and (a.size == 0 or (a.min() >= 0 and a.max() <= 1))


def _describe_range(a: np.ndarray) -> str:
    if not np.isfinite(a).all():
        return "NaN or infinite values"
    return f"range [{a.min():g}, {a.max():g}]"


def _scale_integer_grey(arr: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    # Mode "I" does not say its bit depth; values above 255 can only be 16-bit data.
    full = 65535.0 if sixteen_bit or arr.max(initial=0) > 255 else 255.0
    return np.clip(arr.astype(np.float64) / full, 0.0, 1.0)


def _pil_grey(img: Image.Image) -> np.ndarray | None:
    """(H, W) float64 in [0, 1] for the high-bit-depth grey modes, else None."""
    if img.mode in _SIXTEEN_BIT_MODES:
        return _scale_integer_grey(np.asarray(img), sixteen_bit=True)
    if img.mode == "I":
        return _scale_integer_grey(np.asarray(img), sixteen_bit=False)
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        return np.clip(a / 255.0 if a.max(initial=0) > 1.0 else a, 0.0, 1.0)
    return None


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)


def _has_transparency(img: Image.Image) -> bool:
    """An alpha channel with any pixel below fully opaque (an opaque one loses nothing when dropped)."""
    if not _has_alpha(img):
        return False
    lo, _ = img.convert("RGBA").getchannel("A").getextrema()
    return lo < 255


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    if _has_transparency(img):
        warn_user(f"{name}: its alpha channel is ignored; the image is matted as RGB")
    grey = _pil_grey(img)
    if grey is not None:
        return np.repeat(grey.astype(np.float32)[..., None], 3, axis=2)
    # convert() handles palette, greyscale, CMYK (Adobe-inverted JPEGs included), YCbCr, LAB.
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _array_to_rgb(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"{name} must be (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, got shape {a.shape}")
    if a.shape[2] == 4:
        opaque = 65535 if a.dtype == np.uint16 else 1.0 if np.issubdtype(a.dtype, np.floating) else 255
        if (a[..., 3] < opaque).any():
            warn_user(f"{name}: its alpha channel is ignored; the image is matted as RGB")
        a = a[..., :3]
    if np.issubdtype(a.dtype, np.integer) and a.dtype not in (np.uint8, np.uint16):
        if not (a.size and a.min() >= 0 and a.max() <= 255):
            raise InputError(f"{name}: unsupported dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")
        a = a.astype(np.uint8)  # small ints (e.g. int64 from NumPy arithmetic) are 8-bit values
    return _unit_float(a, name)


def image_to_array(image: Image.Image | np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from a PIL image (as is: no EXIF step) or an array."""
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, name)
    return _array_to_rgb(np.asarray(image), name)


def _upright(img: Image.Image, name: str) -> Image.Image:
    return _orient(img, _orientation(img, name))  # type: ignore[return-value]


def read_image(
    path: str | os.PathLike[str],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from any PIL-readable file, EXIF orientation applied."""
    img = _open(path, "image", max_pixels, draft_size)
    return _pil_to_rgb(_upright(img, f"image {path}"), f"image {path}")


def read_image_u8(
    path: str | os.PathLike[str],
    *,
    draft_size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
    what: str = "image",
    warn_alpha: bool = True,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB: :func:`read_image`'s reading, kept at 8 bits (training data).

    16-bit files are rounded to 8 bits. ``draft_size`` as in :func:`read_image`.
    ``warn_alpha=False``: an alpha channel is dropped silently (backgrounds, where it means
    nothing and a warning per sample would flood the training log).
    """
    name = f"{what} {path}"
    img = _upright(_open(path, what, max_pixels, draft_size), name)
    if _pil_grey(img) is None:
        if warn_alpha and _has_transparency(img):
            warn_user(f"{name}: its alpha channel is ignored; the image is matted as RGB")
        return np.asarray(img.convert("RGB"))
    return to_uint8(_pil_to_rgb(img, name))


def read_rgba_u8(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of a cutout (an image with its own alpha channel), EXIF applied."""
    name = f"cutout {path}"
    return np.asarray(_upright(_open(path, "cutout", max_pixels), name).convert("RGBA"))


def load_image(image: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str = "image") -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from a path, PIL image or array; EXIF orientation applied."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels)
    src = _source(image, name, max_pixels)
    return image_to_array(_orient(src, _orientation(src, name)), name)


# -- trimaps, masks, mattes -----------------------------------------------------------------------
def _pil_to_unit_grey(img: Image.Image) -> np.ndarray:
    """(H, W) float64 in [0, 1]; colour is reduced to luma (white 1, black 0, greys kept)."""
    grey = _pil_grey(img)
    if grey is not None:
        return grey
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def _pil_trimap_grey(img: Image.Image) -> np.ndarray:
    """(H, W) float64 in [0, 1] by the trimap rule: colour is the mean of R, G and B."""
    grey = _pil_grey(img)
    if grey is not None:
        return grey
    if img.mode in ("1", "L", "LA", "La"):
        return np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    # The mean is exactly 0 (or 1) only where every channel is: colours stay unknown.
    return np.asarray(img.convert("RGB"), dtype=np.float64).mean(axis=2) / 255.0


def _trimap_to_array(tri: Image.Image | np.ndarray, name: str) -> np.ndarray:
    if isinstance(tri, Image.Image):
        if tri.format == "JPEG":
            warn_user(
                f"{name} is a JPEG: compression moves 0 and 255 to nearby values, which count as unknown; "
                "save trimaps as PNG"
            )
        return trimap_from_array(_pil_trimap_grey(tri), name)
    return trimap_from_array(tri, name)


def trimap_from_array(arr: Any, name: str = "trimap") -> np.ndarray:
    """Quantise a trimap: exactly 0 -> background, exactly full scale -> foreground, else unknown.

    Args:
        arr: (H, W) or (H, W, 3|4) array; uint8 0..255, uint16 0..65535 (or 0..255), bool, or
            float in [0, 1]. Colour trimaps are reduced to the mean of R, G, B.

    Returns:
        (H, W) float32 in {0, 0.5, 1}.

    Raises:
        InputError: wrong shape, dtype or value range.
    """
    a = np.asarray(arr)
    if a.dtype == np.float32 and a.ndim == 2 and bool(((a == 0) | (a == 0.5) | (a == 1)).all()):
        return a  # already quantised (what the readers return): not copied
    if a.dtype == bool:
        f = a.astype(np.float64)
    elif a.dtype == np.uint8:
        f = a.astype(np.float64) / 255.0
    elif a.dtype == np.uint16:
        f = _scale_integer_grey(a, sixteen_bit=False)
    elif np.issubdtype(a.dtype, np.floating):
        if not _in_unit_range(a):
            raise InputError(f"{name}: float trimap values must lie in [0, 1], got {_describe_range(a)}")
        f = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputError(f"{name}: integer trimap values must lie in 0..255, got range [{a.min()}, {a.max()}]")
        f = a.astype(np.float64) / 255.0
    else:
        raise InputError(f"{name}: unsupported trimap dtype {a.dtype}")
    if f.ndim == 3 and f.shape[2] in (3, 4):
        # A colour trimap from a paint program: its grey level is the mean of R, G, B.
        f = f[..., :3].mean(axis=2)
    if f.ndim != 2:
        raise InputError(f"{name}: a trimap must be (H, W) or (H, W, 3), got shape {a.shape}")
    out = np.full(f.shape, 0.5, dtype=np.float32)
    out[f == 0] = 0.0
    out[f == 1] = 1.0
    return out


def read_trimap(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W) float32 trimap in {0, 0.5, 1}: 0 background, 255 foreground, other values unknown."""
    img = _open(path, "trimap", max_pixels)
    if img.format == "JPEG":
        warn_user(
            f"trimap {path} is a JPEG: compression moves 0 and 255 to nearby values, which count as unknown; "
            "save trimaps as PNG"
        )
    return trimap_from_array(_pil_trimap_grey(_upright(img, f"trimap {path}")), f"trimap {path}")


def read_trimap_levels(path: str | os.PathLike[str], max_pixels: int | None = None) -> np.ndarray:
    """(H, W) uint8 grey levels of a trimap file, by :func:`read_trimap`'s rule (for scoring).

    0 and 255 only where :func:`read_trimap` has background and foreground; every unknown
    pixel keeps its level, clipped to 1..254 (the metrics score only the level 128).
    """
    grey = _pil_trimap_grey(_upright(_open(path, "trimap", max_pixels), f"trimap {path}"))
    levels = np.clip(np.rint(grey * 255.0), 1, 254).astype(np.uint8)
    levels[grey == 0] = 0
    levels[grey == 1] = 255
    return levels


def trimap_levels(trimap: np.ndarray) -> np.ndarray:
    """A trimap in {0, 0.5, 1} as uint8 0 / 128 / 255."""
    t = np.asarray(trimap)
    return np.select([t == 0, t == 1], [0, 255], default=128).astype(np.uint8)


def read_mask(mask: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W) float32 in [0, 1] from a mask file, PIL image or array, EXIF orientation applied.

    A mask with an alpha channel that is not fully opaque (a cutout, e.g. from rembg) is
    read from its alpha; otherwise from its grey level (colour: luma).
    """
    src = _source(mask, "mask", max_pixels)
    src = _orient(src, _orientation(src, "mask"))
    if isinstance(src, Image.Image):
        if _has_alpha(src):
            a = np.asarray(src.convert("RGBA"))[..., 3]
            if a.min() < 255:
                return a.astype(np.float32) / 255.0
        return _pil_to_unit_grey(src).astype(np.float32)
    a = np.asarray(src)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., 3] if a.shape[2] == 4 and a[..., 3].min() < a[..., 3].max() else a[..., :3].mean(axis=2)
    if a.ndim != 2:
        raise InputError(f"mask must be (H, W), (H, W, 3) or (H, W, 4), got shape {np.asarray(src).shape}")
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.nan_to_num(a), 0.0, 1.0).astype(np.float32)
    return _scale_integer_grey(a, sixteen_bit=a.dtype == np.uint16 and a.max(initial=0) > 255).astype(np.float32)


def _pil_alpha(img: Image.Image) -> np.ndarray:
    """(H, W) float64 in [0, 1] by the alpha rule: a translucent alpha channel, else the grey
    level, else (colour) the first channel."""
    if _has_transparency(img):
        return np.asarray(img.convert("RGBA"))[..., 3] / 255.0
    grey = _pil_grey(img)
    if grey is not None:
        return grey
    if img.mode in ("1", "L", "LA", "La"):
        return np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    return np.asarray(img.convert("RGB"))[..., 0] / 255.0


def read_alpha_u8(path: str | os.PathLike[str], max_pixels: int | None = None) -> np.ndarray:
    """(H, W) uint8 alpha of a matte file by :func:`read_alpha`'s rule (16 bits rounded to 8)."""
    img = _upright(_open(path, "alpha", max_pixels), f"alpha {path}")
    if img.mode in ("L", "RGB") or (img.mode in ("LA", "RGBA", "P") and not _has_transparency(img)):
        # 8-bit sources directly: no float round trip for the common case
        a = np.asarray(img.convert("L") if img.mode in ("L", "LA") else img.convert("RGB"))
        return np.ascontiguousarray(a if a.ndim == 2 else a[..., 0])
    return to_uint8(_pil_alpha(img))


def read_alpha(alpha: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str = "alpha") -> np.ndarray:
    """(H, W) float32 alpha in [0, 1] from a matte file, PIL image or array (uint8/uint16/float);
    ``name`` is what an array is called in errors."""
    if _is_file(alpha):
        label = f"{name} {alpha}" if isinstance(alpha, (str, os.PathLike)) else name
        return _pil_alpha(_upright(_open(alpha, name, max_pixels), label)).astype(np.float32)
    if isinstance(alpha, Image.Image):
        _check_pixels(alpha.height, alpha.width, max_pixels, "alpha")
        return _pil_alpha(_upright(alpha, "alpha")).astype(np.float32)
    a = np.asarray(alpha)
    if a.ndim != 2:
        raise InputError(f"{name} must be (H, W), got shape {a.shape}")
    return _unit_float(a, name)


def _unit_float(a: np.ndarray, name: str) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] -> float32 in [0, 1]; anything else is refused."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        if not _in_unit_range(a):
            raise InputError(f"{name}: float values must lie in [0, 1], got {_describe_range(a)}")
        return a.astype(np.float32, copy=False)  # an array already loaded is not copied
    raise InputError(f"{name}: unsupported dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")


# -- image + trimap -------------------------------------------------------------------------------
def load_pair(
    image: Any,
    trimap: Any,
    *,
    resize_trimap: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray]:
    """Image and trimap, upright, checked and the same size.

    Each file's own EXIF orientation is applied. A trimap is taken to be in the image's
    displayed orientation (as drawn in an editor); one that fits only the image's stored
    pixels (made by a tool that ignored EXIF, no orientation of its own) is turned the same
    way as the image, with a warning.

    Args:
        image: path, PIL image or array (H, W, 3|4) / (H, W); see the module docstring.
        trimap: path, PIL image or array (H, W) / (H, W, 3); 0 bg, full scale fg, else unknown.
        resize_trimap: resize a trimap of another size to the image (nearest neighbour, after
            quantising, so no new values appear) instead of raising.
        max_pixels: refuse larger images (None: no limit).

    Returns:
        image (H, W, 3) float32 in [0, 1], trimap (H, W) float32 in {0, 0.5, 1}.

    Raises:
        InputError: unreadable files, sizes below MIN_SIDE or above max_pixels, size mismatch.
    """
    img_src = _source(image, "image", max_pixels)
    tri_src = _source(trimap, "trimap", max_pixels)
    img_name = f"image {image}" if isinstance(image, (str, os.PathLike)) else "image"
    tri_name = f"trimap {trimap}" if isinstance(trimap, (str, os.PathLike)) else "trimap"
    img_orient, tri_orient = _orientation(img_src, img_name), _orientation(tri_src, tri_name)
    upright = _orient(img_src, img_orient)
    tri_up = _orient(tri_src, tri_orient)
    if (
        _hw(tri_up) != _hw(upright)
        and tri_orient == 1
        and img_orient in _SWAPS_AXES
        and _hw(_orient(tri_src, img_orient)) == _hw(upright)
    ):
        warn_user(
            f"{tri_name} fits the image's stored pixels, not its EXIF orientation ({img_orient}); "
            "it is turned the same way as the image"
        )
        tri_up = _orient(tri_src, img_orient)
    h, w = _hw(upright)
    check_image_size(h, w, max_pixels, img_name)
    img_arr = image_to_array(upright, img_name)
    tri_arr = _trimap_to_array(tri_up, tri_name)
    if tri_arr.shape != (h, w):
        tri_arr = _fit_trimap(tri_arr, h, w, resize_trimap, tri_name)
    return img_arr, tri_arr


def _fit_trimap(tri: np.ndarray, h: int, w: int, resize: bool, name: str) -> np.ndarray:
    th, tw = tri.shape
    if not resize:
        raise InputError(
            f"{name} is {tw}x{th} but the image is {w}x{h} (width x height); they must be the same size "
            "(resize_trimap=True, or --resize-trimap on the command line, resizes the trimap to the image)"
        )
    warn_user(f"{name} is {tw}x{th}; resized to the image's {w}x{h} (nearest neighbour)")
    # Resampled as 0/1/2 codes with NEAREST so that no new (in-between) values appear.
    codes = Image.fromarray((tri * 2).astype(np.uint8))
    return np.asarray(codes.resize((w, h), Image.Resampling.NEAREST), dtype=np.float32) / 2.0


def as_image_tensor(image: Any, max_pixels: int | None = None) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1] from a path, PIL image or array (EXIF orientation applied)."""
    src = _source(image, "image", max_pixels)
    a = image_to_array(_orient(src, _orientation(src, "image")))
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def as_trimap_tensor(trimap: Any, max_pixels: int | None = None) -> torch.Tensor:
    """(1, 1, H, W) float32 in {0, 0.5, 1} from a path, PIL image or array (EXIF orientation applied)."""
    src = _source(trimap, "trimap", max_pixels)
    t = _trimap_to_array(_orient(src, _orientation(src, "trimap")), "trimap")
    import torch

    return torch.from_numpy(t)[None, None]


# -- finding images ------------------------------------------------------------------------------
def is_image_file(path: Path) -> bool:
    """True for a visible file with one of :data:`IMAGE_EXTENSIONS`."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
