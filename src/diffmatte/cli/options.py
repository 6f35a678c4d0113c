"""Options shared by the subcommands, defined once, and the few helpers they share.

Importing this module must stay cheap (no torch): the model is loaded by ``load_model``.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import click

from ..errors import CheckpointError
from ..limits import DEFAULT_MAX_PIXELS
from ..registry import DEFAULT_MODEL, PACKAGED_MODELS

if TYPE_CHECKING:
    from ..pipeline import DiffMatte

__all__ = [
    "model_option",
    "steps_option",
    "seed_option",
    "threads_option",
    "overwrite_option",
    "max_pixels_option",
    "band_option",
    "load_model",
    "set_threads",
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
        help="Half-width of the unknown band around the mask edge [default: 1% of the longer side, min 5].",
    )(f)


def load_model(spec: str, precision: str = "fp32") -> "DiffMatte":
    """The model named by --model, loaded once for every input of the call."""
    from ..loading import load_model as registry_load

    if spec == DEFAULT_MODEL and spec not in PACKAGED_MODELS and not Path(spec).exists():
        raise CheckpointError(
            "no packaged model is available in this diffmatte installation yet; "
            "pass --model PATH with a checkpoint file (.pth or .safetensors)"
        )
    return registry_load(spec, precision=precision)


def set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


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
