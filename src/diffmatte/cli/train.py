"""`diffmatte train CONFIG [--set KEY=VALUE ...]`: train a model (see diffmatte.training and docs/training.md)."""
from __future__ import annotations

import logging
import os

import click

__all__ = ["command"]


def _list_presets(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from ..training.loop import get_train_preset, list_train_presets

    for name in list_train_presets():
        p = get_train_preset(name)
        click.echo(f"{name:<12} model {p.model:<11} batch {p.batch_size:>3}/process  {p.max_steps:>7} steps  "
                   f"lr {p.optim.lr:g}  crop {p.data.crop_size}")
    ctx.exit(0)


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set optim.lr=1e-4 --set data.fg_dir=/data/fg (repeatable).")
@click.option("--resume", "resume", type=click.Path(file_okay=False, exists=True), default=None,
              help="Continue the run in this folder from its last checkpoint (its config.toml, plus any --set).")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable or mismatched data files with a warning instead of stopping.")
@click.option("--list-presets", is_flag=True, expose_value=False, is_eager=True, callback=_list_presets,
              help="List the training presets and exit.")
def command(config: str | None, overrides: tuple[str, ...], resume: str | None, skip_bad: bool) -> None:
    """Train a DiffMatte model. CONFIG is a training preset (--list-presets) or a TOML file.

    \b
    One process:      diffmatte train tiny_vit --set data.fg_dir=fg --set data.bg_dir=bg
    Several GPUs:     torchrun --standalone --nproc_per_node=4 -m diffmatte train vits --set data.root=dim
    After a crash:    diffmatte train --resume runs/tiny_vit-20261125-083000
    """
    from ..errors import InputError
    from ..runtime import keep_freed_memory
    from ..training.loop import load_config, main

    if config is None and resume is None:
        raise click.UsageError("give a CONFIG (preset name or TOML file), or --resume RUN_DIR")
    if config is not None and resume is not None:
        raise click.UsageError("--resume takes the config from the run folder; pass changes with --set")
    if resume is not None:
        config = os.path.join(resume, "config.toml")
        if not os.path.isfile(config):
            raise InputError(f"{resume} is not a run folder: it has no config.toml")
    keep_freed_memory()  # training steps and validation allocate the same sizes every time
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(message)s" if "RANK" in os.environ else "%(asctime)s %(levelname)s %(message)s",
    )
    cfg = load_config(config, overrides)
    result = main(cfg, resume=resume, skip_bad=skip_bad)
    if rank == 0:
        click.echo(f"trained {result.step} steps; run folder {result.run_dir}", err=True)
