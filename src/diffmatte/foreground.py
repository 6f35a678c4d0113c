"""Cutouts: foreground colours from an alpha matte, RGBA output, compositing on a new background.

An image is I = alpha F + (1 - alpha) B. Where alpha is fractional (hair, fur, glass) the
pixel mixes the old background into the foreground colour, so ``RGBA = (I, alpha)`` shows a
fringe of the old background on any new one. ``estimate_foreground`` recovers F (and B)
with the multi-level method of Germer et al., "Fast Multi-Level Foreground Estimation"
(ICPR 2020; pymatting's ``estimate_foreground_ml``): per pixel, minimise

    sum_c (alpha F_c + (1 - alpha) B_c - I_c)^2
        + sum_{j in N4} (eps + w |alpha - alpha_j|) (|F - F_j|^2 + |B - B_j|^2)

coarse to fine. Each level runs red-black Gauss-Seidel sweeps: all pixels of one checkerboard
colour are solved at once (their neighbours all have the other colour), which vectorises (in
PyTorch, on every core) and converges like the sequential sweep, so no compiled kernel (numba)
is needed. NumPy in, NumPy out.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageColor

from .errors import InputError
from .io import DEFAULT_MAX_PIXELS, load_image, read_alpha
from .writers import to_uint8

if TYPE_CHECKING:
    import torch

__all__ = ["estimate_foreground", "estimate_foreground_background", "estimate_foreground_blur_fusion", "remove_spill",
           "cutout", "composite", "parse_background"]

# remove_spill's defaults: its reach as a fraction of the image's longer side, and its cap
DESPILL_REACH, DESPILL_CAP = 0.05, 0.5

# (dy, dx) of the 4-neighbourhood
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _resize_nearest(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of (H0, W0[, C]) to (h, w[, C]); source index = dst * src // dst."""
    ys = np.arange(h) * x.shape[0] // h
    xs = np.arange(w) * x.shape[1] // w
    return x[ys][:, xs]


