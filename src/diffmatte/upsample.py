"""Mattes computed at a lower resolution brought back to full size, guided by the full-size image.

A model trained on small images mattes a 2-3 MP photo better, and several times faster, at
the scale it was trained at (see docs/results.md). What is lost by plain bilinear upsampling
is the edge detail the full-size image still has; the fast guided filter (He & Sun 2015,
arXiv:1505.00996) recovers it: it fits alpha as a local linear function of the colour,
``alpha ~ A . I + b``, in every window of the low-resolution image, upsamples the smooth
coefficients ``A, b`` and applies them to the full-resolution colours. Edges then follow the
image's edges at full resolution. NumPy in, NumPy out.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["working_shape", "downscale_image", "downscale_trimap", "GuidedUpsampler", "guided_upsample"]


def working_shape(height: int, width: int, megapixels: float) -> tuple[int, int]:
    """(h, w) with at most ``megapixels`` and the same aspect; the input size if it is already small enough."""
    if megapixels <= 0 or height * width <= megapixels * 1e6:
        return height, width
    s = math.sqrt(megapixels * 1e6 / (height * width))
    return max(32, round(height * s)), max(32, round(width * s))


def downscale_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> shape, with an antialiasing filter (box-like area average)."""
    h, w = shape
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), mode="F").resize((w, h), Image.BOX))
                for c in range(image.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def downscale_trimap(trimap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """{0, 0.5, 1} trimap -> shape: a pixel stays known only if everything it covers is that known value.

    So the unknown region never shrinks: a low-resolution pixel over any unknown or mixed
    full-resolution pixel is unknown.
    """
    h, w = shape
    fg = np.asarray(Image.fromarray((trimap == 1).astype(np.float32), mode="F").resize((w, h), Image.BOX))
    bg = np.asarray(Image.fromarray((trimap == 0).astype(np.float32), mode="F").resize((w, h), Image.BOX))
    out = np.full((h, w), 0.5, np.float32)
    out[fg > 1 - 1e-4] = 1.0
    out[bg > 1 - 1e-4] = 0.0
    return out


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return ndimage.uniform_filter(x, size=2 * radius + 1, mode="reflect")


class GuidedUpsampler:
    """The guided upsampler for one image: what depends only on the image (the windows' colour
    means and inverted covariances) is computed once, so each matte of a trajectory costs only
    its own part.

    ``radius`` (low-resolution pixels) and ``eps`` are the guided filter's window and
    regulariser: a larger ``eps`` follows the colours less.
    """

    def __init__(self, image_low: np.ndarray, image: np.ndarray, radius: int = 2, eps: float = 1e-4) -> None:
        self.image, self.radius = image, radius
        guide = image_low.astype(np.float64)
        self.guide = guide
        self.mean_i = np.stack([_box(guide[..., c], radius) for c in range(3)], axis=-1)
        # per-pixel 3x3 colour covariance + eps I, inverted in closed form (symmetric)
        var = {}
        for a in range(3):
            for b in range(a, 3):
                var[a, b] = _box(guide[..., a] * guide[..., b], radius) - self.mean_i[..., a] * self.mean_i[..., b] + (
                    eps if a == b else 0.0
                )
        s00, s01, s02, s11, s12, s22 = var[0, 0], var[0, 1], var[0, 2], var[1, 1], var[1, 2], var[2, 2]
        c00 = s11 * s22 - s12 * s12
        c01 = s02 * s12 - s01 * s22
        c02 = s01 * s12 - s02 * s11
        c11 = s00 * s22 - s02 * s02
        c12 = s01 * s02 - s00 * s12
        c22 = s00 * s11 - s01 * s01
        det = s00 * c00 + s01 * c01 + s02 * c02
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        self.inverse = [[c / det for c in row] for row in ((c00, c01, c02), (c01, c11, c12), (c02, c12, c22))]

    def __call__(self, alpha_low: np.ndarray) -> np.ndarray:
        """Full-size alpha (H, W) float32 in [0, 1] from ``alpha_low`` computed on the low-resolution image."""
        r, guide, mean_i = self.radius, self.guide, self.mean_i
        p = alpha_low.astype(np.float64)
        mean_p = _box(p, r)
        cov = [_box(guide[..., c] * p, r) - mean_i[..., c] * mean_p for c in range(3)]
        a_coef = np.stack([sum(self.inverse[i][j] * cov[j] for j in range(3)) for i in range(3)], axis=-1)
        b_coef = mean_p - (a_coef * mean_i).sum(axis=-1)
        mean_a = [_box(a_coef[..., c], r) for c in range(3)]
        mean_b = _box(b_coef, r)
        big_h, big_w = self.image.shape[:2]

        def up(x: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize((big_w, big_h), Image.BILINEAR))

        out = up(mean_b) + sum(up(mean_a[c]) * self.image[..., c] for c in range(3))
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def guided_upsample(alpha_low: np.ndarray, image_low: np.ndarray, image: np.ndarray,
                    radius: int = 2, eps: float = 1e-4) -> np.ndarray:
    """Full-size alpha from ``alpha_low`` (h, w) computed on ``image_low`` (h, w, 3), guided by ``image`` (H, W, 3).

    Returns (H, W) float32 in [0, 1]. For several mattes of one image use :class:`GuidedUpsampler`.
    """
    return GuidedUpsampler(image_low, image, radius, eps)(alpha_low)
