"""`diffmatte video`: matte a clip with a trimap carried through it.

Exit status: 0 done; 2 bad input or usage (nothing written); 130 interrupted (nothing written).
"""
from __future__ import annotations

import re
import sys
import time
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from ..errors import InputError
from ..runtime import PRECISION_CHOICES, explain_precision, keep_freed_memory, set_threads
from .options import (
    band_option,
    echo_warnings,
    model_option,
    overwrite_option,
    parse_resolution,
    resolution_option,
    seed_option,
    steps_option,
    threads_option,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["command"]

HELP = """Matte every frame of CLIP and write the mattes to -o.

\b
  diffmatte video clip.mp4 --trimap first.png -o mattes/          (one PNG per frame)
  diffmatte video clip.mp4 --trimap first.png -o alpha.mkv --cutout cut.mov
  diffmatte video clip.mp4 --auto-trimap -o alpha.mp4 --cutout over.mp4 --background "#00ff00"
  diffmatte video clip.mp4 --trimaps trimaps/ -o mattes/

Trimaps: --trimap is the first frame's; every later frame's is carried from the previous
matte by the optical flow. --trimaps DIR gives one per frame (matched by index in name
order, frame_2 before frame_10; frames past the last are carried). --auto-trimap makes the first one and, after a
scene cut, a new one, and keeps a carried trimap from drifting off the subject.

\b
Outputs (by extension):
  -o        a folder (000000.png ...), .mkv (FFV1 grey, lossless) or .mp4 (H.264)
  --cutout  .mov (ProRes 4444 with alpha), .webm (VP9 with alpha) or .mkv (FFV1 RGBA);
            with --background (a colour, an image or a video): .mp4 or .mkv, no alpha
--start SECONDS begins at the frame nearest that time (make its trimap with `diffmatte trimap
CLIP --start SECONDS`); --max-frames stops after so many. The source's frame rate is kept, and
its audio in video outputs, cut to the frames written. Outputs are written under a temporary
name and appear only when the clip is done.

Sampler (--mode): warm (default) starts each frame after the first from the previous
matte moved to it, --warm-steps steps from time --warm-start, with the clip's fixed noise;
fixed runs the full --steps from the same noise each frame; independent draws fresh noise
per frame (seed + frame index). --steady blends in the previous matte where the picture has
not changed, which removes flicker from sensor noise (0 turns it off).
"""


@click.command("video", help=HELP)
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Alpha output: a folder, or a .mkv / .mp4 file.")
@click.option("--trimap", "trimap_path", type=click.Path(path_type=Path), help="The first frame's trimap.")
@click.option("--trimaps", "trimaps_dir", type=click.Path(path_type=Path), help="A folder with one trimap per frame.")
@click.option("--auto-trimap", is_flag=True, help="Make trimaps automatically (first frame, scene cuts, drift).")
@click.option("--cutout", type=click.Path(path_type=Path), help="Also write the cutout (.mov, .webm, .mkv; "
              "with --background .mp4 or .mkv).")
@click.option("--background", metavar="COLOUR|IMAGE|VIDEO", help="Composite the cutout over this.")
@click.option("--despill", is_flag=True, help="Take the old background's hue out of the cutout's edge colours "
              "(as predict --despill; off by default).")
@model_option
@steps_option
@click.option("--mode", type=click.Choice(["warm", "fixed", "independent"]), default="warm", show_default=True,
              help="How the sampler starts each frame (see above).")
@click.option("--warm-steps", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="Steps of a warm-started frame.")
@click.option("--warm-start", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.3,
              show_default=True, help="The time a warm-started frame begins at (1 = pure noise).")
@click.option("--steady", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.8, show_default=True,
              help="Weight of the previous matte where the picture is unchanged (0 = off).")
@seed_option
@click.option("--fusion/--no-fusion", default=None, help="Closed-form fusion per frame [default: the model's].")
@resolution_option
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="auto", show_default=True,
              help="Network arithmetic: auto picks bf16 where the CPU multiplies it natively.")
@click.option("--start", type=click.FloatRange(0.0), default=0.0, metavar="SECONDS",
              help="Begin at the frame nearest this time; --trimap is then that frame's (see `diffmatte trimap "
                   "--start`), outputs and --trimaps count from it.  [default: 0]")
