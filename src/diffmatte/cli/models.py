"""`diffmatte models`: the packaged models and the architecture presets."""
from __future__ import annotations

import click

from ..registry import DEFAULT_MODEL, PACKAGED_MODELS

__all__ = ["command"]


@click.command(short_help="List the available models and presets.")
def command() -> None:
    """List the models that ship with diffmatte (for --model NAME) and the architecture presets.

    Any other checkpoint is used by path: --model path/to/model.safetensors (or an official .pth).
    """
    from ..models.configuration import get_preset, list_presets

    click.echo("packaged models (--model NAME):")
    if not PACKAGED_MODELS:
        click.echo("  none in this installation yet; pass --model PATH with a checkpoint file")
    for name, entry in sorted(PACKAGED_MODELS.items()):
        mark = " (default)" if name == DEFAULT_MODEL else ""
        click.echo(f"  {name}{mark}: {entry.description} [{entry.filename}, sha256 {entry.sha256[:12]}]")
    click.echo("architecture presets (read from a checkpoint, or inferred from its keys):")
    for name in list_presets():
        click.echo(f"  {name}: {get_preset(name).encoder} encoder")
