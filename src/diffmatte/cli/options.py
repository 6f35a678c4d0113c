"""Options shared by the subcommands, defined once, and the few helpers they share.

Importing this module must stay cheap (no torch): subcommands import ``diffmatte.loading``
(the model) inside their functions.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import click

from ..errors import InputError
from ..limits import DEFAULT_MAX_PIXELS
from ..registry import DEFAULT_MODEL

if TYPE_CHECKING:
    pass

__all__ = [
    "model_option",
    "steps_option",
    "seed_option",
    "threads_option",
    "overwrite_option",
    "max_pixels_option",
    "band_option",
    "resolution_option",
    "parse_resolution",
    "echo_warnings",
]

F = TypeVar("F", bound=Callable[..., Any])


def model_option(f: F) -> F:
    return click.option(
        "--model",
        default=DEFAULT_MODEL,
        show_default=True,
        metavar="NAME|PATH",
        help="A packaged model name (see `diffmatte models`), a checkpoint file (.pth / .safetensors) "
        "or a folder written by `diffmatte export` (runs with onnxruntime).",
    )(f)


def steps_option(f: F) -> F:
    return click.option(
        "--steps", type=click.IntRange(1, 1000), default=10, show_default=True, help="Diffusion sampling steps."
    )(f)


def seed_option(f: F) -> F:
    return click.option(
        "--seed", type=int, default=0, show_default=True, help="Noise seed; the same seed gives the same matte."
    )(f)


def threads_option(f: F) -> F:
    return click.option(
        "--threads", type=click.IntRange(1), default=None, help="CPU threads to use (default: the library's choice)."
    )(f)


def overwrite_option(f: F) -> F:
    return click.option("--overwrite", is_flag=True, help="Replace outputs that already exist.")(f)


def max_pixels_option(f: F) -> F:
    return click.option(
        "--max-pixels",
        type=click.IntRange(1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse images with more pixels than this.",
    )(f)


def band_option(f: F) -> F:
    return click.option(
        "--band",
        type=click.IntRange(1),
        default=None,
        metavar="PX",
        help="Half-width of the unknown band around the mask edge [default: 2% of the longer side, min 5].",
    )(f)


def resolution_option(f: F) -> F:
    return click.option(
        "--resolution",
        default="auto",
        show_default=True,
        metavar="auto|full|MEGAPIXELS",
        help="Size the network mattes at: auto = the model's own (the packaged model's working size; full "
        "for official checkpoints), full = the image's size, or a number of megapixels. Larger images are "
        "matted at that size and the matte is brought back to full size guided by the image.",
    )(f)


def parse_resolution(text: str) -> float | None:
    """``--resolution``'s value as ``working_megapixels`` (None: the model's own; 0: full size)."""
    if text == "auto":
        return None
    if text == "full":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InputError(f"--resolution must be auto, full or a positive number of megapixels, got {text!r}")
    return value


@contextlib.contextmanager
def echo_warnings(echo: Callable[[str], None], prefix: str = "") -> Iterator[None]:
    """Show the library's warnings raised inside the block as one ``warning:`` line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                echo(f"warning: {prefix}{w.message}")
