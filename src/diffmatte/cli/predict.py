"""`diffmatte predict`: matte one image, or every image of a folder, with a trimap or an automatic one.

Exit status: 0 done; 2 bad input or usage (nothing written); 1 some files of a folder failed
(the others are written and the failures listed at the end); 3 a folder batch stopped on an
internal error (a bug in diffmatte, not a bad file; its traceback is shown).
"""
from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from ..errors import DiffMatteError, InputError
from ..runtime import PRECISION_CHOICES, explain_precision, keep_freed_memory, set_threads
from ..sharding import World, current_world, launched_world
from .options import (
    band_option,
    echo_warnings,
    max_pixels_option,
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

    from ..pipeline import DiffMatte
    from ..trimap import SalientObjectModel

__all__ = ["command"]

HELP = """Matte IMAGE with TRIMAP and write the alpha matte to -o.

\b
  diffmatte predict photo.jpg trimap.png -o alpha.png --model ckpt.safetensors
  diffmatte predict photo.jpg trimap.png -o alpha.png --cutout cut.png --background "#00ff00"
  diffmatte predict photo.jpg --auto-trimap -o alpha.png
  diffmatte predict --images photos/ --trimaps trimaps/ -o mattes/

Trimaps: 0 is background, 255 foreground, any other value unknown (128 is usual;
hand-drawn greys such as 102 work too). RGB trimaps: black background, white foreground,
any other colour unknown.

Folder mode (--images): images and trimaps are matched by file name without extension,
outputs are named <name>.png (-o, --cutout) and <name>.gif (--trajectory) in the given
folders, existing outputs are skipped unless --overwrite, and a failed file does not stop
the others (exit status 1 if any failed).

\b
Across processes and machines, with torchrun (every rank mattes every N-th file; the
outputs are those of one process, byte for byte; a re-run redoes only missing files):
  torchrun --nproc-per-node 2 -m diffmatte predict --images photos/ --trimaps trimaps/ -o mattes/
"""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides the file names."""

    model: str
    steps: int
    seed: int
    threads: int | None
    max_pixels: int
    band: int | None
    resize_trimap: bool
    bit_depth: int
    background: str | None
    overwrite: bool
    precision: str = "auto"
    working_megapixels: float | None = None  # None: the model's own
    flip_tta: bool = False
    fusion: bool | None = None  # None: the model's own (diffmatte.fusion)
    seeds: int = 1  # samples averaged into the matte (one batch, one encoding)
    despill: bool = False  # the cutout's edge colours without the old background's hue


@dataclass(frozen=True)
class Job:
    """One image: its inputs and the outputs to write (None: not asked for)."""

    image: Path
    trimap: Path | None  # None: automatic trimap
    alpha: Path
    cutout: Path | None = None
    trajectory: Path | None = None
    uncertainty: Path | None = None  # the seeds' spread (needs seeds >= 2)

    def outputs(self) -> list[Path]:
        return [p for p in (self.alpha, self.cutout, self.trajectory, self.uncertainty) if p is not None]


class Runner:
    """Mattes jobs through one :class:`~diffmatte.session.MattingSession` (the model and the
    salient-object model loaded once, on first use) and writes their outputs."""

    def __init__(self, settings: Settings) -> None:
        from ..session import MattingSession

        self.s = settings
        self.session = MattingSession(
            lambda: _load_model(settings), settings.max_pixels, settings.threads
        )

    @property
    def model(self) -> "DiffMatte":
        return self.session.model

    @property
    def salient(self) -> "SalientObjectModel":
        return self.session.salient

    @cached_property
    def background(self) -> "np.ndarray | None":
        from ..foreground import parse_background

        return None if self.s.background is None else parse_background(self.s.background, self.s.max_pixels)

    def describe(self) -> str:
        """The settings a run uses, resolved (``-v``)."""
        model = self.model
        size = model.config.working_megapixels if self.s.working_megapixels is None else self.s.working_megapixels
        fusion = model.fusion_config(self.s.fusion)
        return (f"model {self.s.model} ({model.config.name}), "
                f"{explain_precision(self.s.precision, model.precision, model.device.type)}, {self.s.steps} steps, "
                f"seed {self.s.seed}, working size {f'{size:g} MP' if size else 'full resolution'}, "
                f"fusion {'on' if fusion else 'off'}")

    def run(self, job: Job, write: list[Path]) -> None:
        """Compute every output of ``job`` that is in ``write``, then write them (atomically)."""
        from ..io import save_alpha, save_frames, save_rgb, save_rgba
        from ..suggest import uncertainty_image

        image, trimap = self.session.load(job.image, job.trimap, self.s.band, resize_trimap=self.s.resize_trimap)
        background = self.background  # a bad background fails before the network runs
        frames_wanted = job.trajectory in write
        spread_wanted = job.uncertainty is not None
        result = self.session.matte(
            image, trimap, self.s.steps, self.s.seed, trajectory=frames_wanted,
            working_megapixels=self.s.working_megapixels, flip_tta=self.s.flip_tta, fusion=self.s.fusion,
            seeds=self.s.seeds, uncertainty=spread_wanted,
        )
        spread = None
        if spread_wanted:
            result, spread = result
        alpha = result[-1] if frames_wanted else result
        cut = self.session.cutout(image, alpha, background, despill=self.s.despill) if job.cutout in write else None
        # Everything is computed before the first write: a failure leaves no half set of outputs.
        if job.alpha in write:
            save_alpha(alpha, job.alpha, bit_depth=self.s.bit_depth)
        if cut is not None and job.cutout is not None:
            (save_rgba if cut.shape[2] == 4 else save_rgb)(cut, job.cutout)
        if frames_wanted and job.trajectory is not None:
            save_frames(result, job.trajectory)
        if spread is not None and job.uncertainty in write:
            save_alpha(uncertainty_image(spread), job.uncertainty, bit_depth=self.s.bit_depth)


# -- checks before any work -----------------------------------------------------------------------
def _load_model(settings: Settings) -> "DiffMatte":
    from ..loading import load_model  # torch: only once a model is needed

    return load_model(settings.model, precision=settings.precision)


def _cutout_purpose(settings: Settings) -> str:
    return "rgb" if settings.background is not None else "rgba"


def _check_single_outputs(job: Job, settings: Settings) -> None:
    from ..io import check_output_path

    inputs = [job.image, job.trimap, settings.background, settings.model]
    outs = job.outputs()
    if len({p.resolve() for p in outs}) != len(outs):
        raise InputError("-o, --cutout, --trajectory and --uncertainty must name different files")
    grey = "alpha16" if settings.bit_depth == 16 else "alpha"
    purposes = {job.alpha: grey, job.cutout: _cutout_purpose(settings), job.uncertainty: grey}
    purposes[job.trajectory] = "frames"
    for p in outs:
        check_output_path(p, purpose=purposes[p], inputs=inputs, overwrite=settings.overwrite)


def _check_usage(
    image: Path | None,
    trimap: Path | None,
    images: Path | None,
    trimaps: Path | None,
    auto: bool,
    cutout: Path | None,
    background: str | None,
    seeds: int = 1,
    uncertainty: Path | None = None,
    trajectory: Path | None = None,
    flip_tta: bool = False,
    despill: bool = False,
) -> None:
    if images is None and image is None:
        raise click.UsageError("give IMAGE and TRIMAP, or --images DIR --trimaps DIR")
    if image is not None and image.is_dir():
        raise click.UsageError(f"IMAGE {image} is a folder; for folders use --images DIR --trimaps DIR -o OUTDIR")
    if images is not None and (image is not None or trimap is not None):
        raise click.UsageError("give either IMAGE [TRIMAP] or --images DIR, not both")
    if trimaps is not None and images is None:
        raise click.UsageError("--trimaps needs --images")
    if auto and (trimap is not None or trimaps is not None):
        raise click.UsageError("--auto-trimap makes the trimap: do not give one too")
    if not auto and image is not None and trimap is None:
        raise click.UsageError("give a TRIMAP, or pass --auto-trimap")
    if not auto and images is not None and trimaps is None:
        raise click.UsageError("give --trimaps DIR, or pass --auto-trimap")
    if background is not None and cutout is None:
        raise click.UsageError("--background needs --cutout (the composite is written there)")
    if despill and cutout is None:
        raise click.UsageError("--despill changes the cutout's colours: add --cutout FILE")
    if uncertainty is not None and seeds < 2:
        raise click.UsageError("--uncertainty is the spread of several samples: add --seeds 4 (or any N >= 2)")
    if seeds > 1 and (trajectory is not None or flip_tta):
        raise click.UsageError("--seeds cannot be combined with --trajectory or --flip-tta")


# -- folder mode ----------------------------------------------------------------------------------
def _image_files(folder: Path, what: str) -> list[Path]:
    from ..io import is_image_file

    if not folder.is_dir():
        raise InputError(f"{what} {folder}: no such folder")
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def _plan_folder(
    images: Path,
    trimaps: Path | None,
    outdir: Path,
    cutdir: Path | None,
    trajdir: Path | None,
    uncdir: Path | None = None,
) -> tuple[list[Job], list[tuple[str, str]]]:
    """Jobs for every image in ``images``, and (name, reason) for images that cannot be matted."""
    from ..io import check_writable_folder

    files = _image_files(images, "--images")
    if not files:
        raise InputError(f"--images {images}: no image files in this folder")
    by_stem: dict[str, list[Path]] = {}
    for p in _image_files(trimaps, "--trimaps") if trimaps is not None else []:
        by_stem.setdefault(p.stem, []).append(p)
    inputs = {images.resolve(), *([trimaps.resolve()] if trimaps is not None else [])}
    for folder in (outdir, cutdir, trajdir, uncdir):
        if folder is None:
            continue
        if folder.resolve() in inputs:
            raise InputError(f"output folder {folder} is an input folder; write the results elsewhere")
        if folder.exists() and not folder.is_dir():
            raise InputError(f"output folder {folder} is a file")
        check_writable_folder(folder)
    stems: dict[str, Path] = {}
    jobs, problems = [], []
    for img in files:
        if img.stem in stems:
            problems.append((img.name, f"{stems[img.stem].name} has the same name and is matted instead"))
            continue
        stems[img.stem] = img
        found = by_stem.get(img.stem, [])
        if trimaps is not None and len(found) != 1:
            why = "no trimap" if not found else f"{len(found)} trimaps ({', '.join(p.name for p in found)})"
            problems.append((img.name, f"{why} named {img.stem}.* in {trimaps}"))
            continue
        jobs.append(
            Job(
                image=img,
                trimap=found[0] if trimaps is not None else None,
                alpha=outdir / f"{img.stem}.png",
                cutout=cutdir / f"{img.stem}.png" if cutdir is not None else None,
                trajectory=trajdir / f"{img.stem}.gif" if trajdir is not None else None,
                uncertainty=uncdir / f"{img.stem}.png" if uncdir is not None else None,
            )
        )
    return jobs, problems


# What a bad input file raises (unreadable, wrong size, too large for memory): reported, and the
# batch goes on. Anything else is a bug in diffmatte and stops the batch (EXIT_INTERNAL_ERROR).
_BAD_FILE_ERRORS = (DiffMatteError, MemoryError)
EXIT_INTERNAL_ERROR = 3


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, DiffMatteError) else f"{type(e).__name__}: {e}"


def _remove_partial_outputs(outputs: list[Path]) -> None:
    """Delete the temporary files a killed run left for these outputs (io's atomic writers
    write ``.<name>.<pid>.tmp`` and rename it). Only this process writes these outputs: the
    files of a folder are split between ranks."""
    for out in outputs:
        for partial in out.parent.glob(f".{out.name}.*.tmp"):
            partial.unlink(missing_ok=True)


def _run_folder(
    runner: Runner,
    jobs: list[Job],
    problems: list[tuple[str, str]],
    echo: Callable[[str], None],
    world: World,
    quiet: bool = False,
) -> int:
    """Matte this rank's share of the jobs; returns the number of failures of all ranks
    (rank 0 prints the summary and lists them at the end)."""
    from tqdm import tqdm

    failures = list(problems) if world.main else []
    done = skipped = 0
    folders: dict[Path, None] = {}  # where something was written, in order
    desc = "matting" if world.size == 1 else f"matting (rank 0 of {world.size})"
    hide = True if quiet or not world.main else None
    for job in tqdm(world.shard(jobs), unit="image", desc=desc, disable=hide, file=sys.stderr):
        write = [p for p in job.outputs() if runner.s.overwrite or not p.exists()]
        if not write:
            skipped += 1
            continue
        try:
            _remove_partial_outputs(write)
            with echo_warnings(lambda m: tqdm.write(m, file=sys.stderr), prefix=f"{job.image.name}: "):
                runner.run(job, write)
            done += 1
            folders.update(dict.fromkeys(p.parent for p in write))
        except _BAD_FILE_ERRORS as e:  # one bad file must not stop the batch; each is reported below
            failures.append((job.image.name, _describe(e)))
        except Exception:
            echo(traceback.format_exc().rstrip())
            echo(f"internal error while matting {job.image.name}: a bug in diffmatte, not in the file (please "
                 f"report it with the traceback above); {done} matted before it, the rest not attempted")
            raise SystemExit(EXIT_INTERNAL_ERROR) from None
    counts = world.gather((done, skipped, failures, list(folders)))
    done, skipped = sum(c[0] for c in counts), sum(c[1] for c in counts)
    failures = sorted(f for c in counts for f in c[2])
    folders = dict.fromkeys(f for c in counts for f in c[3])
    if not world.main or (quiet and not failures):
        return len(failures)
    summary = f"{done} matted, {skipped} skipped (outputs exist; --overwrite redoes them), {len(failures)} failed"
    if folders:
        summary += f"; written to {', '.join(f'{f}/' for f in folders)}"
    echo(summary)
    for name, why in failures:
        echo(f"  failed: {name}: {why}")
    return len(failures)


# -- the command ----------------------------------------------------------------------------------
@click.command(help=HELP, short_help="Matte images with a trimap (or an automatic one).")
@click.argument("image", required=False, type=click.Path(path_type=Path))
@click.argument("trimap", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Alpha matte file (folder mode: folder)."
)
@click.option("--images", type=click.Path(path_type=Path), help="Folder of images to matte (folder mode).")
@click.option("--trimaps", type=click.Path(path_type=Path), help="Folder of trimaps, matched to images by name.")
@click.option("--auto-trimap", is_flag=True, help='Make the trimap with the salient-object model (needs diffmatte[auto]).')
@click.option(
    "--cutout", type=click.Path(path_type=Path), help="Also write an RGBA cutout with estimated colours (folder mode: folder)."
)
@click.option("--background", metavar="FILE|#RRGGBB", help="Composite the cutout on this image or colour instead.")
@click.option(
    "--despill", is_flag=True,
    help="Take the old background's hue out of the cutout's edge colours (spill suppression, e.g. green "
    "light in white fur). Off by default: a subject that shares the background's hue loses some colour.",
)
@click.option(
    "--trajectory", type=click.Path(path_type=Path), help="Also write every step's matte as an animation, e.g. steps.gif."
)
@click.option(
    "--seeds", type=click.IntRange(1, 64), default=1, show_default=True,
    help="Sample the matte N times (one batch on one encoding) and write their mean.",
)
@click.option(
    "--uncertainty", type=click.Path(path_type=Path),
    help="Also write where the matte is unsure, e.g. u.png (folder mode: folder): grey, 0 = certain, twice "
    "the seeds' standard deviation (with fusion, combined with how far fusion moved their mean); 0 on "
    "known pixels. Needs --seeds 2 or more.",
)
@click.option("--resize-trimap", is_flag=True, help="Resize a trimap of another size to the image instead of failing.")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True, help="Bits of the matte.")
@click.option(
    "--precision",
    type=click.Choice(PRECISION_CHOICES),
    default="auto",
    show_default=True,
    help="Network arithmetic. auto: bf16 on CPUs with bf16 instructions (AVX512-BF16, AMX) and on GPUs "
    "(1.5-2x faster, SAD within 1% of fp32), fp32 elsewhere; -v says which ran.",
)
@resolution_option
@click.option("--flip-tta", is_flag=True, help="Also matte the mirrored image and average the two (twice the time).")
@click.option(
    "--fusion/--no-fusion",
    default=None,
    help="Fuse closed-form matting's colour model with the matte (where a pixel looks like the nearby "
    "background it gets a low alpha). Default: the model's own setting (on for the packaged model, off "
    "for official checkpoints, which then give the official code's output).",
)
@band_option
@model_option
@steps_option
@seed_option
@threads_option
@max_pixels_option
@overwrite_option
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors, not what was written.")
@click.option("-v", "--verbose", is_flag=True, help="Also print the settings the run used (precision, steps, size).")
@click.pass_context
def command(
    ctx: click.Context,
    image: Path | None,
    trimap: Path | None,
    output: Path,
    images: Path | None,
    trimaps: Path | None,
    auto_trimap: bool,
    cutout: Path | None,
    background: str | None,
    despill: bool,
    trajectory: Path | None,
    seeds: int,
    uncertainty: Path | None,
    resize_trimap: bool,
    bit_depth: str,
    precision: str,
    resolution: str,
    flip_tta: bool,
    fusion: bool | None,
    band: int | None,
    model: str,
    steps: int,
    seed: int,
    threads: int | None,
    max_pixels: int,
    overwrite: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    _check_usage(image, trimap, images, trimaps, auto_trimap, cutout, background, seeds, uncertainty, trajectory,
                 flip_tta, despill)
    keep_freed_memory()  # every step's maps reused from the heap (diffmatte.runtime)
    settings = Settings(
        model=model,
        steps=steps,
        seed=seed,
        threads=threads,
        max_pixels=max_pixels,
        band=band,
        resize_trimap=resize_trimap,
        bit_depth=int(bit_depth),
        background=background,
        overwrite=overwrite,
        precision=precision,
        working_megapixels=parse_resolution(resolution),
        flip_tta=flip_tta,
        fusion=fusion,
        seeds=seeds,
        despill=despill,
    )
    runner = Runner(settings)
    echo = _stderr_echo()
    if images is None:
        assert image is not None  # _check_usage
        if launched_world()[1] > 1:
            raise click.UsageError("torchrun splits folder mode (--images DIR) across ranks; matte one image without it")
        job = Job(image=image, trimap=trimap, alpha=output, cutout=cutout, trajectory=trajectory,
                  uncertainty=uncertainty)
        _check_single_outputs(job, settings)
        set_threads(threads)
        with echo_warnings(echo):
            if verbose:
                echo(runner.describe())
            runner.run(job, job.outputs())
        if not quiet:
            echo(_wrote(job))
        return
    jobs, problems = _plan_folder(images, trimaps, output, cutout, trajectory, uncertainty)
    set_threads(threads)
    with echo_warnings(echo):
        # Loaded before the loop: a bad model or background is a usage error, not N failures.
        _ = runner.model, runner.background
        if verbose:
            echo(runner.describe())
        if auto_trimap and jobs:
            _ = runner.salient
    world = current_world()  # under torchrun: this process's rank, joined with the others
    try:
        failed = _run_folder(runner, jobs, problems, echo, world, quiet)
    finally:
        world.close()
    if failed:
        ctx.exit(1)


def _wrote(job: Job) -> str:
    """The one line that says what a single-image run wrote."""
    names = {job.alpha: "alpha", job.cutout: "cutout", job.trajectory: "trajectory", job.uncertainty: "uncertainty"}
    return "wrote " + ", ".join(f"{path} ({what})" for path, what in names.items() if path is not None)


def _stderr_echo() -> Callable[[str], None]:
    def echo(message: Any) -> None:
        click.echo(message, err=True)

    return echo
