"""Adapter of ../shared/reference/parity/check_parity.py for diffmatte (see its README)."""
from __future__ import annotations

import torch

from diffmatte import DiffMatte

_PRESETS = {"vits": "vits", "vitb": "vitb", "vits_1024": "vits_1024", "res34": "res34", "swin_t": "swin_t"}


def load(model_name: str, checkpoint_path: str) -> DiffMatte:
    return DiffMatte.from_checkpoint(checkpoint_path, preset=_PRESETS[model_name])


def sample(handle: DiffMatte, image: torch.Tensor, trimap: torch.Tensor, noise: torch.Tensor, steps: int) -> dict:
    out = handle.sample(image, trimap, steps, noise=noise, trajectory=True)
    return {
        "alpha": out.alpha_raw,
        "x0": out.pred_x0_steps,
        "x_t": out.x_in_steps,
        "features": out.features,
        "alpha_final": out.alpha,
    }
