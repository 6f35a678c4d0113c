"""Named models: the weights that ship inside the package, and checkpoints given by path.

Nothing is ever downloaded. A name resolves to a file under ``diffmatte/weights/`` whose
sha256 is recorded here; anything else must be an existing file path, or a folder written
by `diffmatte export` (run with onnxruntime). Data only: the model is built by
:func:`diffmatte.loading.load_model`.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import CheckpointError
from .hashing import sha256_file

__all__ = ["PackagedModel", "PACKAGED_MODELS", "DEFAULT_MODEL", "resolve_model_path", "check_packaged"]


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
        sha256="760a8969f05660e9ff70d7e82ad89e0297a51d1c441f5111f8a07f48630a1f3c",
        description="lite0 (ImageNet EfficientNet-Lite0 + DUNet), 5.6 M params, trained about 9.5 h on a 2-core CPU; fused with closed-form's colour model",
    ),
}
DEFAULT_MODEL = "default"


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
    if spec == DEFAULT_MODEL:
        raise CheckpointError(
            "no packaged model is available in this diffmatte installation yet; give a checkpoint file "
            "(.pth or .safetensors) or an ONNX export folder (--model PATH on the command line)"
        )
    known = ", ".join(sorted(PACKAGED_MODELS)) or "none packaged yet"
    raise CheckpointError(
        f"model {spec!r} is neither a packaged model ({known}) nor an existing checkpoint file or ONNX export folder"
    )


def check_packaged(spec: str | None, path: Path, digest: str | None = None) -> None:
    """Raise CheckpointError if ``spec`` names a packaged model (None: the default) whose file
    at ``path`` does not have the recorded sha256 (``digest``: that file's, when the caller
    has hashed it already)."""
    name = spec or DEFAULT_MODEL
    if name in PACKAGED_MODELS and (digest or sha256_file(path)) != PACKAGED_MODELS[name].sha256:
        raise CheckpointError(f"packaged model {name!r} at {path} fails its sha256 check; reinstall diffmatte")
