"""``diffmatte evaluate``: score DiffMatte and classical baselines on a dataset in one run.

Example::

    diffmatte evaluate --data ../shared/data/alphamatting_training_lowres -o results \\
        --method diffmatte,cf,knn --model runs/last.safetensors --steps 1,3,10 --images GT19-GT27
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Sequence

import click

from .. import evaluation as ev
from ..errors import DiffMatteError
from ..runtime import PRECISION_CHOICES, keep_freed_memory
from .options import seed_option

__all__ = ["command"]


class _BadInput(click.ClickException):
    """A DiffMatteError shown as one message with exit status 2, also when ``cli`` is invoked
    directly (click's CliRunner) rather than through ``diffmatte.cli.main``."""

    exit_code = 2


def _split(value: str | Sequence[str] | None) -> list[str]:
    """Comma-separated and/or repeated option values as one list, empty items dropped."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def _methods(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> list[str]:
    names = _split(value)
    unknown = [n for n in names if n not in ev.METHOD_NAMES]
    if unknown:
        raise click.BadParameter(f"unknown method {', '.join(unknown)}; choose from {', '.join(ev.METHOD_NAMES)}")
    return list(dict.fromkeys(names))


def _precisions(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    names = list(dict.fromkeys(_split(value)))
    if not names or any(n not in PRECISION_CHOICES for n in names):
        raise click.BadParameter(f"choose auto, fp32, bf16 or fp32,bf16, got {value!r}")
    return names


def _steps(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        steps = [int(s) for s in _split(value)]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 1,3,10, got {value!r}") from None
    if not steps or min(steps) < 1:
        raise click.BadParameter(f"steps must be integers >= 1, got {value!r}")
    return sorted(set(steps))


@click.command("evaluate")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Dataset folder: Composition-1k layout (merged/, trimaps/, alpha_copy/) or "
                   "alphamatting.com layout (input_*/, gt_*/, trimap_*/<set>/).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Results folder: per_image.csv, summary.json, summary.md, plots/, cache/.")
@click.option("--method", "methods", multiple=True, callback=_methods, metavar="NAME[,NAME...]",
              help=f"Methods to run, repeated or comma-separated: {', '.join(ev.METHOD_NAMES)}. "
                   "[default: diffmatte]")
@click.option("--model", "models", multiple=True, metavar="NAME|PATH",
              help="DiffMatte model: a packaged name or a .safetensors/.pth checkpoint; repeat to compare "
                   "several. [default: the packaged default model]")
@click.option("--steps", default="10", show_default=True, callback=_steps, metavar="N[,N...]",
              help="DiffMatte sampling steps; one result per value (quality against steps).")
@seed_option
@click.option("--precision", "precisions", default="fp32", show_default=True, callback=_precisions,
              metavar="P[,P...]", help="DiffMatte precision: fp32, bf16, both (one result each) or auto "
                                       "(what predict uses here by default; recorded as the one chosen).")
@click.option("--trimap-set", "trimap_sets", metavar="SET[,SET...]",
              help="Trimap sets to use, e.g. Trimap1,Trimap2. [default: all]")
@click.option("--images", metavar="SEL[,SEL...]",
              help="Only these images: names (GT05), globs (GT1*) or ranges (GT19-GT27). [default: all]")
def command(
    data_dir: Path,
    output: Path,
    methods: list[str],
    models: tuple[str, ...],
    steps: list[int],
    seed: int,
    precisions: list[str],
    trimap_sets: str | None,
    images: str | None,
) -> None:
    """Score methods on a matting dataset (SAD, MSE, Grad, Conn) and write tables and plots.

    Predictions are cached in OUTPUT/cache, keyed by method, model hash, steps, seed, image
    and trimap, so a re-run only computes what is new. The dataset is checked first: every
    missing or mismatched file is listed before any method runs.
    """
    if not methods:
        methods = ["diffmatte"]
    keep_freed_memory()  # every step's maps reused from the heap (diffmatte.runtime)
    if models and "diffmatte" not in methods:
        raise click.UsageError("--model is given but --method does not include diffmatte")
    try:
        _run(data_dir, output, methods, list(models), steps, seed, _split(trimap_sets), _split(images),
             precisions)
    except DiffMatteError as e:
        raise _BadInput(str(e)) from e


def _run(
    data_dir: Path,
    output: Path,
    methods: list[str],
    models: list[str],
    steps: list[int],
    seed: int,
    trimap_sets: list[str],
    images: list[str],
    precisions: list[str],
) -> None:
    from tqdm import tqdm

    # Both checks come before any prediction, so bad input fails in seconds.
    dataset = ev.load_dataset(data_dir, trimap_sets=trimap_sets or None, images=images or None)
    runs = ev.build_methods(methods, models=models, steps=steps, seed=seed, precisions=precisions)
    total = len(dataset.samples) * len(runs)
    with tqdm(total=total, desc="evaluate", unit="prediction", dynamic_ncols=True) as bar:
        result = ev.evaluate(dataset, runs, cache_dir=output / "cache", progress=bar.update)
    cmd = _command_line(data_dir, output, methods, models, steps, seed, trimap_sets, images, precisions)
    paths = ev.write_reports(result, output, command=cmd)
    click.echo(ev.markdown_table(ev.summarize(result)))
    click.echo(f"\n{result.computed} predictions computed, {result.cached} taken from the cache")
    for path in paths.values():
        click.echo(f"wrote {path}")


def _command_line(
    data_dir: Path,
    output: Path,
    methods: list[str],
    models: list[str],
    steps: list[int],
    seed: int,
    trimap_sets: list[str],
    images: list[str],
    precisions: Sequence[str],
) -> str:
    """The run as one canonical command line, to be recorded beside its results."""
    args = ["diffmatte", "evaluate", "--data", str(data_dir), "-o", str(output), "--method", ",".join(methods)]
    if "diffmatte" in methods:
        for m in models:
            args += ["--model", m]
        args += ["--steps", ",".join(map(str, steps)), "--seed", str(seed)]
        if list(precisions) != ["fp32"]:
            args += ["--precision", ",".join(precisions)]
    if trimap_sets:
        args += ["--trimap-set", ",".join(trimap_sets)]
    if images:
        args += ["--images", ",".join(images)]
    return shlex.join(args)
