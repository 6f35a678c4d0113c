"""Video-matting metrics: per-frame error is the image metrics' job; these score time.

* ``dtssd`` (Erofeev et al., "Perceptually motivated benchmark for video matting", BMVC
  2015; the form video-matting papers report): for frames t-1, t, the root mean square over
  pixels of (pred_t - pred_{t-1}) - (true_t - true_{t-1}), times 100. A matte that flickers
  where the truth is still, or stands still where the truth moves, scores high.
* ``messddt`` (same paper): the change of the squared error along the true motion,
  sum over pixels of |E_t(p) - E_{t-1}(p + v_t(p))| with E = (pred - true)^2 and v_t the
  true motion from frame t back to t-1, divided by 1000 (SAD's units). An error that moves
  with the object is not penalised; one that appears and disappears is.
* ``frame_change``: the mean |pred_t - pred_{t-1}| over a region (no ground truth needed: on a
  still scene it is the flicker itself).

NumPy in and out; alphas are (H, W) floats in [0, 1].
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .flow import warp

__all__ = ["dtssd", "messddt", "frame_change"]


def _check(*arrays: np.ndarray) -> None:
    shape = arrays[0].shape
    for a in arrays:
        if a.shape != shape or a.ndim != 2:
            raise InputError(f"video metrics need (H, W) mattes of one size, got {[x.shape for x in arrays]}")


def dtssd(pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray) -> float:
    _check(pred, pred_prev, true, true_prev)
    d = (pred.astype(np.float64) - pred_prev) - (true.astype(np.float64) - true_prev)
    return float(np.sqrt(np.mean(d * d)) * 100.0)


def messddt(pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray,
            flow: np.ndarray | None = None) -> float:
    """``flow`` (H, W, 2): the true motion from this frame back to the previous one
    (diffmatte.video.flow.Motion's convention); None: nothing moved."""
    _check(pred, pred_prev, true, true_prev)
    err = (pred.astype(np.float64) - true) ** 2
    err_prev = (pred_prev.astype(np.float64) - true_prev) ** 2
    if flow is not None:
        err_prev = warp(err_prev.astype(np.float32), flow.astype(np.float32), border_value=None).astype(np.float64)
    return float(np.abs(err - err_prev).sum() / 1000.0)


def frame_change(pred: np.ndarray, pred_prev: np.ndarray, region: np.ndarray | None = None) -> float:
    _check(pred, pred_prev)
    d = np.abs(pred.astype(np.float64) - pred_prev)
    if region is not None:
        if region.shape != pred.shape:
            raise InputError(f"region must be {pred.shape}, got {region.shape}")
        if not region.any():
            return 0.0
        d = d[region]
    return float(d.mean())
