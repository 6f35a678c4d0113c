"""Trimaps as matting benchmarks draw them, not as the official training pipeline erodes them.

Composition-1k-style trimaps mark unknown a band around everything that is not plainly
foreground or background: the fractional-alpha region, dilated by a width that grows with
the image (up to about 5% of its long side). Transparent objects are unknown as a whole:
only their opaque parts (a cap, a hem) may be foreground. The official pipeline's trimaps
(random erosion of the opaque and the clear parts, :func:`diffmatte.data.augment.generate_trimap`)
are narrower and are kept for the other part of the training mix.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .augment import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN

__all__ = ["band_width", "benchmark_trimap", "whole_object_trimap"]


def band_width(rng: np.random.Generator, height: int, width: int, max_fraction: float = 0.05) -> float:
    """A band radius in pixels: 0.5% to ``max_fraction`` of the long side, log-uniform (narrow bands are common)."""
    long_side = max(height, width)
    lo, hi = max(1.0, 0.005 * long_side), max(1.5, max_fraction * long_side)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _transition(alpha: np.ndarray) -> np.ndarray:
    """Fractional alphas, plus both sides of any hard 0/255 edge (so opaque cutouts get a band too)."""
    a = alpha.astype(np.int16)
    frac = (a > 0) & (a < 255)
    solid = a == 255
    edge = solid ^ ndimage.binary_erosion(solid, border_value=1)
    clear = a == 0
    edge |= clear ^ ndimage.binary_erosion(clear, border_value=1)
    return frac | edge


def benchmark_trimap(alpha: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) uint8 trimap: unknown within ``radius`` px of any fractional alpha or hard edge."""
    near = ndimage.distance_transform_edt(~_transition(alpha)) <= radius
    trimap = np.where(alpha >= 255, TRIMAP_FG, TRIMAP_BG).astype(np.uint8)
    trimap[near] = TRIMAP_UNKNOWN
    return trimap


def whole_object_trimap(alpha: np.ndarray, opaque: np.ndarray | None, radius: float) -> np.ndarray:
    """Transparent objects: everything with alpha > 0 (dilated by ``radius``) unknown, opaque parts foreground."""
    present = alpha > 2
    near = ndimage.distance_transform_edt(~present) <= radius
    trimap = np.full(alpha.shape, TRIMAP_BG, np.uint8)
    trimap[near] = TRIMAP_UNKNOWN
    if opaque is not None and opaque.any():
        core = ndimage.distance_transform_edt(opaque) > max(2.0, radius / 2)
        trimap[core & (alpha >= 255)] = TRIMAP_FG
    return trimap
