"""Cutouts: foreground colours from an alpha matte, RGBA output, compositing on a new background.

An image is I = alpha F + (1 - alpha) B. Where alpha is fractional (hair, fur, glass) the
pixel mixes the old background into the foreground colour, so ``RGBA = (I, alpha)`` shows a
fringe of the old background on any new one. ``estimate_foreground`` recovers F (and B)
with the multi-level method of Germer et al., "Fast Multi-Level Foreground Estimation"
(ICPR 2020; pymatting's ``estimate_foreground_ml``): per pixel, minimise

    sum_c (alpha F_c + (1 - alpha) B_c - I_c)^2
        + sum_{j in N4} (eps + w |alpha - alpha_j|) (|F - F_j|^2 + |B - B_j|^2)

coarse to fine. Each level runs red-black Gauss-Seidel sweeps: all pixels of one checkerboard
colour are solved at once (their neighbours all have the other colour), which vectorises in
NumPy and converges like the sequential sweep, so no compiled kernel (numba) is needed.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor

from .errors import InputError
from .io import DEFAULT_MAX_PIXELS, load_image, read_alpha

__all__ = ["estimate_foreground", "estimate_foreground_background", "cutout", "composite", "parse_background"]

# (dy, dx) of the 4-neighbourhood
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _resize_nearest(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of (H0, W0[, C]) to (h, w[, C]); source index = dst * src // dst."""
    ys = np.arange(h) * x.shape[0] // h
    xs = np.arange(w) * x.shape[1] // w
    return x[ys][:, xs]


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = x[clamp(y + dy), clamp(x + dx)] for (H, W[, C]); edges repeat."""
    pad = ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2)
    p = np.pad(x, pad, mode="edge")
    h, w = x.shape[:2]
    return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _mean_colour(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(3,) mean of ``image`` (H, W, 3) over ``where`` (H, W); black when empty."""
    if not where.any():
        return np.zeros(image.shape[2], dtype=np.float32)
    return image[where].mean(axis=0).astype(np.float32)


def _neighbour_sum(x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """sum_j w_j x_j over the 4-neighbourhood, edges repeated; x (h, w, 3), weights 4 x (h, w, 1)."""
    h, w = x.shape[:2]
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")  # (h + 2, w + 2, 3)
    total = np.zeros_like(x)
    for (dy, dx), wgt in zip(_NEIGHBOURS, weights, strict=True):
        total += wgt * p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    return total


class _Level:
    """The per-pixel 2x2 system of one level; only the neighbour colours change between sweeps.

    [[a^2 + W, a(1-a)], [a(1-a), (1-a)^2 + W]] [F, B]^T = [a I + sum w_j F_j, (1-a) I + sum w_j B_j]^T
    with W = sum_j w_j, inverted here once per level.
    """

    def __init__(self, image: np.ndarray, alpha: np.ndarray, regularization: float, gradient_weight: float) -> None:
        a0 = alpha[..., None]  # (h, w, 1)
        a1 = 1.0 - a0
        self.weights = [
            (regularization + gradient_weight * np.abs(alpha - _shift(alpha, dy, dx)))[..., None]
            for dy, dx in _NEIGHBOURS
        ]
        w_sum = sum(self.weights)
        m00, m01, m11 = a0 * a0 + w_sum, a0 * a1, a1 * a1 + w_sum
        inv_det = 1.0 / (m00 * m11 - m01 * m01)
        self.c_ff, self.c_fb, self.c_bb = m11 * inv_det, -m01 * inv_det, m00 * inv_det
        self.base_f, self.base_b = a0 * image, a1 * image
        h, w = alpha.shape
        self.red = ((np.add.outer(np.arange(h), np.arange(w)) % 2) == 0)[..., None]

    def sweep(self, fg: np.ndarray, bg: np.ndarray) -> None:
        """Red pixels, then black ones (each colour's neighbours all have the other); in place."""
        for parity in (self.red, ~self.red):
            rhs_f = self.base_f + _neighbour_sum(fg, self.weights)
            rhs_b = self.base_b + _neighbour_sum(bg, self.weights)
            new_f = np.clip(self.c_ff * rhs_f + self.c_fb * rhs_b, 0.0, 1.0)
            new_b = np.clip(self.c_fb * rhs_f + self.c_bb * rhs_b, 0.0, 1.0)
            np.copyto(fg, new_f, where=parity)
            np.copyto(bg, new_b, where=parity)


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
    img = np.asarray(image, dtype=np.float32)
    a = np.asarray(alpha, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3 or a.shape != img.shape[:2]:
        raise InputError(f"image must be (H, W, 3) and alpha (H, W) of the same size; got {img.shape} and {a.shape}")
    h0, w0 = a.shape
    # Start from the mean colours of the sure regions at 1x1 and refine level by level.
    fg = _mean_colour(img, a > 0.9)[None, None, :]
    bg = _mean_colour(img, a < 0.1)[None, None, :]
    n_levels = max(1, math.ceil(math.log2(max(h0, w0, 2))))
    for level in range(n_levels + 1):
        h, w = round(h0 ** (level / n_levels)), round(w0 ** (level / n_levels))
        img_l, a_l = _resize_nearest(img, h, w), _resize_nearest(a, h, w)
        fg, bg = _resize_nearest(fg, h, w).copy(), _resize_nearest(bg, h, w).copy()
        system = _Level(img_l, a_l, regularization, gradient_weight)
        n_iter = n_small_iterations if h <= small_size and w <= small_size else n_big_iterations
        for _ in range(n_iter):
            system.sweep(fg, bg)
    return fg, bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, **kwargs: Any) -> np.ndarray:
    """(H, W, 3) float32 foreground colours in [0, 1]; see estimate_foreground_background."""
    return estimate_foreground_background(image, alpha, **kwargs)[0]


def cutout(image: Any, alpha: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """RGBA cutout with the foreground colours estimated, ready to place on any background.

    Args:
        image: path, PIL image or array (H, W, 3) (as for DiffMatte.predict).
        alpha: (H, W) float in [0, 1] / uint8 / uint16 array, or a matte file or PIL image.

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
    fg = estimate_foreground(img, a)
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
    pil = Image.fromarray((bg * 255.0 + 0.5).astype(np.uint8)).resize((sw, sh), Image.Resampling.LANCZOS)
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
