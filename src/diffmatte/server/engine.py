"""The server's matting engine: one model, one worker thread, a bounded queue, per-request deadlines.

Nothing here knows about HTTP. Requests hand over raw upload bytes; decoding, matting and PNG
encoding all happen on the worker thread, so the number of decoded images in memory is one
(the job running), whatever the number of clients. A full queue is refused at once
(``Busy``, with a retry estimate) instead of growing; a job whose deadline passes while it
waits, or between two sampler steps, stops with ``TimeLimitExceeded``.
"""
from __future__ import annotations

import io
import logging
import math
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

import numpy as np
from PIL import Image

from ..errors import DiffMatteError, InputError, TooLarge
from ..io import DEFAULT_MAX_PIXELS
from ..refine import Box, choose_window, refine_window
from ..session import MattingSession
from ..writers import to_uint8

if TYPE_CHECKING:
    from ..pipeline import DiffMatte
    from ..trimap import SalientObjectModel

__all__ = [
    "ServerConfig",
    "Engine",
    "Busy",
    "TimeLimitExceeded",
    "Cancelled",
    "Unavailable",
    "TooLarge",
    "MatteRequest",
    "RefineRequest",
    "encode_png",
]

_log = logging.getLogger("diffmatte.server")

# An uploaded file: its bytes, or (as the app hands them over) a temporary file that holds
# large uploads on disk until the worker decodes them.
Upload = bytes | BinaryIO


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``diffmatte serve`` can be told. Defaults are the safe, local ones."""

    model: str = "default"
    host: str = "127.0.0.1"
    port: int = 8000
    precision: str = "auto"
    threads: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_upload_bytes: int = 64 * 1024 * 1024  # whole request body
    queue_size: int = 4  # jobs waiting behind the running one
    max_in_flight: int = 16  # concurrent API requests (uploads being read included)
    time_limit: float = 120.0  # seconds from arrival, waiting included
    max_sample_steps: int = 100  # sampler steps a request may ask (not optimiser steps: TrainConfig.max_steps)
    default_steps: int = 10
    max_seeds: int = 8  # samples one matte request may average (each costs a decoder pass)
    # A refine window is matted at full resolution: its pixels bound the memory one request takes
    # (a long stroke over a 50 MP photo would otherwise ask for tens of GiB).
    max_refine_pixels: int = 4_000_000


class Busy(DiffMatteError):
    """The queue is full; ``retry_after`` is an estimate in whole seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TimeLimitExceeded(DiffMatteError):
    pass


class Cancelled(DiffMatteError):
    pass


class Unavailable(DiffMatteError):
    """A feature the installation lacks (e.g. automatic trimaps without onnxruntime)."""


@dataclass
class MatteRequest:
    image: Upload
    trimap: Upload | None  # None: automatic trimap
    steps: int
    seed: int
    band: int | None = None
    seeds: int = 1  # samples averaged (one batch on one encoding)


@dataclass
class RefineRequest:
    image: Upload
    trimap: Upload
    alpha: Upload
    box: Box
    steps: int
    seed: int
    window: int = 512


@dataclass
class _Job:
    fn: Callable[["JobContext"], Any]
    context: "JobContext"
    future: Future = field(default_factory=Future)


