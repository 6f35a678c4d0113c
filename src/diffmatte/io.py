"""Images and trimaps in, as users have them: paths, PIL images, NumPy arrays.

Converted here and nowhere else into tensors: image (1, 3, H, W) float32 RGB in [0, 1],
trimap (1, 1, H, W) float32 in {0, 0.5, 1}.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

__all__ = ["read_image", "read_trimap", "as_image_tensor", "as_trimap_tensor", "trimap_from_array"]


def _open(path: str | os.PathLike[str], what: str) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p}: no such file")
    try:
        img = Image.open(p)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{what} {p}: not a readable image ({e})") from e
    # Phones store rotation as EXIF; apply it so image and trimap line up as displayed.
    return ImageOps.exif_transpose(img) or img


def _pil_to_rgb_array(img: Image.Image, name: str) -> np.ndarray:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        warnings.warn(f"{name}: its alpha channel is ignored; the image is matted as RGB", stacklevel=4)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        maxval = 65535.0 if arr.max() > 255 else 255.0
        arr = np.repeat((arr / maxval)[..., None], 3, axis=2)
        return arr.astype(np.float32)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from any PIL-readable file, EXIF orientation applied."""
    return _pil_to_rgb_array(_open(path, "image"), str(path))


def read_trimap(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W) float32 trimap in {0, 0.5, 1}: 0 background, 255 foreground, other greys unknown."""
    img = _open(path, "trimap")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = arr / (65535.0 if arr.max() > 255 else 255.0)
    else:
        arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    return trimap_from_array(arr, str(path))


def trimap_from_array(arr: np.ndarray, name: str = "trimap") -> np.ndarray:
    """Quantise a trimap: exactly 0 -> background, exactly 1 -> foreground, else unknown.

    ``arr`` is (H, W) with values in [0, 1] (float) or 0..255 (uint8). Hand-drawn trimaps
    use greys other than 128 (e.g. 102) for the unknown band; all of them mean unknown.
    """
    a = np.asarray(arr)
    if a.dtype == np.uint8:
        f = a.astype(np.float64) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any() or a.min() < 0 or a.max() > 1:
            raise InputError(f"{name}: float trimap values must lie in [0, 1], got range [{a.min():g}, {a.max():g}]")
        f = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputError(f"{name}: integer trimap values must lie in 0..255, got range [{a.min()}, {a.max()}]")
        f = a.astype(np.float64) / (1.0 if a.dtype == bool else 255.0)
    else:
        raise InputError(f"{name}: unsupported trimap dtype {a.dtype}")
    if f.ndim == 3 and f.shape[2] in (3, 4):
        # An RGB(A) trimap from a paint program: its grey level is the mean of R, G, B.
        f = f[..., :3].mean(axis=2)
    if f.ndim != 2:
        raise InputError(f"{name}: a trimap must be (H, W) or (H, W, 3), got shape {a.shape}")
    out = np.full(f.shape, 0.5, dtype=np.float32)
    out[f == 0] = 0.0
    out[f == 1] = 1.0
    return out


def _image_array(image: Any) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _pil_to_rgb_array(ImageOps.exif_transpose(image) or image, "image")
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"image must be (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, got shape {a.shape}")
    if a.shape[2] == 4:
        warnings.warn("image: its alpha channel is ignored; the image is matted as RGB", stacklevel=4)
        a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any() or a.min() < 0 or a.max() > 1:
            raise InputError(f"float image values must lie in [0, 1], got range [{a.min():g}, {a.max():g}]")
        return a.astype(np.float32)
    raise InputError(f"unsupported image dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")


def as_image_tensor(image: Any) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1] from a path, PIL image or array."""
    a = _image_array(image)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def as_trimap_tensor(trimap: Any) -> torch.Tensor:
    """(1, 1, H, W) float32 in {0, 0.5, 1} from a path, PIL image or array."""
    if isinstance(trimap, (str, os.PathLike)):
        t = read_trimap(trimap)
    elif isinstance(trimap, Image.Image):
        t = trimap_from_array(np.asarray(trimap.convert("L")))
    else:
        t = trimap_from_array(np.asarray(trimap))
    return torch.from_numpy(t)[None, None]
