"""diffmatte: natural image matting with diffusion (DiffMatte, Hu et al., arXiv 2312.05915)."""
from __future__ import annotations

__version__ = "0.1.0"

from .diffusion.sampler import DiffusionConfig, GaussianDiffusion
from .errors import CheckpointError, DiffMatteError, InputError
from .models.configuration import DiffMatteConfig, get_preset, list_presets
from .models.modeling_diffmatte import DiffMatteNet
from .pipeline import DiffMatte, MattingOutput

__all__ = [
    "__version__",
    "DiffMatte",
    "DiffMatteConfig",
    "DiffMatteNet",
    "DiffusionConfig",
    "GaussianDiffusion",
    "MattingOutput",
    "DiffMatteError",
    "InputError",
    "CheckpointError",
    "get_preset",
    "list_presets",
]
