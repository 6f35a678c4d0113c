"""Options shared by the subcommands, defined once, and the few helpers they share.

Importing this module must stay cheap (no torch): subcommands import ``diffmatte.loading``
(the model) inside their functions.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import click

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
