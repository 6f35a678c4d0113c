"""Video files in and out with PyAV (its wheel ships FFmpeg; no system ffmpeg needed).

Reading yields (H, W, 3) uint8 RGB frames one at a time. Writing goes to a temporary name
beside the output and is renamed into place only when the clip is complete, so an error or
Ctrl-C leaves nothing behind and never touches a file that was there before.

Outputs, by extension:

* alpha: a folder (``000000.png`` ...), ``.mkv`` (FFV1 grey, lossless) or ``.mp4`` (H.264);
* cutout (RGBA): ``.mov`` (ProRes 4444), ``.webm`` (VP9 with alpha), ``.mkv`` (FFV1 RGBA);
* composite (RGB over a background): ``.mp4`` (H.264), ``.mkv`` (FFV1).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from ..errors import DiffMatteError, InputError
from ..writers import check_writable_folder, to_uint8

__all__ = ["ClipInfo", "probe", "frame_at", "read_frames", "first_frame", "is_video_path", "VIDEO_SUFFIXES", "Kind",
           "FrameSink", "check_sink_path", "KINDS"]

Kind = Literal["alpha", "cutout", "composite"]
# kind -> extension -> (codec, pixel format, options)
KINDS: dict[str, dict[str, tuple[str, str, dict[str, str]]]] = {
    "alpha": {".mkv": ("ffv1", "gray", {}), ".mp4": ("libx264", "yuv420p", {"crf": "10", "preset": "medium"})},
    "cutout": {
        ".mov": ("prores_ks", "yuva444p10le", {"profile": "4444"}),
        ".webm": ("libvpx-vp9", "yuva420p", {"crf": "20", "b": "0"}),
        ".mkv": ("ffv1", "bgra", {}),
    },
    "composite": {".mp4": ("libx264", "yuv420p", {"crf": "16", "preset": "medium"}), ".mkv": ("ffv1", "bgr0", {})},
}


_FRAME_FORMAT = {"alpha": "gray", "cutout": "rgba", "composite": "rgb24"}  # what write() is handed
# Taken as a clip where a command also accepts an image (a background, the picture of a trimap)
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av() -> Any:
    try:
        import av
    except ModuleNotFoundError as e:  # pragma: no cover - the video extra brings it
        raise DiffMatteError("video needs PyAV: pip install 'diffmatte[video]'") from e
    return av


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    width: int
    height: int
    fps: Fraction  # average frame rate
    frames: int  # the container's count or an estimate from the duration; 0 when unknown
    has_audio: bool


def _open_input(path: str | os.PathLike[str]) -> Any:
    av = _av()
    p = Path(path)
    if not p.exists():
        raise InputError(f"video {p} does not exist")
    if p.is_dir():
        raise InputError(f"video {p} is a folder; give a video file")
    try:
        container = av.open(str(p), mode="r")
    except (av.error.InvalidDataError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not a video file FFmpeg can read ({e.__class__.__name__})") from e
    except av.error.EOFError as e:
        raise InputError(f"video {p} has no frames (the file ends before the first one)") from e
    except av.error.FFmpegError as e:
        raise InputError(f"cannot open video {p}: {e.strerror or e}") from e
    if not container.streams.video:
        container.close()
        raise InputError(f"{p} has no video stream")
    return container


def _frame_rate(stream: Any) -> Fraction:
    return stream.average_rate or stream.guessed_rate or Fraction(25)


def probe(path: str | os.PathLike[str]) -> ClipInfo:
    """What a clip holds, from its header (nothing decoded)."""
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        fps = _frame_rate(stream)
        frames = int(stream.frames or 0)
        if not frames and stream.duration and stream.time_base:
            frames = int(round(float(stream.duration * stream.time_base) * float(fps)))
        elif not frames and container.duration:
            frames = int(round(container.duration / 1_000_000 * float(fps)))
        cc = stream.codec_context
        return ClipInfo(Path(path), int(cc.width), int(cc.height), Fraction(fps), frames, bool(container.streams.audio))
    finally:
        container.close()


def frame_at(info: ClipInfo, seconds: float, what: str = "the time") -> int:
    """The index of ``info``'s frame nearest ``seconds`` from its start; InputError (naming the
    value as ``what``) when that is past its end, where the header gives its length."""
    index = round(seconds * float(info.fps))
    if index and info.frames and index >= info.frames:
        raise InputError(f"{what} {seconds:g} s is past the end of {info.path} ({info.frames} frames, "
                         f"{info.frames / float(info.fps):.2f} s)")
    return index


def read_frames(path: str | os.PathLike[str], limit: int = 0, start: int = 0) -> Iterator[np.ndarray]:
    """Every frame of ``path`` as an (H, W, 3) uint8 RGB array, in order, from frame ``start``
    (found by its timestamp, after a seek to the keyframe before it), the first ``limit`` of
    them when > 0. Raises InputError for a file with no frames (from ``start`` on), or one that
    stops decoding."""
    av = _av()
    container = _open_input(path)
    count = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(_frame_rate(stream))
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if start > 0:
            # half a frame early: a keyframe exactly at the target must not be skipped over
            target = origin + (start - 0.5) / fps
            container.seek(max(int(target / stream.time_base), 0), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                if start > 0:
                    if frame.time is None:
                        raise InputError(f"video {path}: its frames carry no timestamps, so frame {start} "
                                         "cannot be found; matte from the start (leave out --start)")
                    if round((frame.time - origin) * fps) < start:
                        continue
                yield frame.to_ndarray(format="rgb24")
                count += 1
                if limit and count >= limit:
                    return
        except av.error.FFmpegError as e:
            raise InputError(f"video {path}: decoding failed after {count} frames: {e}") from e
    finally:
        container.close()
    if count == 0:
        raise InputError(f"video {path} has no frames" + (f" from frame {start} on" if start else ""))


def first_frame(path: str | os.PathLike[str], start: int = 0) -> np.ndarray:
    """Frame ``start`` of ``path``, (H, W, 3) uint8 RGB: the first frame ``diffmatte video``
    mattes, the picture its ``--trimap`` is for."""
    return next(read_frames(path, limit=1, start=start))


def check_sink_path(path: str | os.PathLike[str], kind: Kind, overwrite: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Check, before any work, that an output of ``kind`` can go to ``path``; nothing is created."""
    p = Path(path)
    if any(p.resolve() == Path(i).resolve() for i in inputs):
        raise InputError(f"output {p} is also an input; choose another output path")
    folder = kind == "alpha" and not p.suffix
    if not folder and p.suffix.lower() not in KINDS[kind]:
        options = ", ".join(sorted(KINDS[kind]))
        extra = " or a folder (one PNG per frame)" if kind == "alpha" else ""
        raise InputError(f"output {p}: a {kind} video must end in {options}{extra}, got {p.suffix or 'no extension'!r}")
    if folder and p.exists() and not p.is_dir():
        raise InputError(f"output {p} exists and is not a folder")
    if not folder and p.is_dir():
        raise InputError(f"output {p} is a folder; give a file name")
    if p.exists() and not overwrite and (not folder or any(p.iterdir())):
        raise InputError(f"output {p} exists; pass --overwrite to replace it")
    check_writable_folder(p.parent)
    return p


