"""The trimap through time: the previous frame's matte, moved by the motion, made into this frame's trimap.

The definite regions of the moved matte stay definite; the unknown band is its fractional
part and every foreground/background edge, widened by a base half-width (taken from the
first trimap) plus the flow's forward-backward error there, so a band grows where the
motion is doubtful instead of cutting into the subject. NumPy in and out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flow import Motion, warp

__all__ = ["CarryConfig", "band_of", "carry_trimap", "blend_with_mask", "is_scene_cut"]


@dataclass(frozen=True)
class CarryConfig:
    low: float = 0.02  # moved alpha at or below this is background ...
    high: float = 0.98  # ... at or above this foreground, between them unknown
    margin: float = 0.0  # band pixels around the moved matte's edges even where the flow is sure
    error_gain: float = 1.0  # band pixels added per pixel of flow error
    max_band_fraction: float = 0.06  # the band's half-width at most this much of the long side
    cut_residual: float = 0.18  # mean |frame - warped previous| (0-1) above this is a scene cut
    cut_error_fraction: float = 0.5  # ... or this share of pixels with flow error above 4 px


def band_of(trimap: np.ndarray) -> int:
    """The half-width in pixels of ``trimap``'s unknown band ((H, W) uint8, 128 unknown):
    twice the mean distance of an unknown pixel to the nearest known one (exact for a band of
    even width), between 2 px and 6% of the long side."""
    import cv2

    unknown = trimap == 128
    cap = max(2, round(0.06 * max(trimap.shape)))
    if not unknown.any():
        return 2
    if unknown.all():
        return cap
    dist = cv2.distanceTransform(unknown.astype(np.uint8), cv2.DIST_L2, 5)
    return int(np.clip(round(2.0 * float(dist[unknown].mean())), 2, cap))


def carry_trimap(trimap: np.ndarray, alpha: np.ndarray, motion: Motion, band: int,
                 config: CarryConfig = CarryConfig()) -> np.ndarray:
    """This frame's trimap ((H, W) uint8: 0, 128, 255) from the previous frame's ``trimap`` and
    ``alpha`` ((H, W) float in [0, 1]) and the ``motion`` from the previous frame to this one.

    The previous trimap moves with the motion (so a still scene keeps its trimap exactly);
    the band then takes in the moved matte's fractional part and its edges widened by the
    flow's error there, and narrows only where the moved matte is definite farther than twice
    ``band`` (the first trimap's half-width) from any edge.
    """
    import cv2

    # a pixel new to the frame (it was outside the previous one) takes the nearest edge's value
    moved = warp(alpha.astype(np.float32), motion.flow, border_value=None)
    moved_tri = warp(trimap, motion.flow, border_value=None, nearest=True)
    fg = moved >= config.high
    bg = moved <= config.low
    frac = ~(fg | bg)
    cap = max(2, round(config.max_band_fraction * max(alpha.shape)))
    radius = np.minimum(config.margin + config.error_gain * motion.error, cap)

    def dist_to(region: np.ndarray) -> np.ndarray:
        if not region.any():
            return np.full(region.shape, np.inf, np.float32)
        return cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)

    d_frac, d_fg, d_bg = dist_to(frac), dist_to(fg), dist_to(bg)
    edge = np.minimum(d_frac, np.where(fg, d_bg, np.where(bg, d_fg, 0.0)))  # 0 on fractional pixels
    unknown = (moved_tri == 128) | (edge <= radius)
    unknown &= ~(~frac & (edge > 2 * band + radius))
    out = np.where(fg, 255, 0).astype(np.uint8)
    out[unknown] = 128
    return out


def blend_with_mask(trimap: np.ndarray, auto: np.ndarray) -> np.ndarray:
    """The carried ``trimap`` corrected by an automatic one (``auto``, same values): where the
    two call a pixel definite but disagree, it becomes unknown; where the carried trimap has
    lost the subject entirely (no foreground left) the automatic trimap is taken whole."""
    if not (trimap == 255).any():
        return auto.copy()
    out = trimap.copy()
    disagree = ((trimap == 255) & (auto == 0)) | ((trimap == 0) & (auto == 255))
    out[disagree] = 128
    return out


def is_scene_cut(motion: Motion, config: CarryConfig = CarryConfig()) -> bool:
    """Whether the previous frame's matte cannot be carried to this one (a cut, a flash)."""
    return motion.residual > config.cut_residual or float((motion.error > 4.0).mean()) > config.cut_error_fraction
