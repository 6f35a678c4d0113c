"""diffmatte: natural image matting with diffusion (DiffMatte, Hu et al., arXiv 2312.05915).

Names are imported on first use, so `import diffmatte` (and `diffmatte --version`) does
not pay for importing torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "DiffMatte": "pipeline",
    "MattingOutput": "pipeline",
    "DiffMatteConfig": "models.configuration",
    "get_preset": "models.configuration",
    "list_presets": "models.configuration",
    "DiffMatteNet": "models.modeling_diffmatte",
    "DiffusionConfig": "diffusion.sampler",
    "GaussianDiffusion": "diffusion.sampler",
    "DiffMatteError": "errors",
    "InputError": "errors",
    "CheckpointError": "errors",
    "cutout": "foreground",
    "composite": "foreground",
    "estimate_foreground": "foreground",
    "trimap_from_mask": "trimap",
    "auto_trimap": "trimap",
    "load_model": "loading",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'diffmatte' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .diffusion.sampler import DiffusionConfig, GaussianDiffusion
    from .errors import CheckpointError, DiffMatteError, InputError
    from .foreground import composite, cutout, estimate_foreground
    from .loading import load_model
    from .models.configuration import DiffMatteConfig, get_preset, list_presets
    from .models.modeling_diffmatte import DiffMatteNet
    from .pipeline import DiffMatte, MattingOutput
    from .trimap import auto_trimap, trimap_from_mask
