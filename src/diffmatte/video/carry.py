"""The trimap through time: the previous frame's matte, moved by the motion, made into this frame's trimap.

The unknown band moves with the optical flow; it grows onto the moved matte's transition where
the flow's forward-backward check disagrees (so a band widens where the motion is doubtful
instead of cutting into the subject) and narrows to the first trimap's half-width around the
transition; the rest is foreground or background by the moved matte. NumPy in and out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flow import Motion, warp

__all__ = ["CarryConfig", "band_of", "carry_trimap", "blend_with_mask", "is_scene_cut"]

MAX_BAND_FRACTION = 0.06  # band_of's half-width at most this much of the long side


@dataclass(frozen=True)
class CarryConfig:
    low: float = 0.1  # moved alpha strictly between these is a transition (the band's centre);
    high: float = 0.9  # fainter haze is not, or the band would creep outward with it
    error_gain: float = 1.0  # band pixels added per pixel of flow error ...
    max_step_fraction: float = 0.01  # ... at most this much of the long side
    cut_residual: float = 0.18  # mean |frame - warped previous| (0-1) above this is a scene cut
    cut_error_fraction: float = 0.5  # ... or this share of pixels with flow error above 4 px


def band_of(trimap: np.ndarray) -> int:
    """The half-width in pixels of ``trimap``'s unknown band ((H, W) uint8, 128 unknown):
    twice the mean distance of an unknown pixel to the nearest known one (exact for a band of
    even width), between 2 px and 6% of the long side."""
    import cv2

    unknown = trimap == 128
    cap = max(2, round(MAX_BAND_FRACTION * max(trimap.shape)))
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

    The previous trimap's unknown band moves with the motion. Where the flow is unsure by a
    pixel or more (its forward-backward error, at most ``config.max_step_fraction`` of the
    long side a frame) the band also takes in the moved matte's transition (alpha between
    ``config.low`` and ``config.high``, or an edge between its halves above and below 0.5)
    widened by that error; it shrinks where it lies farther than twice ``band`` (the first
    trimap's half-width: a band's whole width) plus that error from any transition. The rest
    is foreground where the moved alpha is at least 0.5, else background.
    A band that also grew onto every fractional pixel at its rim crept outward a pixel or two
    each frame, and a band rebuilt around the matte's transition grew with the network's haze
    in it; on a moving synthetic clip both doubled the unknown area in a few frames and the
    matte's error with it.
    """
    import cv2

    # a pixel new to the frame (it was outside the previous one) takes the nearest edge's value
    moved = warp(alpha.astype(np.float32), motion.flow, border_value=None)
    moved_unknown = warp(trimap, motion.flow, border_value=None, nearest=True) == 128
    inside = moved >= 0.5
    core = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    hull = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    transition = ((moved > config.low) & (moved < config.high)) | (hull & ~core)
    step = max(2.0, config.max_step_fraction * max(alpha.shape))
    unsure = np.minimum(config.error_gain * motion.error, step)

    if transition.any():
        to_transition = cv2.distanceTransform((~transition).astype(np.uint8), cv2.DIST_L2, 5)
    else:
        to_transition = np.full(transition.shape, np.inf, np.float32)
    # under a pixel of doubt the moved band stands; growing onto the transition's rim even then
    # (interpolation and haze put it there every frame) crept outward a pixel a frame
    unknown = moved_unknown | ((unsure >= 1.0) & (to_transition <= unsure))
    unknown &= to_transition <= 2 * band + unsure
    out = np.where(inside, 255, 0).astype(np.uint8)
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