@dataclass
class JobContext:
    """What a running job may consult: its deadline and whether its client went away."""

    deadline: float
    time_limit: float
    cancelled: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the client went away")
        if time.monotonic() > self.deadline:
            raise TimeLimitExceeded(
                f"the request took longer than the server's time limit of {self.time_limit:g} s "
                "(diffmatte serve --time-limit); use fewer steps or a smaller image"
            )


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W), (H, W, 3) or (H, W, 4) array; fast compression (the server
    encodes one per sampler step while streaming)."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Engine:
    """Runs jobs one at a time on a worker thread, in arrival order."""

    def __init__(self, config: ServerConfig, model: "DiffMatte") -> None:
        self.config = config
        self.session = MattingSession(model, config.max_pixels, config.threads)
        # Unbounded itself: admission is counted in _pending (waiting + running), so that
        # queue_size 0 means "only the running job" (Queue(maxsize=0) would mean no limit).
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self.running = 0
        self.done = 0
        self.refused = 0
        self._mean_seconds = 1.0
        self._thread = threading.Thread(target=self._work, name="diffmatte-worker", daemon=True)
        self._thread.start()

    @property
    def model(self) -> "DiffMatte":
        return self.session.model

    # -- queue --------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return max(0, self._pending - self.running)

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_seconds * (self.queued + self.running)))

    def has_room(self) -> bool:
        return self._pending < self.config.queue_size + 1

    def busy_error(self) -> Busy:
        return Busy(
            f"the server is busy ({self.running} running, {self.queued} waiting, queue size "
            f"{self.config.queue_size}); retry in a few seconds",
            self.retry_after(),
        )

    def submit(self, fn: Callable[[JobContext], Any], context: JobContext | None = None) -> tuple[Future, JobContext]:
        """Queue ``fn(context)``; raises Busy when the queue is full."""
        ctx = context or self.new_context()
        job = _Job(fn, ctx)
        with self._lock:
            if self._pending >= self.config.queue_size + 1:
                self.refused += 1
                raise self.busy_error()
            self._pending += 1
        self._queue.put_nowait(job)
        return job.future, ctx

    def new_context(self) -> JobContext:
        limit = self.config.time_limit
        return JobContext(deadline=time.monotonic() + limit, time_limit=limit)

    def close(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                with self._lock:
                    self._pending -= 1
                continue
            start = time.monotonic()
            with self._lock:
                self.running = 1
            try:
                job.context.check()
                job.future.set_result(job.fn(job.context))
            except BaseException as e:  # handed to the waiting request, which answers the client
                job.future.set_exception(e)
            finally:
                took = time.monotonic() - start
                with self._lock:
                    self.running = 0
                    self._pending -= 1
                    self.done += 1
                    self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * took

    # -- jobs (run on the worker thread) ------------------------------------------------------
    def salient(self) -> "SalientObjectModel":
        try:
            return self.session.salient
        except InputError:
            raise
        except DiffMatteError as e:  # onnxruntime or the model package missing on this server
            raise Unavailable(str(e)) from e

    def auto_trimap(self, image: np.ndarray, band: int | None) -> np.ndarray:
        self.salient()
        return self.session.auto_trimap(image, band)

    def load(self, image: Upload, trimap: Upload | None, band: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Decoded image (H, W, 3) and trimap (H, W) {0, 0.5, 1}; automatic when ``trimap`` is None."""
        if trimap is None:
            self.salient()  # a server without the salient model answers 503 before decoding
        return self.session.load(image, trimap, band)

    def trimap_png(self, ctx: JobContext, image: Upload, band: int | None) -> bytes:
        from ..io import check_image_size

        arr = self.session.load_image(image)
        check_image_size(arr.shape[0], arr.shape[1], self.config.max_pixels)
        ctx.check()
        tri = self.auto_trimap(arr, band)
        return encode_png(np.select([tri == 0, tri == 1], [0, 255], default=128).astype(np.uint8))

    def matte(
        self,
        ctx: JobContext,
        req: MatteRequest,
        on_frame: Callable[[int, np.ndarray], None] | None = None,
        uncertainty: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(image, alpha, spread): the full matte (the mean of ``req.seeds`` samples);
        ``on_frame(k, alpha_k)`` after each step; with ``uncertainty`` (needs seeds >= 2) the
        seeds' per-pixel standard deviation, else None."""
        image, trimap = self.load(req.image, req.trimap, req.band)
        ctx.check()

        def step(k: int, frame: np.ndarray) -> None:
            ctx.check()
            if on_frame is not None:
                on_frame(k, frame)

        result = self.session.matte(image, trimap, req.steps, req.seed, on_step=step, seeds=req.seeds,
                                    uncertainty=uncertainty)
        alpha, spread = result if uncertainty else (result, None)
        return image, alpha, spread

    def refine(self, ctx: JobContext, req: RefineRequest) -> tuple[np.ndarray, Box]:
        """(alpha, window): the previous matte with the window around ``req.box`` re-matted."""
        image, trimap = self.load(req.image, req.trimap, None)
        h, w = trimap.shape
        previous = self.session.load_alpha(req.alpha, (h, w))
        ctx.check()

        def step(k: int, x0: Any) -> None:
            ctx.check()

        win = choose_window(req.box, h, w, req.window)
        area = (win.right - win.left) * (win.bottom - win.top)
        if area > self.config.max_refine_pixels:
            raise TooLarge(
                f"the window to re-matte is {win.right - win.left}x{win.bottom - win.top} ({area / 1e6:.1f} MP), above this "
                f"server's refine limit of {self.config.max_refine_pixels / 1e6:g} MP: use a smaller stroke or window, or "
                "run the whole image"
            )
        result = refine_window(
            self.model, image, trimap, previous, req.box, steps=req.steps, seed=req.seed, window=req.window, on_step=step
        )
        return result.alpha, result.window

    def cutout_png(self, ctx: JobContext, image: Upload, alpha: Upload, background: str | None,
                   despill: bool = False) -> bytes:
        img = self.session.load_image(image)
        a = self.session.load_alpha(alpha, img.shape[:2])
        ctx.check()
        return self.render_cutout(img, a, background, despill)

    @staticmethod
    def suggestions(spread: np.ndarray, count: int = 3) -> list[list[int]]:
        """The windows to correct first ([left, top, right, bottom], best first), sized to the image."""
        from ..suggest import suggest_windows

        size = max(32, round(max(spread.shape) / 12))
        return [[s.left, s.top, s.right, s.bottom] for s in suggest_windows(spread, size, count)]

    @staticmethod
    def uncertainty_png(spread: np.ndarray) -> bytes:
        """The uncertainty as a grey PNG, as `predict --uncertainty` writes it."""
        from ..suggest import uncertainty_image

        return encode_png(to_uint8(uncertainty_image(spread)))

    @staticmethod
    def render_cutout(image: np.ndarray, alpha: np.ndarray, background: str | None, despill: bool = False) -> bytes:
        from PIL import ImageColor

        colour = None
        if background is not None:
            # A colour only, parsed here: a value naming a file on the server must never be read.
            try:
                colour = np.asarray(ImageColor.getrgb(background)[:3], dtype=np.float32) / 255.0
            except ValueError:
                raise InputError(f"background {background!r}: not a colour; give one as #RRGGBB") from None
        # From the 8-bit matte the client receives, so a cutout made later from that matte
        # (/api/cutout, the page) is the same image as output=cutout.
        out = MattingSession.cutout(image, to_uint8(alpha).astype(np.float32) / 255.0, colour, despill)
        return encode_png(to_uint8(out))
