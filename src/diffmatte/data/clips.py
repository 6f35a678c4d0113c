"""Synthetic clips with a known matte in every frame, for scoring video matting.

* :func:`still_clip`: one photo with fresh sensor noise per frame (the matte should not move);
* :func:`pan_clip`: a camera pan over a photo with its matte (a crop window moving sideways);
* :func:`moving_clip`: a foreground with smooth random affine motion composited over a
  background that pans, with the true backward motion of the foreground for MESSDdt.

Frames are (H, W, 3) uint8 RGB, mattes (H, W) float32 in [0, 1]. Deterministic per seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..writers import to_uint8

__all__ = ["ClipFrame", "still_clip", "pan_clip", "moving_clip"]


@dataclass
class ClipFrame:
    image: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray  # (H, W) float32, the truth
    flow: np.ndarray | None  # (H, W, 2) float32: where this frame's pixels were in the previous one


def still_clip(image: np.ndarray, alpha: np.ndarray, frames: int, sigma: float = 3.0, seed: int = 0) -> Iterator[ClipFrame]:
    """``frames`` copies of ``image`` with independent Gaussian noise of ``sigma`` grey levels."""
    rng = np.random.default_rng(seed)
    base = image.astype(np.float32)
    zero = np.zeros((*alpha.shape, 2), np.float32)
    for i in range(frames):
        noisy = np.clip(np.rint(base + rng.normal(0.0, sigma, base.shape)), 0, 255).astype(np.uint8)
        yield ClipFrame(noisy, alpha.astype(np.float32), None if i == 0 else zero)


def pan_clip(image: np.ndarray, alpha: np.ndarray, frames: int, step: int = 3) -> Iterator[ClipFrame]:
    """A window ``step * (frames - 1)`` px narrower than ``image`` moving right by ``step`` px a frame."""
    h, w = alpha.shape
    width = w - step * (frames - 1)
    if width < 32:
        raise ValueError(f"the image ({w} px wide) is too narrow for {frames} frames of {step} px")
    flow = np.zeros((h, width, 2), np.float32)
    flow[..., 0] = step  # the content moves left: what is at x now was at x + step a frame ago
    for i in range(frames):
        x = i * step
        yield ClipFrame(np.ascontiguousarray(image[:, x:x + width]), alpha[:, x:x + width].astype(np.float32),
                        None if i == 0 else flow)


def _affine(t: float, params: np.ndarray) -> np.ndarray:
    """A 2x3 affine at time t (seconds) from smooth sinusoids: shift, rotation, scale."""
    (ax, fx, px), (ay, fy, py), (ar, fr, pr), (asc, fs, ps) = params
    dx = ax * np.sin(2 * np.pi * fx * t + px)
    dy = ay * np.sin(2 * np.pi * fy * t + py)
    rot = ar * np.sin(2 * np.pi * fr * t + pr)
    sc = 1.0 + asc * np.sin(2 * np.pi * fs * t + ps)
    c, s = np.cos(rot) * sc, np.sin(rot) * sc
    return np.array([[c, -s, dx], [s, c, dy]], np.float64)


def moving_clip(fg: np.ndarray, alpha: np.ndarray, background: np.ndarray, frames: int, size: tuple[int, int],
                fps: float = 24.0, seed: int = 0) -> Iterator[ClipFrame]:
    """``fg`` (h, w, 3) float in [0, 1] with ``alpha`` (h, w) moving smoothly over a window of
    ``size`` (H, W) panning across ``background`` (uint8, at least that size)."""
    import cv2

    rng = np.random.default_rng(seed)
    H, W = size
    bh, bw = background.shape[:2]
    if bh < H or bw < W:
        scale = max(H / bh, W / bw) * 1.25
        background = cv2.resize(background, (round(bw * scale), round(bh * scale)), interpolation=cv2.INTER_CUBIC)
        bh, bw = background.shape[:2]
    fh, fw = alpha.shape
    fit = min(0.8 * H / fh, 0.8 * W / fw)
    params = np.array([
        [0.08 * W, rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)],
        [0.05 * H, rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)],
        [0.08, rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)],
        [0.08, rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)],
    ])
    # foreground pixel -> frame pixel: centre, scale to fit, then the motion about the frame's centre
    centre = np.array([[fit, 0, W / 2 - fit * fw / 2], [0, fit, H / 2 - fit * fh / 2], [0, 0, 1]], np.float64)
    about = np.array([[1, 0, W / 2], [0, 1, H / 2], [0, 0, 1]], np.float64)
    back = np.linalg.inv(about)
    pan_x = min(rng.uniform(2.0, 8.0), (bw - W) / max(1, frames - 1))  # px a frame, within the picture
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float64)
    prev_m = None
    fg32, a32 = fg.astype(np.float32), alpha.astype(np.float32)
    for i in range(frames):
        m = about @ np.vstack([_affine(i / fps, params), [0, 0, 1]]) @ back @ centre
        warped_fg = cv2.warpAffine(fg32, m[:2], (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_a = cv2.warpAffine(a32, m[:2], (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x0 = int(round(i * pan_x))
        bg = background[(bh - H) // 2:(bh - H) // 2 + H, x0:x0 + W].astype(np.float32) / 255.0
        a = np.clip(warped_a, 0.0, 1.0)[..., None]
        image = to_uint8(a * warped_fg + (1 - a) * bg)
        flow = None
        if prev_m is not None:
            # frame pixel p came from prev_m @ inv(m) @ p in the previous frame
            rel = prev_m @ np.linalg.inv(m)
            px = rel[0, 0] * gx + rel[0, 1] * gy + rel[0, 2]
            py = rel[1, 0] * gx + rel[1, 1] * gy + rel[1, 2]
            flow = np.stack([px - gx, py - gy], axis=-1).astype(np.float32)
        prev_m = m
        yield ClipFrame(image, warped_a, flow)
