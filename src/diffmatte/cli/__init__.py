"""The `diffmatte` command. Thin: parses arguments and calls the library.

Each subcommand lives in its own module ``diffmatte.cli.<name>`` exposing ``command`` (a
click command) and is imported only when used, so ``diffmatte --version`` never imports
torch. Only this module maps exceptions to exit codes: a DiffMatteError (bad input) is
printed as one line and exits with status 2.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from ..errors import DiffMatteError

__all__ = ["cli", "main"]

# name -> one-line help (shown without importing the module)
SUBCOMMANDS: dict[str, str] = {
    "predict": "Matte images with a trimap (or an automatic one).",
    "trimap": "Make a trimap from a mask or automatically.",
    "evaluate": "Score methods on a matting dataset (SAD, MSE, Grad, Conn).",
    "train": "Train a DiffMatte model.",
    "data": "Prepare training data: background manifest, validation set.",
    "models": "List the available models and presets.",
    "serve": "Start the matting web app and HTTP API.",
    "export": "Export a model to ONNX (encoder + one decoder step).",
    "video": "Matte a video clip, the trimap carried through it.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in SUBCOMMANDS if importlib.util.find_spec(f"{__name__}.{n}") is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS or importlib.util.find_spec(f"{__name__}.{cmd_name}") is None:
            return None
        return importlib.import_module(f"{__name__}.{cmd_name}").command


def _version() -> str:
    from .._version import __version__

    return __version__


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="diffmatte")
def cli() -> None:
    """diffmatte: natural image matting with diffusion (DiffMatte, ECCV 2024)."""


def main(argv: list[str] | None = None) -> None:
    try:
        rv = cli.main(args=argv, prog_name="diffmatte", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except DiffMatteError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
