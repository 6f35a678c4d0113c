"""Named models: the weights that ship inside the package, and checkpoints given by path.

Nothing is ever downloaded. A name resolves to a file under ``diffmatte/weights/`` whose
sha256 is recorded here; anything else must be an existing file path, or a folder written
by `diffmatte export` (run with onnxruntime).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import CheckpointError

__all__ = ["PackagedModel", "PACKAGED_MODELS", "DEFAULT_MODEL", "resolve_model_path", "load_model", "sha256_file"]


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    sha256: str
    description: str


# See diffmatte/weights/MODEL_CARD.md for how each was trained and how well it does.
PACKAGED_MODELS: dict[str, PackagedModel] = {
    "default": PackagedModel(
        name="default",
        filename="default.safetensors",
        sha256="0bfd82d71498714c75ad6533ba58988fc9672258786b26f786d1af7d1ea6c5a0",
        description="lite0 (ImageNet EfficientNet-Lite0 + DUNet), 5.6 M params, trained about 5 h on a 2-core CPU",
    ),
}
DEFAULT_MODEL = "default"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file; of a folder (an ONNX export), of its files' names and contents."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")) if p.is_dir() else [p]
    for file in files:
        if p.is_dir():
            h.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def resolve_model_path(spec: str | None) -> Path:
    """Path of the weights named by ``spec``: a packaged model name or a file path."""
    spec = spec or DEFAULT_MODEL
    if spec in PACKAGED_MODELS:
        entry = PACKAGED_MODELS[spec]
        path = Path(str(resources.files("diffmatte") / "weights" / entry.filename))
        if not path.is_file():
            raise CheckpointError(f"packaged model {spec!r} is missing its file {path}; reinstall diffmatte")
        return path
    path = Path(spec)
    if path.is_file() or path.is_dir():  # a folder: an ONNX export, checked when loaded
        return path
    known = ", ".join(sorted(PACKAGED_MODELS)) or "none packaged yet"
    raise CheckpointError(
        f"model {spec!r} is neither a packaged model ({known}) nor an existing checkpoint file or ONNX export folder"
    )


def load_model(spec: str | None = None, preset: str | None = None, precision: str = "fp32"):  # -> DiffMatte
    from .pipeline import DiffMatte

    path = resolve_model_path(spec)
    if spec in PACKAGED_MODELS and sha256_file(path) != PACKAGED_MODELS[spec].sha256:
        raise CheckpointError(f"packaged model {spec!r} at {path} fails its sha256 check; reinstall diffmatte")
    return DiffMatte.from_checkpoint(path, preset=preset, precision=precision)  # type: ignore[arg-type]
