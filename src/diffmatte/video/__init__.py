"""Video matting: a clip matted frame by frame with the trimap carried through it
(:mod:`.carry`), the sampler's noise fixed and warm-started from the previous matte
(:mod:`.matting`), files read and written with PyAV (:mod:`.container`), and the
video-matting metrics (:mod:`.metrics`)."""
from __future__ import annotations

from .container import ClipInfo, first_frame, probe, read_frames
from .matting import MODES, MattedFrame, VideoOptions, matte_video

__all__ = ["ClipInfo", "MODES", "MattedFrame", "VideoOptions", "first_frame", "matte_video", "probe", "read_frames"]
