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
  treated as unknown. RGB trimaps are read through their luma, so white, black and greys keep
  their meaning and coloured strokes count as unknown. JPEG compression moves 0 and 255 to
  nearby values, so a JPEG trimap is read as (mostly) unknown: save trimaps as PNG.

Every writer is atomic: the file is written under a temporary name in the target folder and
renamed over the target, so an interrupted run never leaves a torn file and a failed run
never replaces a good one.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import InputError

__all__ = [
    "MIN_SIDE",
    "DEFAULT_MAX_PIXELS",
    "read_image",
    "load_image",
    "read_trimap",
    "read_mask",
    "read_alpha",
    "load_pair",
    "image_to_array",
    "trimap_from_array",
    "as_image_tensor",
    "as_trimap_tensor",
    "check_image_size",
    "check_output_path",
    "output_format",
    "is_image_file",
    "save_alpha",
    "save_rgba",
    "save_rgb",
    "save_trimap",
    "save_frames",
    "warn_user",
]

MIN_SIDE = 32  # px; the encoders downsample by 16-32, smaller inputs carry no usable context
# Refuses inputs whose decoded size alone would exhaust memory. Callers raise it with
# max_pixels= (CLI: --max-pixels); None disables the check.
DEFAULT_MAX_PIXELS = 50_000_000

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


# -- warnings -------------------------------------------------------------------------------------
def warn_user(message: str) -> None:
    """``warnings.warn`` attributed to the first caller outside diffmatte, whatever the depth."""
    # stacklevel=2 names warn_user's caller; each frame inside the package adds one.
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


# -- opening --------------------------------------------------------------------------------------
def _open(path: str | os.PathLike[str], what: str, max_pixels: int | None) -> Image.Image:
    """Open and decode a file; the pixel limit is checked from the header, before decoding."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {p}: is a folder, not an image file")
    if not p.is_file():
        raise InputError(f"{what} {p}: no such file")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels is the limit; PIL's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # The with-block closes the file (multi-frame formats keep it open otherwise);
            # the decoded pixels stay usable.
            with Image.open(p) as img:
                _check_pixels(img.height, img.width, max_pixels, f"{what} {p}")
                img.load()
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"{what} {p}: too large to decode safely ({e})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"{what} {p}: not a readable image ({type(e).__name__}: {e})") from e
    return img


def _orientation(img: Image.Image | np.ndarray) -> int:
    """EXIF orientation 1..8 (1 = upright); arrays and unreadable EXIF count as upright."""
    if not isinstance(img, Image.Image):
        return 1
    try:
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # corrupt EXIF blocks raise many types; the pixels are still fine
        return 1
    return value if value in _TRANSPOSE else 1


def _orient(img: Image.Image | np.ndarray, orientation: int) -> Image.Image | np.ndarray:
    if orientation == 1 or not isinstance(img, Image.Image):
        return img
    return img.transpose(_TRANSPOSE[orientation])


def _hw(img: Image.Image | np.ndarray) -> tuple[int, int]:
    if isinstance(img, Image.Image):
        return img.height, img.width
    return int(img.shape[0]), int(img.shape[1])


def _source(x: Any, what: str, max_pixels: int | None) -> Image.Image | np.ndarray:
    """A path is opened, a PIL image passed through, anything else taken as an array."""
    if isinstance(x, (str, os.PathLike)):
        return _open(x, what, max_pixels)
    if isinstance(x, Image.Image):
        _check_pixels(x.height, x.width, max_pixels, what)
        return x
    if isinstance(x, torch.Tensor):
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
        raise InputError(
            f"{name} is {w}x{h} = {_pixels(h * w)}, over the limit of {_pixels(max_pixels)}; "
            "raise it with max_pixels= (--max-pixels on the command line)"
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


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from any PIL-readable file, EXIF orientation applied."""
    img = _open(path, "image", max_pixels)
    return _pil_to_rgb(_orient(img, _orientation(img)), f"image {path}")  # type: ignore[arg-type]


