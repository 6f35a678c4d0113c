"""Where should the user paint next? The uncertainty map as a picture, and windows of the most
uncertainty, ranked.

``predict(..., seeds=K, uncertainty=True)`` says per pixel how unsure the matte is. A person
corrects with strokes, so what helps is a place, not a pixel: here the square windows (``size``
px a side) whose summed uncertainty is largest, greedily: each next window is scored without
the pixels of those chosen before, so it finds another place (it may touch them, never re-count
them). NumPy in, NumPy out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = ["Suggestion", "suggest_windows", "uncertainty_image"]


def uncertainty_image(uncertainty: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1] to show or save: twice the uncertainty, so 1 (white) where the
    seeds split evenly between 0 and 1 (a standard deviation of 0.5) and 0 where they agree."""
    return np.clip(2.0 * np.asarray(uncertainty, np.float32), 0.0, 1.0)


@dataclass(frozen=True)
class Suggestion:
    """A window to correct: [left, right) x [top, bottom) and the uncertainty summed inside it."""

    left: int
    top: int
    right: int
    bottom: int
    score: float


def _window_sums(u: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Sum of ``u`` over the ``sh`` x ``sw`` window whose top-left corner is at each pixel."""
    c = np.zeros((u.shape[0] + 1, u.shape[1] + 1), np.float64)
    c[1:, 1:] = np.cumsum(np.cumsum(u, axis=0), axis=1)
    return c[sh:, sw:] - c[:-sh, sw:] - c[sh:, :-sw] + c[:-sh, :-sw]


def suggest_windows(uncertainty: np.ndarray, size: int = 64, count: int = 3) -> list[Suggestion]:
    """Up to ``count`` windows of ``size`` px, most summed uncertainty first (see the module).

    Args:
        uncertainty: (H, W) float >= 0, e.g. the second value of ``predict(..., uncertainty=True)``
            (0 on known pixels, so windows over known regions score nothing).
        size: the window's side in px (clipped to the image).
        count: how many windows at most; windows scoring 0 are never suggested.

    Returns:
        Suggestions, best first.
    """
    u = np.asarray(uncertainty, np.float64)
    if u.ndim != 2 or not np.isfinite(u).all() or (u < 0).any():
        raise InputError(f"uncertainty must be a finite (H, W) map of values >= 0, got shape {u.shape}")
    if size < 1 or count < 0:
        raise InputError(f"size must be >= 1 and count >= 0, got {size} and {count}")
    h, w = u.shape
    sh, sw = min(size, h), min(size, w)
    u = u.copy()
    out: list[Suggestion] = []
    for _ in range(count):
        sums = _window_sums(u, sh, sw)
        top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
        score = float(sums[top, left])
        if score <= 0:
            break
        out.append(Suggestion(int(left), int(top), int(left) + sw, int(top) + sh, score))
        u[top : top + sh, left : left + sw] = 0.0  # the next window must look elsewhere
    return out
