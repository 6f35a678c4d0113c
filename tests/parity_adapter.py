"""Adapter of ../shared/reference/parity/check_parity.py for diffmatte (see its README).

``DIFFMATTE_PARITY_PRECISION=bf16`` runs the model in bf16 autocast, to report how far bf16
mode is from the official fp32 outputs (make parity-bf16); the fp32 default is the real test.
"""
from __future__ import annotations

import os

import torch

from diffmatte import DiffMatte

_PRESETS = {"vits": "vits", "vitb": "vitb", "vits_1024": "vits_1024", "res34": "res34", "swin_t": "swin_t"}


def load(model_name: str, checkpoint_path: str) -> DiffMatte:
    precision = os.environ.get("DIFFMATTE_PARITY_PRECISION", "fp32")
    return DiffMatte.from_checkpoint(checkpoint_path, preset=_PRESETS[model_name], precision=precision)  # type: ignore[arg-type]


def sample(handle: DiffMatte, image: torch.Tensor, trimap: torch.Tensor, noise: torch.Tensor, steps: int) -> dict:
    out = handle.sample(image, trimap, steps, noise=noise, trajectory=True)
    return {
        "alpha": out.alpha_raw,
        "x0": out.pred_x0_steps,
        "x_t": out.x_in_steps,
        "features": out.features,
        "alpha_final": out.alpha,
    }
