"""Reading and writing DiffMatte weights.

* Official checkpoints: detectron2-style ``{'model': state_dict}`` ``.pth`` files with keys
  ``model.backbone.*`` / ``model.decoder.*``; read with ``torch.load(weights_only=True)``
  so no pickled code runs. A ``module.`` prefix (DDP) is stripped too.
* Our own files: safetensors, keys ``backbone.*`` / ``decoder.*``, the model config as JSON
  in the metadata under ``diffmatte_config``.

Loading is strict: before anything is copied, keys and shapes are compared and a mismatch
raises :class:`CheckpointError` naming the preset, the first missing and unexpected keys,
and the shapes that differ.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from .models.configuration import DiffMatteConfig, get_preset
from .writers import atomic_write

__all__ = [
    "read_state_dict",
    "infer_preset",
    "load_into",
    "save_safetensors",
    "CONFIG_METADATA_KEY",
]

CONFIG_METADATA_KEY = "diffmatte_config"
_PREFIXES = ("module.", "model.")


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], DiffMatteConfig | None]:
    """(state dict with keys ``backbone.*``/``decoder.*``, config stored in the file or None)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p}: no such file")
    config = None
    if p.suffix == ".safetensors":
        sd, meta = _read_safetensors(p)
        if CONFIG_METADATA_KEY in meta:
            try:
                config = DiffMatteConfig.from_dict(json.loads(meta[CONFIG_METADATA_KEY]))
            except ValueError as e:
                raise CheckpointError(f"checkpoint {p}: its stored config is invalid: {e}") from e
    else:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for corrupt or pickled-code files
            raise CheckpointError(
                f"checkpoint {p}: cannot be read as a weights-only PyTorch file ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}). Expected an official DiffMatte .pth or a "
                ".safetensors file written by diffmatte."
            ) from e
        sd = _unwrap(obj, p)
    return _strip_prefixes(sd), config


def _read_safetensors(p: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {p}: not a readable safetensors file ({e})") from e
    return sd, meta


def _unwrap(obj: Any, p: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    elif isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {p}: expected a state dict or {{'model': state_dict}}, got {type(obj).__name__}")
    return dict(obj)


def _strip_prefixes(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for k, v in sd.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if k.startswith(prefix):
                    k, changed = k[len(prefix) :], True
        out[k] = v
    return out


def infer_preset(sd: Mapping[str, Tensor]) -> str:
    """The official preset whose layout these keys and shapes have."""
    if "backbone.conv1.module.weight_bar" in sd:
        return "res34"
    if "backbone.layers.0.blocks.0.attn.relative_position_bias_table" in sd:
        return "swin_t"
    patch = sd.get("backbone.patch_embed.proj.weight")
    if patch is not None and "backbone.blocks.0.attn.qkv.weight" in sd:
        width = patch.shape[0]
        rel = sd.get("backbone.blocks.2.attn.rel_pos_h")
        if width == 768:
            return "vitb"
        if width == 384:
            return "vits_1024" if rel is not None and rel.shape[0] == 127 else "vits"
        raise CheckpointError(f"ViT checkpoint of width {width} matches no preset (384: vits/vits_1024, 768: vitb)")
    some = ", ".join(list(sd)[:3])
    raise CheckpointError(
        f"cannot tell the architecture from the keys (first keys: {some}); pass preset= "
        "one of vits, vitb, vits_1024, res34, swin_t"
    )


def load_into(model: nn.Module, sd: Mapping[str, Tensor], preset: str) -> None:
    """Strictly copy ``sd`` into ``model``, after checking keys and shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = [f"checkpoint does not fit preset {preset!r}:"]
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shapes differ (first: {'; '.join(shapes[:3])})")
        raise CheckpointError(" ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def save_safetensors(model: nn.Module, config: DiffMatteConfig, path: str | os.PathLike[str]) -> None:
    """Write the weights and config; atomically, so an interrupted save leaves no torn file."""
    from safetensors.torch import save_file

    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {CONFIG_METADATA_KEY: json.dumps(config.to_dict())}
    atomic_write(path, lambda tmp: save_file(sd, str(tmp), metadata=metadata))


def config_for(sd: Mapping[str, Tensor], preset: str | None, stored: DiffMatteConfig | None) -> DiffMatteConfig:
    """The config to build: the given preset, else the file's own, else inferred from keys."""
    if preset is not None:
        return get_preset(preset)
    if stored is not None:
        return stored
    return get_preset(infer_preset(sd))
