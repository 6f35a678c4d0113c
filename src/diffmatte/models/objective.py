"""The network passes of one DiffMatte training step (the stages of diffusion.losses).

Notation and stages as in :mod:`diffmatte.diffusion.losses`. It lives with the models because
it calls the network; ``diffusion/`` imports no model.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..diffusion.losses import Stage
from ..diffusion.sampler import GaussianDiffusion, normalize_input
from ..diffusion.schedules import right_pad_dims_to
from .modeling_diffmatte import DiffMatteNet

__all__ = ["DiffusionObjective"]


class DiffusionObjective(nn.Module):
    """The network passes of one training step, as one module so DistributedDataParallel sees them.

    ``forward`` returns p (B, 1, H, W) in (-1, 1), the estimate the losses compare with x0.
    """

    def __init__(self, net: DiffMatteNet, diffusion: GaussianDiffusion) -> None:
        super().__init__()
        self.net = net
        self.diffusion = diffusion

    def forward(
        self,
        image: Tensor,
        trimap: Tensor,
        x0: Tensor,
        noise: Tensor,
        times: Tensor,
        first_times: Tensor | None = None,
        stage: Stage = "normal",
    ) -> Tensor:
        """image (B, 3, H, W) in [0, 1]; trimap (B, 1, H, W) in {0, 0.5, 1}; x0, noise (B, 1, H, W)."""
        encoded = self.net.encode(image, trimap)
        if stage == "normal":
            x_t = self.diffusion.q_sample(x0, times, noise)
        else:
            if first_times is None:
                raise ValueError(f"stage {stage!r} needs first_times (t')")
            # 1. first pass at t' on pure noise (stage 1) or on the noised ground truth (stage 2);
            #    its output is only data for the second pass, so no graph is kept
            x_first = noise if stage == "self_align_1" else self.diffusion.q_sample(x0, first_times, noise)
            with torch.no_grad():
                p_first = self.net.denoise(encoded, normalize_input(x_first), first_times).float()
            # 2. re-noise the first estimate to t with the same eps: one DDIM step t' -> t
            a, s = self.diffusion.alpha_sigma(times)
            x_t = right_pad_dims_to(x0, a) * p_first + right_pad_dims_to(x0, s) * noise
        return self.net.denoise(encoded, normalize_input(x_t), times)
