"""`diffmatte data`: prepare the data engine's inputs (background manifest, validation set)."""
from __future__ import annotations

import logging
from pathlib import Path

import click

__all__ = ["command"]


@click.group(short_help="Prepare training data: background manifest, validation set.")
def command() -> None:
    """Prepare the data engine's inputs (see docs/training.md, "Data engine")."""


@command.command("backgrounds")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Manifest to write (.csv).")
@click.option("--extra", multiple=True, type=click.Path(path_type=Path, file_okay=False),
              help="Also a folder of photos with a MANIFEST.csv (file, license columns), e.g. ../shared/data/backgrounds.")
@click.option("--train-only", "train_only", type=click.Path(path_type=Path, dir_okay=False),
              help="A list of files (one a line) some training run used: their pictures never validate.")
@click.option("--val-fraction", default=None, type=click.FloatRange(0.0, 1.0),
              help="Share of the pictures no run has seen that is held out (default: all of them).")
def backgrounds(output: Path, extra: tuple[Path, ...], train_only: Path | None, val_fraction: float | None) -> None:
    """Scan the installed wallpaper packages (make data installs them) and write the manifest with its split.

    Files are grouped into pictures by content, not name; the --extra folders and the
    --train-only files are train-only.
    """
    from ..data.backgrounds import VAL_FRACTION, WALLPAPER_DIRS, build_manifest, read_train_only, write_manifest
    from ..errors import InputError

    for folder in extra:
        if not folder.is_dir():
            raise InputError(f"--extra {folder}: no such directory")
    seen = read_train_only(train_only) if train_only is not None else set()
    if output.exists() and not (output.is_file() and output.read_bytes().startswith(b"file,package,licence,")):
        raise InputError(f"-o {output}: exists and is not a background manifest; not replacing it")
    entries = build_manifest(WALLPAPER_DIRS, tuple(str(f) for f in extra),
                             VAL_FRACTION if val_fraction is None else val_fraction, seen)
    if not entries:
        raise InputError(f"no background found under {', '.join(WALLPAPER_DIRS)}: install the wallpaper packages (make data)")
    write_manifest(entries, output)
    groups = {e.group: e.split for e in entries}
    n_val = sum(1 for s in groups.values() if s == "val")
    click.echo(f"{output}: {len(entries)} files, {len(groups)} pictures ({len(groups) - n_val} train, {n_val} val)")


@command.command("valset")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option("--manifest", required=True, type=click.Path(path_type=Path), help="Background manifest (its val split).")
@click.option("--gt", "gt_root", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="alphamatting_training_lowres (GT19-GT27's photos and ground truth).")
def valset(output: Path, manifest: Path, gt_root: Path) -> None:
    """Build the fixed composited validation set (1-2 MP, benchmark trimaps, held-out backgrounds)."""
    from ..data.valset import build_valset
    from ..errors import InputError

    for sub in ("input_training_lowres", "gt_training_lowres"):
        if not (gt_root / sub).is_dir():
            raise InputError(f"--gt {gt_root}: no {sub}/ folder (expected alphamatting_training_lowres)")
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / "manifest.json").is_file())):
        raise InputError(f"-o {output}: exists and is not a validation set made by this command; not writing into it")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = build_valset(output, manifest, gt_root)
    click.echo(f"{output}: {len(rows)} images")