@click.option("--max-frames", type=click.IntRange(0), default=0, help="Stop after this many frames (0 = all).")
@band_option
@threads_option
@overwrite_option
@click.option("-v", "--verbose", is_flag=True, help="Print the settings and each frame's steps and time.")
def command(clip: Path, output: Path, trimap_path: Path | None, trimaps_dir: Path | None, auto_trimap: bool,
            cutout: Path | None, background: str | None, despill: bool, model: str, steps: int, mode: str,
            warm_steps: int, warm_start: float, steady: float, seed: int, fusion: bool | None, resolution: str,
            precision: str, start: float, max_frames: int, band: int | None, threads: int | None, overwrite: bool,
            verbose: bool) -> None:
    from ..video.container import check_sink_path, frame_at, probe

    if sum(x is not None and x is not False for x in (trimap_path, trimaps_dir, auto_trimap or None)) == 0:
        raise InputError("give the first frame's trimap (--trimap), one per frame (--trimaps DIR) or --auto-trimap")
    if trimap_path is not None and trimaps_dir is not None:
        raise InputError("--trimap and --trimaps cannot be combined: give one")
    if background is not None and cutout is None:
        raise InputError("--background needs --cutout (the file to write the composite to)")
    if despill and cutout is None:
        raise InputError("--despill changes the cutout's colours: add --cutout FILE")
    working_megapixels = parse_resolution(resolution)
    info = probe(clip)
    first_index = frame_at(info, start, "--start")
    check_sink_path(output, "alpha", overwrite, inputs=(clip,))
    if cutout is not None:
        check_sink_path(cutout, "composite" if background is not None else "cutout", overwrite, inputs=(clip,))
        if cutout.resolve() == output.resolve():
            raise InputError("-o and --cutout are the same file; choose two paths")
    first = _read_first_trimap(trimap_path, info.width, info.height) if trimap_path is not None else None
    per_frame = _trimap_files(trimaps_dir) if trimaps_dir is not None else None
    backdrop = _backdrop(background, clip) if background is not None else None
    set_threads(threads)
    keep_freed_memory()
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731
    with echo_warnings(echo):
        from ..loading import load_model

        net = load_model(model, precision=precision)
        auto = _auto_maker(band) if auto_trimap else None
        _run(net, info, output, cutout, backdrop, first, per_frame, auto, mode, steps, warm_steps, warm_start,
             steady, seed, fusion, max_frames, verbose, echo, despill=despill, start=first_index,
             working_megapixels=working_megapixels)



def _read_first_trimap(path: Path, width: int, height: int) -> "np.ndarray":
    from ..io import read_trimap, trimap_levels

    tri = read_trimap(path)
    if tri.shape != (height, width):
        raise InputError(f"trimap {path} is {tri.shape[1]}x{tri.shape[0]} but the video is {width}x{height}; "
                         "give the first frame's trimap at the video's size")
    return trimap_levels(tri)


def _trimap_files(folder: Path) -> list[Path]:
    from ..io import is_image_file

    if not folder.is_dir():
        raise InputError(f"--trimaps {folder} is not a folder")
    # natural order, so frame_2 comes before frame_10 as it does in the clip
    files = sorted((p for p in folder.iterdir() if is_image_file(p)),
                   key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem)])
    if not files:
        raise InputError(f"--trimaps {folder} holds no image files")
    return files


def _auto_maker(band: int | None) -> Callable[["np.ndarray"], "np.ndarray"]:
    from ..io import trimap_levels
    from ..trimap import SalientObjectModel, auto_trimap

    salient = SalientObjectModel()
    return lambda image: trimap_levels(auto_trimap(image.astype("float32") / 255.0, band, salient))


def _backdrop(background: str, clip: Path) -> Callable[[int, tuple[int, int]], Any]:
    """Frame i's background: a colour, an image, or a video's frame i (looped)."""
    from ..foreground import parse_background
    from ..video.container import is_video_path, read_frames

    p = Path(background)
    if p.is_file() and is_video_path(p):
        if p.resolve() == clip.resolve():
            raise InputError("--background is the clip itself; give another video, an image or a colour")
        from ..video.container import probe

        probe(p)
        frames: Iterator[Any] = _looped(p, read_frames)
        return lambda i, size: next(frames).astype("float32") / 255.0
    parsed = parse_background(background)
    return lambda i, size: parsed