class FrameSink:
    """Writes one kind of frame to a folder of PNGs or a video file, renamed into place on
    ``commit()``; ``discard()`` (or leaving a ``with`` block on an exception) removes it."""

    def __init__(self, path: Path, kind: Kind, fps: Fraction, size: tuple[int, int],
                 audio_from: Path | None = None, audio_start: Fraction = Fraction(0)) -> None:
        self.path, self.kind, self.fps, self.size = path, kind, fps, size
        self.audio_from = audio_from
        self.audio_start = audio_start  # the source's time (s) at the first frame written
        self.count = 0
        self.folder = kind == "alpha" and not path.suffix
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")
        self._container: Any = None
        self._stream: Any = None
        self._audio_source: Any = None
        self._audio_out: Any = None
        self.warning: str | None = None
        if self.folder:
            self.tmp.mkdir()
        else:
            self._open_video()

    def _open_video(self) -> None:
        av = _av()
        codec, pix_fmt, options = KINDS[self.kind][self.path.suffix.lower()]
        w, h = self.size
        if pix_fmt.startswith("yuv") and (w % 2 or h % 2):  # checked before the file exists
            raise InputError(f"{self.path.suffix} output needs an even width and height, the video is {w}x{h}; "
                             "use .mkv")
        fmt = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".webm": "webm"}[self.path.suffix.lower()]
        self._container = av.open(str(self.tmp), mode="w", format=fmt)
        rate = self.fps if self.fps.denominator <= 1001 else Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.options = dict(options)
        if codec == "libvpx-vp9":
            stream.codec_context.options = {"auto-alt-ref": "0"}
        self._stream = stream
        self._add_audio()

    def write(self, frame: np.ndarray) -> None:
        """One frame: (H, W) float in [0, 1] or uint8 for alpha; (H, W, 4) uint8 RGBA for a
        cutout; (H, W, 3) uint8 RGB for a composite."""
        u8 = np.ascontiguousarray(frame if frame.dtype == np.uint8 else to_uint8(frame))
        if self.folder:
            from PIL import Image

            Image.fromarray(u8, mode="L").save(self.tmp / f"{self.count:06d}.png")
        else:
            vf = _av().VideoFrame.from_ndarray(u8, format=_FRAME_FORMAT[self.kind])
            vf.pts = self.count
            vf.time_base = 1 / Fraction(self._stream.average_rate or self.fps)
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        self.count += 1

    def _add_audio(self) -> None:
        """The source's audio stream, added before any frame is written (a muxer takes no new
        stream once its header is out); its packets are copied in at commit."""
        av = _av()
        self._audio_source = None
        if self.audio_from is None:
            return
        source = av.open(str(self.audio_from), mode="r")
        if not source.streams.audio:
            source.close()
            return
        src = source.streams.audio[0]
        try:
            self._audio_out = self._container.add_stream_from_template(src)
        except (ValueError, av.error.FFmpegError) as e:
            self.warning = f"the source's audio ({src.codec_context.name}) was not kept in {self.path.suffix}: {e}"
            source.close()
            return
        self._audio_source = source

    def _copy_audio(self) -> None:
        av = _av()
        source, self._audio_source = self._audio_source, None
        if source is None:
            return
        # The matte may stop before the clip does (--max-frames): audio past its last frame would
        # make players run on over a frozen picture.
        begin = self.audio_start
        end = begin + Fraction(self.count) / Fraction(self._stream.average_rate or self.fps)
        try:
            for packet in source.demux(source.streams.audio[0]):
                if packet.dts is None or packet.pts is None:
                    continue
                at = packet.pts * packet.time_base
                if at >= end:
                    break
                if begin:  # --start: the audio before it goes, the rest moves to the frames' time 0
                    if at < begin:
                        continue
                    shift = round(begin / packet.time_base)
                    packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
                packet.stream = self._audio_out
                self._container.mux(packet)
        except av.error.FFmpegError as e:
            self.warning = f"the source's audio was not kept: {e}"
        finally:
            source.close()

    def commit(self) -> str | None:
        """Finish and move into place; returns a warning about the audio, if any."""
        if self.count == 0:
            raise InputError("no frames were written")
        warning = None
        if not self.folder:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._copy_audio()
            warning = self.warning
            self._container.close()
            self._container = None
            os.replace(self.tmp, self.path)
        else:
            if self.path.exists():
                old = self.path.with_name(f".{self.path.name}.{os.getpid()}.old")
                os.replace(self.path, old)
                os.replace(self.tmp, self.path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self.tmp, self.path)
        return warning

    def discard(self) -> None:
        if self._audio_source is not None:
            self._audio_source.close()
            self._audio_source = None
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file goes anyway
                pass
            self._container = None
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None or self.tmp.exists():
            self.discard()
