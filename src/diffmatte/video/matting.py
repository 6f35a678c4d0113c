"""Matte a clip frame by frame, with the trimap carried through it and the sampler kept steady.

Two things a diffusion matte offers for time, used here:

* **the same noise for every frame** (``mode="fixed"`` and ``"warm"``): a pixel that looks the
  same in two frames starts the sampler from the same x_T, so its alpha does not flicker with
  the draw;
* **a warm start** (``mode="warm"``): after the first frame the sampler starts at time
  ``warm_start`` from the previous frame's matte moved by the optical flow and noised with
  that fixed noise, and runs ``warm_steps`` steps instead of the full schedule.

``matte_video`` is a generator: it holds two frames at a time, so memory does not grow with the
clip. Example::

    from diffmatte import load_model
    from diffmatte.video import matte_video, read_frames
    model = load_model()
    for frame in matte_video(model, read_frames("clip.mp4"), trimap=first_trimap):
        ...  # frame.alpha (H, W) float32, frame.trimap, frame.image
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Literal

import numpy as np

from ..errors import InputError
from .carry import CarryConfig, band_of, blend_with_mask, carry_trimap, is_scene_cut
from .flow import Motion, estimate_motion, follow_subject, warp

if TYPE_CHECKING:
    from ..fusion import FusionConfig
    from ..pipeline import DiffMatte

__all__ = ["Mode", "MODES", "VideoOptions", "MattedFrame", "matte_video", "steady_matte"]

Mode = Literal["warm", "fixed", "independent"]
MODES: tuple[Mode, ...] = ("warm", "fixed", "independent")


@dataclass(frozen=True)
class VideoOptions:
    mode: Mode = "warm"
    steps: int = 10  # a frame matted from noise: the first, a scene cut, every frame unless warm
    warm_steps: int = 3  # a warm-started frame's steps ...
    warm_start: float = 0.3  # ... from this time (1 = pure noise)
    seed: int = 0  # the clip's noise; "independent" draws frame i's from seed + i
    # Weight of the previous matte (moved by the motion) in a pixel whose neighbourhood looks
    # the same as in the previous frame; 0 = off. The network answers sensor noise with
    # flicker (on a still photo the same noise and trimap give a mean change of 0.012-0.020 a
    # frame), which no sampler setting removes; this recursive filter along the motion does.
    steady: float = 0.8
    working_megapixels: float | None = None  # None: the model's own
    fusion: "FusionConfig | bool | None" = None  # None: the model's own
    carry: CarryConfig = CarryConfig()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.steps < 1 or self.warm_steps < 1:
            raise InputError(f"steps and warm_steps must be >= 1, got {self.steps} and {self.warm_steps}")
        if not 0.0 <= self.steady < 1.0:
            raise InputError(f"steady must be in [0, 1), got {self.steady}")
        if not 0.0 < self.warm_start < 1.0:
            raise InputError(f"warm_start must be a time in (0, 1), got {self.warm_start}")


@dataclass
class MattedFrame:
    index: int
    image: np.ndarray  # (H, W, 3) uint8 RGB, the frame as read
    alpha: np.ndarray  # (H, W) float32 in [0, 1]
    trimap: np.ndarray  # (H, W) uint8 0 / 128 / 255, the trimap it was matted with
    steps: int  # sampler steps this frame took
    warm: bool  # started from the previous frame's matte
    restarted: bool  # a scene cut: trimap and sampler started afresh
    seconds: float


TrimapSource = Callable[[int, np.ndarray], "np.ndarray | None"]


def _as_frame(frame: np.ndarray, index: int) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"frame {index}: expected an (H, W, 3) uint8 RGB array, got {a.shape} {a.dtype}")
    return a


def _check_trimap(trimap: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    from ..io import trimap_from_array, trimap_levels

    if trimap.shape[:2] != shape:
        raise InputError(f"{what} is {trimap.shape[1]}x{trimap.shape[0]} but the video is {shape[1]}x{shape[0]}; "
                         "a trimap must have the frames' size")
    return trimap_levels(trimap_from_array(trimap, what))


def steady_matte(alpha: np.ndarray, trimap: np.ndarray, image: np.ndarray, prev_alpha: np.ndarray,
                 prev_image: np.ndarray, motion: Motion, strength: float, tolerance: float = 0.02,
                 window: int = 5) -> np.ndarray:
    """``alpha`` blended with the previous matte, by ``strength`` where the picture around a
    pixel is still and unchanged, and less as it moves or changes.

    The change is the local mean of |frame - moved previous frame| above the frame's own noise
    floor (its median, since most of a frame is where the motion is right), over
    ``tolerance``; a pixel whose motion is unsure (forward-backward error, px) counts as
    changed; and one that moved (|flow|, px) too, because resampling a matte along the motion
    blurs it a little each frame and the filter would pile that up. Weight: strength * exp(-(change / tolerance)^2 - error^2
    - |flow|^2). Known pixels stay known.
    """
    import cv2

    moved_image = warp(prev_image.astype(np.float32), motion.flow, border_value=None)
    diff = np.abs(image.astype(np.float32) - moved_image).mean(axis=2) / 255.0
    local = cv2.blur(diff, (window, window))
    change = np.maximum(local - float(np.median(local)), 0.0)
    speed2 = (motion.flow.astype(np.float32) ** 2).sum(axis=2)
    weight = strength * np.exp(-((change / tolerance) ** 2) - motion.error.astype(np.float32) ** 2 - speed2)
    moved = np.clip(warp(prev_alpha.astype(np.float32), motion.flow, border_value=None), 0.0, 1.0)
    out = (weight * moved + (1.0 - weight) * alpha).astype(np.float32)
    out[trimap == 0] = 0.0
    out[trimap == 255] = 1.0
    return out


def matte_video(
    model: "DiffMatte",
    frames: Iterable[np.ndarray],
    *,
    trimap: np.ndarray | None = None,
    trimaps: TrimapSource | None = None,
    auto: Callable[[np.ndarray], np.ndarray] | None = None,
    options: VideoOptions = VideoOptions(),
) -> Iterator[MattedFrame]:
    """Matte every frame of ``frames`` ((H, W, 3) uint8 RGB arrays), yielding each as it is done.

    Trimaps, one of:
      ``trimap``: the first frame's ((H, W) uint8 or float, the usual trimap values); each later
        frame's is carried from the previous matte by the motion (diffmatte.video.carry).
      ``trimaps(i, image)``: frame i's trimap (for users who have one per frame); None from it
        means "carry this one".
      ``auto(image)``: an automatic trimap maker; used for the first frame when ``trimap`` is
        None, after a scene cut, and blended into every carried trimap to recover from drift.

    Raises:
        InputError: no trimap source, a trimap of another size than the frames, frames that
            change size, or a scene cut with nothing to restart from (no ``auto``, no ``trimaps``).
    """
    if trimap is None and trimaps is None and auto is None:
        raise InputError("give the first frame's trimap, one trimap per frame, or an automatic trimap maker")
    prev_image: np.ndarray | None = None
    prev_alpha: np.ndarray | None = None
    prev_tri: np.ndarray | None = None
    band = 0
    for index, raw in enumerate(frames):
        started = time.perf_counter()
        image = _as_frame(raw, index)
        shape = image.shape[:2]
        if prev_image is not None and prev_image.shape != image.shape:
            raise InputError(f"frame {index} is {shape[1]}x{shape[0]} but frame {index - 1} was "
                             f"{prev_image.shape[1]}x{prev_image.shape[0]}; frames must keep one size")
        given = trimaps(index, image) if trimaps is not None else (trimap if index == 0 else None)
        motion = None  # the subject's motion from the previous frame, while it can be followed
        restarted = False
        if prev_image is not None:
            assert prev_alpha is not None
            raw_motion = estimate_motion(prev_image, image)
            if is_scene_cut(raw_motion, options.carry):
                if given is None and auto is None:
                    raise InputError(
                        f"frame {index}: the picture changes completely (a scene cut?), so the trimap cannot "
                        "be carried to it; give --auto-trimap or one trimap per frame (--trimaps)")
                restarted = True
            else:
                motion = follow_subject(raw_motion, prev_alpha)
        if given is not None:
            tri = _check_trimap(np.asarray(given), shape, f"the trimap of frame {index}")
        elif motion is None:
            assert auto is not None  # frame 0 or a scene cut, without a given trimap
            tri = _check_trimap(auto(image), shape, "the automatic trimap")
        else:
            assert prev_tri is not None and prev_alpha is not None
            tri = carry_trimap(prev_tri, prev_alpha, motion, band, options.carry)
            if auto is not None:
                tri = blend_with_mask(tri, _check_trimap(auto(image), shape, "the automatic trimap"))
        if index == 0 or restarted or given is not None and band == 0:
            band = band_of(tri)
        warm = options.mode == "warm" and motion is not None
        seed = options.seed + index if options.mode == "independent" else options.seed
        kwargs: dict = dict(seed=seed, working_megapixels=options.working_megapixels, fusion=options.fusion)
        if warm:
            assert motion is not None and prev_alpha is not None
            init = np.clip(warp(prev_alpha, motion.flow, border_value=None), 0.0, 1.0)
            alpha = model.predict(image, tri, options.warm_steps, init=init, start=options.warm_start, **kwargs)
            steps = options.warm_steps
        else:
            alpha = model.predict(image, tri, options.steps, **kwargs)
            steps = options.steps
        if options.steady > 0 and motion is not None:
            assert prev_image is not None and prev_alpha is not None
            alpha = steady_matte(alpha, tri, image, prev_alpha, prev_image, motion, options.steady)
        yield MattedFrame(index=index, image=image, alpha=alpha, trimap=tri, steps=steps, warm=warm,
                          restarted=restarted, seconds=time.perf_counter() - started)
        prev_image, prev_alpha, prev_tri = image, alpha, tri
