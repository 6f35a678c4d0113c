"""The export folder's format: file names, the config file and its checks.

Shared by the exporter (which writes it) and the ONNX network (which reads it), so neither
imports the other.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

__all__ = [
    "CONFIG_FILE",
    "DECODER_FILE",
    "ENCODER_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "PAD_MULTIPLE",
    "is_onnx_export",
    "read_export_config",
]

CONFIG_FILE = "diffmatte_onnx.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder_step.onnx"
FORMAT = "diffmatte-onnx"
FORMAT_VERSION = 1
PAD_MULTIPLE = 32


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by `diffmatte export`."""
    return (Path(path) / CONFIG_FILE).is_file()


def read_export_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The export's ``diffmatte_onnx.json``, checked."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"model folder {folder}: no {CONFIG_FILE}, so not a diffmatte ONNX export "
            "(make one with `diffmatte export --model NAME|PATH -o DIR`)"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a diffmatte ONNX export config (expected \"format\": \"{FORMAT}\")")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version!r} is not one this diffmatte reads (up to {FORMAT_VERSION}); "
            "upgrade diffmatte or export again"
        )
    for key in ("model_config", "trimap_encoding", "encoder", "decoder_step", "padding"):
        if key not in meta:
            raise CheckpointError(f"{path}: field {key!r} is missing")
    multiple = meta["padding"].get("multiple") if isinstance(meta["padding"], dict) else None
    if multiple != PAD_MULTIPLE:
        # network_inputs pads to multiples of 32 (the official rule); the graphs were traced so.
        raise CheckpointError(f"{path}: padding multiple {multiple!r} is not the {PAD_MULTIPLE} this diffmatte uses")
    return meta
