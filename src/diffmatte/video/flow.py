"""Motion between two frames: dense optical flow, backward warping, and how far to trust it.

NumPy in and out. The flow is OpenCV's DIS (fast, CPU, already a dependency of the
automatic trimap's model package), run on a copy whose long side is at most ``FLOW_SIDE``
pixels and scaled back, because a matte's band needs the motion of regions, not of single
pixels, and 1080p flow at full size costs more than the matte.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["FLOW_SIDE", "Motion", "estimate_motion", "follow_subject", "warp"]

FLOW_SIDE = 640


@dataclass
class Motion:
    """Where each pixel of the current frame was in the previous one.

    ``flow`` (H, W, 2) float32: pixel (y, x) of the current frame came from
    (y + flow[..., 1], x + flow[..., 0]) of the previous. ``error`` (H, W) float32, pixels:
    the forward-backward inconsistency (0 where the two flows agree; large at occlusions and
    where the flow is wrong). ``residual``: mean absolute difference, in [0, 1], between the
    current frame and the previous frame warped to it (a scene cut makes it large).
    """

    flow: np.ndarray
    error: np.ndarray
    residual: float


def _grey(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if g.shape != shape:
        g = cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return g


def _small_shape(h: int, w: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(h, w))
    return max(8, round(h * scale)), max(8, round(w * scale))


def warp(x: np.ndarray, flow: np.ndarray, border_value: float | None = 0.0, nearest: bool = False,
         cubic: bool = False) -> np.ndarray:
    """``x`` of the previous frame seen from the current one: out[y, x] = x[y + fy, x + fx]
    (bilinear; outside the previous frame, ``border_value``, or the nearest edge pixel's value
    when None; ``nearest``: nearest-pixel sampling, for labels; ``cubic``: bicubic, sharper and
    may overshoot). ``x``: (H, W) or (H, W, C)."""
    import cv2

    h, w = flow.shape[:2]
    if x.shape[:2] != (h, w):
        raise InputError(f"cannot warp an array of size {x.shape[:2]} with a flow of size {(h, w)}")
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = gx + flow[..., 0]
    map_y = gy + flow[..., 1]
    src = np.ascontiguousarray(x if nearest or x.dtype == np.float32 else x.astype(np.float32))
    how = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    if border_value is None:
        return cv2.remap(src, map_x, map_y, interpolation=how, borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(src, map_x, map_y, interpolation=how, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def estimate_motion(previous: np.ndarray, current: np.ndarray, side: int = FLOW_SIDE) -> Motion:
    """The motion from ``previous`` to ``current`` (H, W, 3) uint8 RGB frames of one size."""
    import cv2

    if previous.shape != current.shape:
        raise InputError(f"frames change size: {previous.shape[:2]} then {current.shape[:2]}")
    h, w = current.shape[:2]
    sh, sw = _small_shape(h, w, side)
    prev_g, cur_g = _grey(previous, (sh, sw)), _grey(current, (sh, sw))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # backward: for each current pixel, where it was; forward: for each previous pixel, where it goes
    back = dis.calc(cur_g, prev_g, None)
    fwd = dis.calc(prev_g, cur_g, None)
    # where a current pixel lands in the previous frame, the forward flow should bring it back
    fwd_at = warp(fwd, back)
    error = np.linalg.norm(back + fwd_at, axis=-1).astype(np.float32)
    seen = warp(prev_g.astype(np.float32), back, border_value=np.nan)
    diff = np.abs(seen - cur_g.astype(np.float32))
    residual = float(np.nanmean(diff) / 255.0) if np.isfinite(diff).any() else 1.0
    if (sh, sw) != (h, w):
        sy, sx = h / sh, w / sw
        back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
        back[..., 0] *= sx
        back[..., 1] *= sy
        error = cv2.resize(error, (w, h), interpolation=cv2.INTER_LINEAR) * max(sx, sy)
    return Motion(flow=back.astype(np.float32), error=error.astype(np.float32), residual=residual)


def follow_subject(motion: Motion, alpha: np.ndarray, high: float = 0.98) -> Motion:
    """The motion of the subject of ``alpha`` (the previous frame's matte) everywhere: each
    pixel takes the flow and error of the nearest pixel of the subject's interior (where the
    moved alpha is at least ``high``, eroded by 2 px).

    A matte's band lies mostly over background, where the flow follows the background (or,
    where it is flat, nothing at all); hair and edges move with the subject, and so should the
    band. Without an interior (no pixel that sure) the motion is returned as it is.
    """
    import cv2

    moved = warp(alpha.astype(np.float32), motion.flow, border_value=None)
    core = cv2.erode((moved >= high).astype(np.uint8), np.ones((5, 5), np.uint8))
    if not core.any():
        return motion
    _, labels = cv2.distanceTransformWithLabels(1 - core, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(core)  # label k (1-based) is the k-th core pixel in row-major order
    flat = (ys * core.shape[1] + xs)[labels.ravel() - 1]
    flow = motion.flow.reshape(-1, 2)[flat].reshape(motion.flow.shape)
    error = motion.error.ravel()[flat].reshape(motion.error.shape)
    return Motion(flow=np.ascontiguousarray(flow), error=np.ascontiguousarray(error), residual=motion.residual)
