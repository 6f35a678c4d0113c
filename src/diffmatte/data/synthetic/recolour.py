"""Real matte shapes with foreground colours from unrelated photos.

The cutouts' masks and the alphamatting.com training mattes are the only real shapes the
default model learns from, and each comes with its own colours: a network can learn "this
outline is a teddy bear, teddy bears are brown" instead of reading colours. Here the same
alphas carry colours cut from a photo that has nothing to do with them, so shape and colour
are independent.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .procedural import Layer, photo_colours

__all__ = ["recolour"]


def recolour(rng: np.random.Generator, h: int, w: int, alpha_source: np.ndarray, photo: np.ndarray) -> Layer:
    """``alpha_source`` (uint8, any size) scaled to sit inside an (h, w) canvas, coloured from ``photo``."""
    sh, sw = alpha_source.shape
    scale = min(h / sh, w / sw) * rng.uniform(0.6, 1.0)
    nh, nw = max(8, int(sh * scale)), max(8, int(sw * scale))
    small = np.asarray(Image.fromarray(alpha_source).resize((nw, nh), Image.BILINEAR), dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        small = small[:, ::-1]
    alpha = np.zeros((h, w), np.float32)
    y, x = int(rng.integers(0, h - nh + 1)), int(rng.integers(0, w - nw + 1))
    alpha[y : y + nh, x : x + nw] = small
    fg = photo_colours(photo, h, w, rng, blur=float(rng.choice([0.0, 1.0, 3.0])))
    return Layer(fg, alpha, "recolour", opaque=alpha >= 1.0)