def load_image(image: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str = "image") -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from a path, PIL image or array; EXIF orientation applied."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels)
    src = _source(image, name, max_pixels)
    return image_to_array(_orient(src, _orientation(src)), name)


# -- trimaps, masks, mattes -----------------------------------------------------------------------
def _pil_to_unit_grey(img: Image.Image) -> np.ndarray:
    """(H, W) float64 in [0, 1]; colour is reduced to luma (white 1, black 0, greys kept)."""
    grey = _pil_grey(img)
    if grey is not None:
        return grey
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def _trimap_to_array(tri: Image.Image | np.ndarray, name: str) -> np.ndarray:
    if isinstance(tri, Image.Image):
        if tri.format == "JPEG":
            warn_user(
                f"{name} is a JPEG: compression moves 0 and 255 to nearby values, which count as unknown; "
                "save trimaps as PNG"
            )
        return trimap_from_array(_pil_to_unit_grey(tri), name)
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
    return _trimap_to_array(_orient(img, _orientation(img)), f"trimap {path}")  # type: ignore[arg-type]


def read_mask(mask: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W) float32 in [0, 1] from a mask file, PIL image or array, EXIF orientation applied.

    A mask with an alpha channel that is not fully opaque (a cutout, e.g. from rembg) is
    read from its alpha; otherwise from its grey level (colour: luma).
    """
    src = _source(mask, "mask", max_pixels)
    src = _orient(src, _orientation(src))
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


def read_alpha(alpha: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(H, W) float32 alpha in [0, 1] from a matte file, PIL image or array (uint8/uint16/float)."""
    if isinstance(alpha, (str, os.PathLike, Image.Image)):
        return read_mask(alpha, max_pixels)
    a = np.asarray(alpha)
    if a.ndim != 2:
        raise InputError(f"alpha must be (H, W), got shape {a.shape}")
    return _unit_float(a, "alpha")


def _unit_float(a: np.ndarray, name: str) -> np.ndarray:
    """uint8 / uint16 / float in [0, 1] -> float32 in [0, 1]; anything else is refused."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        if not _in_unit_range(a):
            raise InputError(f"{name}: float values must lie in [0, 1], got {_describe_range(a)}")
        return a.astype(np.float32)
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
    img_orient, tri_orient = _orientation(img_src), _orientation(tri_src)
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
    a = image_to_array(_orient(src, _orientation(src)))
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def as_trimap_tensor(trimap: Any, max_pixels: int | None = None) -> torch.Tensor:
    """(1, 1, H, W) float32 in {0, 0.5, 1} from a path, PIL image or array (EXIF orientation applied)."""
    src = _source(trimap, "trimap", max_pixels)
    t = _trimap_to_array(_orient(src, _orientation(src)), "trimap")
    return torch.from_numpy(t)[None, None]


# -- output paths ---------------------------------------------------------------------------------
def is_image_file(path: Path) -> bool:
    """True for a visible file whose extension PIL can read."""
    Image.init()
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in Image.registered_extensions()


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


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(x), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


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
        img = Image.fromarray((a * 65535.0 + 0.5).astype(np.uint16))
        _atomic_save(img, path, "alpha16")
    elif bit_depth == 8:
        _atomic_save(Image.fromarray(_to_uint8(a)), path, "alpha")
    else:
        raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")


def save_rgba(rgba: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an RGBA cutout (H, W, 4) float in [0, 1] as 8-bit PNG/TIFF/WebP, atomically."""
    a = _unit_array(rgba, 3, 4, "RGBA image")
    _atomic_save(Image.fromarray(_to_uint8(a)), path, "rgba")


def save_rgb(rgb: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an RGB image (H, W, 3) float in [0, 1] as 8 bits, atomically."""
    a = _unit_array(rgb, 3, 3, "RGB image")
    _atomic_save(Image.fromarray(_to_uint8(a)), path, "rgb")


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
    images = [Image.fromarray(_to_uint8(x)) for x in f]
    # The last frame (the final matte) is held longer so the result can be seen.
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 4]
    _atomic_save(images, path, "frames", duration=durations, loop=0)