def _image_and_alpha(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float32, checked: (H, W, 3) and (H, W) of the same size."""
    img = np.asarray(image, dtype=np.float32)
    a = np.asarray(alpha, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3 or a.shape != img.shape[:2]:
        raise InputError(f"image must be (H, W, 3) and alpha (H, W) of the same size; got {img.shape} and {a.shape}")
    return img, a


def _mean_colour(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(3,) mean of ``image`` (H, W, 3) over ``where`` (H, W); black when empty."""
    if not where.any():
        return np.zeros(image.shape[2], dtype=np.float32)
    return image[where].mean(axis=0).astype(np.float32)


def _shifted(x: "torch.Tensor", dy: int, dx: int, padded: "torch.Tensor | None" = None) -> "torch.Tensor":
    """out[:, y, x] = x[:, clamp(y + dy), clamp(x + dx)] for (C, H, W); edges repeat."""
    import torch.nn.functional as F

    p = F.pad(x[None], (1, 1, 1, 1), mode="replicate")[0] if padded is None else padded
    h, w = x.shape[-2:]
    return p[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


class _Level:
    """The per-pixel 2x2 system of one level; only the neighbour colours change between sweeps.

    [[a^2 + W, a(1-a)], [a(1-a), (1-a)^2 + W]] [F, B]^T = [a I + sum w_j F_j, (1-a) I + sum w_j B_j]^T
    with W = sum_j w_j, inverted here once per level. PyTorch tensors (C, h, w): the whole-image
    operations run on every core (about 4x faster than NumPy on a 2 MP image, the same numbers).
    """

    def __init__(self, image: "torch.Tensor", alpha: "torch.Tensor", regularization: float,
                 gradient_weight: float) -> None:
        import torch

        a0 = alpha[None]  # (1, h, w)
        a1 = 1.0 - a0
        self.weights = [regularization + gradient_weight * (a0 - _shifted(a0, dy, dx)).abs() for dy, dx in _NEIGHBOURS]
        w_sum = sum(self.weights)
        m00, m01, m11 = a0 * a0 + w_sum, a0 * a1, a1 * a1 + w_sum
        inv_det = 1.0 / (m00 * m11 - m01 * m01)
        self.c_ff, self.c_fb, self.c_bb = m11 * inv_det, -m01 * inv_det, m00 * inv_det
        self.base_f, self.base_b = a0 * image, a1 * image
        h, w = alpha.shape
        self.red = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == 0)[None]

    def _neighbour_sum(self, x: "torch.Tensor") -> "torch.Tensor":
        """sum_j w_j x_j over the 4-neighbourhood, edges repeated."""
        import torch.nn.functional as F

        padded = F.pad(x[None], (1, 1, 1, 1), mode="replicate")[0]
        total = self.weights[0] * _shifted(x, *_NEIGHBOURS[0], padded)
        for (dy, dx), wgt in zip(_NEIGHBOURS[1:], self.weights[1:], strict=True):
            total.add_(wgt * _shifted(x, dy, dx, padded))
        return total

    def sweep(self, fg: "torch.Tensor", bg: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Red pixels, then black ones (each colour's neighbours all have the other)."""
        import torch

        for parity in (self.red, ~self.red):
            rhs_f = self.base_f + self._neighbour_sum(fg)
            rhs_b = self.base_b + self._neighbour_sum(bg)
            new_f = (self.c_ff * rhs_f + self.c_fb * rhs_b).clamp_(0.0, 1.0)
            new_b = (self.c_fb * rhs_f + self.c_bb * rhs_b).clamp_(0.0, 1.0)
            fg, bg = torch.where(parity, new_f, fg), torch.where(parity, new_b, bg)
        return fg, bg


def estimate_foreground_background(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    regularization: float = 1e-5,
    gradient_weight: float = 1.0,
    small_size: int = 32,
    n_small_iterations: int = 10,
    n_big_iterations: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours behind a matte (multi-level, Germer et al. 2020).

    Args:
        image: (H, W, 3) float in [0, 1].
        alpha: (H, W) float in [0, 1].
        regularization: eps, the smoothness of the colours everywhere.
        gradient_weight: w, extra smoothness across alpha edges.
        small_size: levels no larger than this on both sides get ``n_small_iterations``.
        n_small_iterations, n_big_iterations: red-black sweeps per level.

    Returns:
        F, B: (H, W, 3) float32 in [0, 1].

    Raises:
        InputError: shapes that do not match.
    """
    img, a = _image_and_alpha(image, alpha)
    import torch

    h0, w0 = a.shape
    # Start from the mean colours of the sure regions at 1x1 and refine level by level.
    fg = _mean_colour(img, a > 0.9)[None, None, :]
    bg = _mean_colour(img, a < 0.1)[None, None, :]
    n_levels = max(1, math.ceil(math.log2(max(h0, w0, 2))))
    for level in range(n_levels + 1):
        h, w = round(h0 ** (level / n_levels)), round(w0 ** (level / n_levels))
        img_l, a_l = _resize_nearest(img, h, w), _resize_nearest(a, h, w)
        system = _Level(_chw(img_l), torch.from_numpy(np.ascontiguousarray(a_l)), regularization, gradient_weight)
        fg_t, bg_t = _chw(_resize_nearest(fg, h, w)), _chw(_resize_nearest(bg, h, w))
        n_iter = n_small_iterations if h <= small_size and w <= small_size else n_big_iterations
        for _ in range(n_iter):
            fg_t, bg_t = system.sweep(fg_t, bg_t)
        fg, bg = fg_t.numpy().transpose(1, 2, 0), bg_t.numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(fg), np.ascontiguousarray(bg)


def _chw(x: np.ndarray) -> "torch.Tensor":
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, **kwargs: Any) -> np.ndarray:
    """(H, W, 3) float32 foreground colours in [0, 1]; see estimate_foreground_background."""
    return estimate_foreground_background(image, alpha, **kwargs)[0]


def _box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over ``size`` x ``size`` windows of (H, W[, C]), edges mirrored."""
    from scipy import ndimage

    sizes = (size, size) + ((1,) if x.ndim == 3 else ())
    return ndimage.uniform_filter(x, size=sizes, mode="reflect")


def _blur_fusion_pass(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
                      size: int) -> tuple[np.ndarray, np.ndarray]:
    a = alpha[..., None]
    blurred_a = _box_mean(a[..., 0], size)[..., None]
    blurred_f = _box_mean(fg * a, size) / (blurred_a + 1e-5)
    blurred_b = _box_mean(bg * (1.0 - a), size) / ((1.0 - blurred_a) + 1e-5)
    f = blurred_f + a * (image - a * blurred_f - (1.0 - a) * blurred_b)
    return np.clip(f, 0.0, 1.0), blurred_b


def estimate_foreground_blur_fusion(image: np.ndarray, alpha: np.ndarray, large: int = 91,
                                    small: int = 7) -> np.ndarray:
    """Foreground colours by blur fusion, twice (Forte and Pitie, "Approximate Fast Foreground
    Colour Estimation", ICIP 2021): the local alpha-weighted means of foreground and background
    colour, then the compositing residual given back to the foreground; a second pass with a
    small window sharpens the first.

    Args:
        image: (H, W, 3) float in [0, 1].
        alpha: (H, W) float in [0, 1].
        large, small: the two passes' box sizes in px.

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    img, a = _image_and_alpha(image, alpha)
    fg, bg = _blur_fusion_pass(img, img, img, a, large)
    fg, _ = _blur_fusion_pass(img, fg, bg, a, small)
    return fg.astype(np.float32)


def remove_spill(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, reach: float | None = None,
                 cap: float = DESPILL_CAP) -> np.ndarray:
    """Foreground colours with the old background's hue taken out near the matte's edge.

    Light from the old background can tint a subject where the matte is 1, for example white fur
    lit through by grass. No foreground estimator can remove that: alpha 1 means the colour is the
    image's own. Keying tools suppress the spill instead, and so does this. Near the edge it
    removes the part of the foreground's chroma (colour minus its grey) that points along the
    local background's chroma, at most ``cap`` times that background's saturation. The effect is
    full where alpha is fractional and fades to nothing ``reach`` px inside the opaque region.
    Measured where the truth is known (docs/results.md), it makes the average cutout worse, because
    a foreground that shares the background's hue loses some of its colour. So it is an option
    (``cutout(..., despill=True)``, ``--despill``), off by default, like Photoshop's "Decontaminate
    Colors".

    Args:
        fg, bg: (H, W, 3) float in [0, 1]: the estimated foreground and background colours
            (``estimate_foreground_background``).
        alpha: (H, W) float in [0, 1].
        reach: px inside the opaque region (alpha >= 0.98) where the suppression fades out;
            None: ``DESPILL_REACH`` of the longer side.
        cap: at most this many times the background's own chroma is removed.

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    from scipy import ndimage

    f = np.asarray(fg, np.float32)
    b = np.asarray(bg, np.float32)
    a = np.asarray(alpha, np.float32)
    if f.shape != b.shape or f.ndim != 3 or f.shape[:2] != a.shape:
        raise InputError(f"remove_spill needs fg and bg (H, W, 3) and alpha (H, W) of one size; "
                         f"got {f.shape}, {b.shape} and {a.shape}")
    reach = DESPILL_REACH * max(a.shape) if reach is None else reach
    depth = ndimage.distance_transform_edt(a >= 0.98)
    weight = (np.clip(1 - depth / max(reach, 1.0), 0, 1) * (a > 0)).astype(np.float32)[..., None]
    bg_chroma = b - b.mean(-1, keepdims=True)
    saturation = np.linalg.norm(bg_chroma, axis=-1, keepdims=True)
    hue = bg_chroma / np.maximum(saturation, 1e-6)
    spill = np.maximum(((f - f.mean(-1, keepdims=True)) * hue).sum(-1, keepdims=True), 0)
    return np.clip(f - weight * np.minimum(spill, cap * saturation) * hue, 0, 1).astype(np.float32)


def cutout(image: Any, alpha: Any, *, despill: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """RGBA cutout with the foreground colours estimated, ready to place on any background.

    Args:
        image: path, PIL image or array (H, W, 3) (as for DiffMatte.predict).
        alpha: (H, W) float in [0, 1] / uint8 / uint16 array, or a matte file or PIL image.
        despill: also take the old background's hue out of the edge colours (:func:`remove_spill`).

    Returns:
        (H, W, 4) float32 in [0, 1]: estimated foreground RGB and alpha.

    Example:
        >>> import numpy as np
        >>> rgba = cutout(np.full((4, 4, 3), 0.5, np.float32), np.ones((4, 4), np.float32))
        >>> rgba.shape
        (4, 4, 4)
    """
    img = load_image(image, max_pixels)
    a = read_alpha(alpha, max_pixels)
    if a.shape != img.shape[:2]:
        raise InputError(f"alpha is {a.shape[1]}x{a.shape[0]} but the image is {img.shape[1]}x{img.shape[0]}")
    fg, bg = estimate_foreground_background(img, a)
    if despill:
        fg = remove_spill(fg, bg, a)
    return np.concatenate([fg, a[..., None]], axis=2)


def parse_background(background: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A background as (H, W, 3) float32 image or (3,) float32 colour in [0, 1].

    ``background`` is an image file, PIL image or (H, W, 3) array; or a colour: a string
    PIL understands ("#RRGGBB", "#RGB", "white", "rgb(0, 128, 255)"), or an (r, g, b) tuple
    or (3,) array: ints 0..255 or floats in [0, 1]. A string naming an existing file is read
    as an image.
    """
    if isinstance(background, (str, os.PathLike)) and Path(background).is_file():
        return load_image(background, max_pixels, "background")
    if isinstance(background, str):
        try:
            rgb = ImageColor.getrgb(background)[:3]
        except ValueError:
            raise InputError(
                f"background {background!r} is neither an image file nor a colour (e.g. #RRGGBB or 'white')"
            ) from None
        return np.asarray(rgb, dtype=np.float32) / 255.0
    if isinstance(background, os.PathLike):
        raise InputError(f"background {background}: no such file")
    colour = np.asarray(background) if isinstance(background, (tuple, list, np.ndarray)) else None
    if colour is not None and colour.shape == (3,):
        return (colour / 255.0 if np.issubdtype(colour.dtype, np.integer) else colour).astype(np.float32)
    return load_image(background, max_pixels, "background")


def _cover(bg: np.ndarray, h: int, w: int) -> np.ndarray:
    """Scale (H0, W0, 3) to cover (h, w) keeping its aspect ratio, then crop the centre."""
    h0, w0 = bg.shape[:2]
    if (h0, w0) == (h, w):
        return bg
    scale = max(h / h0, w / w0)
    sh, sw = max(h, round(h0 * scale)), max(w, round(w0 * scale))
    pil = Image.fromarray(to_uint8(bg)).resize((sw, sh), Image.Resampling.LANCZOS)
    top, left = (sh - h) // 2, (sw - w) // 2
    return np.asarray(pil, dtype=np.float32)[top : top + h, left : left + w] / 255.0


def composite(rgba: np.ndarray, background: Any) -> np.ndarray:
    """Place a cutout on a new background: alpha F + (1 - alpha) B.

    Args:
        rgba: (H, W, 4) float in [0, 1], as returned by ``cutout``.
        background: colour or image, see parse_background. An image of another size is
            scaled to cover the cutout and centre-cropped.

    Returns:
        (H, W, 3) float32 in [0, 1].

    Example:
        >>> import numpy as np
        >>> rgba = np.zeros((2, 2, 4), np.float32)   # fully transparent
        >>> composite(rgba, "#ff0000")[0, 0].tolist()
        [1.0, 0.0, 0.0]
    """
    c = np.asarray(rgba, dtype=np.float32)
    if c.ndim != 3 or c.shape[2] != 4:
        raise InputError(f"rgba must be (H, W, 4), got shape {c.shape}")
    h, w = c.shape[:2]
    bg = parse_background(background)
    bg = np.broadcast_to(bg, (h, w, 3)) if bg.ndim == 1 else _cover(bg, h, w)
    a = c[..., 3:4]
    return (a * c[..., :3] + (1.0 - a) * bg).astype(np.float32)