def _looped(path: Path, read: Callable[..., Iterator[Any]]) -> Iterator[Any]:
    # read again from the start at its end (itertools.cycle would keep every frame in memory)
    while True:
        yield from read(path)


def _run(net: Any, info: Any, output: Path, cutout: Path | None, backdrop: Any, first: Any, per_frame: Any,
         auto: Any, mode: str, steps: int, warm_steps: int, warm_start: float, steady: float, seed: int,
         fusion: bool | None, max_frames: int, verbose: bool, echo: Callable[[str], None], *,
         despill: bool = False, start: int = 0, working_megapixels: float | None = None) -> None:
    from tqdm import tqdm

    from ..foreground import composite
    from ..foreground import cutout as cut_out
    from ..video.container import FrameSink, read_frames
    from ..video.matting import VideoOptions, matte_video

    options = VideoOptions(mode=mode, steps=steps, warm_steps=warm_steps, warm_start=warm_start, steady=steady,
                           seed=seed, fusion=fusion, working_megapixels=working_megapixels)  # type: ignore[arg-type]
    if verbose:
        echo(f"{info.path}: {info.width}x{info.height}, {float(info.fps):.3f} frames/s, about {info.frames} frames"
             f"{', audio' if info.has_audio else ''}; {explain_precision('auto', net.precision, net.device.type)}, "
             f"mode {mode} ({steps} steps, then {warm_steps} from t={warm_start}), steady {steady}, working size "
             + ("the model's" if working_megapixels is None else f"{working_megapixels:g} MP" if working_megapixels
                else "full"))
    trimaps = None
    if per_frame is not None:
        from ..io import read_trimap, trimap_levels

        trimaps = lambda i, image: trimap_levels(read_trimap(per_frame[i])) if i < len(per_frame) else None  # noqa: E731
    left = max(info.frames - start, 0)
    total = min(left, max_frames) if max_frames and left else (max_frames or left or None)
    size = (info.width, info.height)
    audio = info.path if info.has_audio else None
    audio_start = Fraction(start) / info.fps
    started = time.perf_counter()
    warm = restarts = 0
    with ExitStack() as stack:
        alpha_sink = stack.enter_context(FrameSink(output, "alpha", info.fps, size, audio, audio_start))
        cut_kind = "composite" if backdrop is not None else "cutout"
        cut_sink = stack.enter_context(FrameSink(cutout, cut_kind, info.fps, size, audio, audio_start)) if cutout else None
        bar = stack.enter_context(tqdm(total=total, unit="frame", desc="matting", disable=None))
        frames = matte_video(net, read_frames(info.path, limit=max_frames, start=start), trimap=first, trimaps=trimaps,
                             auto=auto, options=options)
        for f in frames:
            alpha_sink.write(f.alpha)
            if cut_sink is not None:
                import numpy as np

                rgb = f.image.astype(np.float32) / 255.0
                rgba = cut_out(rgb, f.alpha, despill=despill, max_pixels=None)
                cut_sink.write(composite(rgba, backdrop(f.index, size)) if backdrop is not None else rgba)
            warm += f.warm
            restarts += f.restarted
            bar.update(1)
            if verbose:
                tqdm.write(f"frame {f.index}: {f.steps} steps{' (warm)' if f.warm else ''}"
                           f"{' scene cut: new trimap' if f.restarted else ''}, {f.seconds:.2f} s", file=sys.stderr)
        notes = [alpha_sink.commit()]
        if cut_sink is not None:
            notes.append(cut_sink.commit())
    for note in notes:
        if note:
            echo(f"warning: {note}")
    n = alpha_sink.count
    seconds = time.perf_counter() - started
    where = f"{output}" + (f" and {cutout}" if cutout else "")
    echo(f"{n} frames in {seconds:.1f} s ({seconds / max(n, 1):.2f} s a frame; {warm} warm-started"
         f"{f', {restarts} scene cuts' if restarts else ''}) -> {where}")
