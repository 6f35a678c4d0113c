"""``load_model``: a packaged model by name, or a checkpoint by path, ready to predict.

Above the pipeline (it builds a :class:`~diffmatte.pipeline.DiffMatte`), so that the registry
below it stays data only.
"""
from __future__ import annotations

from .pipeline import DiffMatte
from .registry import check_packaged, resolve_model_path
from .runtime import PrecisionChoice

__all__ = ["load_model"]


def load_model(
    spec: str | None = None,
    preset: str | None = None,
    precision: PrecisionChoice = "auto",
    digest: str | None = None,
) -> DiffMatte:
    """The model named by ``spec`` (a packaged name, a checkpoint path; None: the default).

    A packaged model's file is checked against its recorded sha256 first, with or without a
    name given. ``precision`` "auto" runs bf16 where the hardware multiplies it natively (the
    speed a user expects; mattes within 1% SAD of fp32, docs/performance.md), else fp32; pass
    "fp32" for the exact arithmetic of the official code. ``digest``: the file's sha256 when the
    caller has it (not computed twice).
    """
    path = resolve_model_path(spec)
    check_packaged(spec, path, digest)
    return DiffMatte.from_checkpoint(path, preset=preset, precision=precision)
