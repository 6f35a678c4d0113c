"""DiffMatte: the matting pipeline a user holds. Network + diffusion + known-region fix.

Example:
    >>> from diffmatte import DiffMatte
    >>> model = DiffMatte.from_checkpoint("ViTS_1024.pth")          # doctest: +SKIP
    >>> alpha = model.predict("image.png", "trimap.png", steps=10)  # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import checkpoint as ckpt
from .diffusion.sampler import GaussianDiffusion, SamplerName
from .errors import InputError
from .models.configuration import DiffMatteConfig, get_preset
from .models.modeling_diffmatte import DiffMatteNet
from .transforms import check_trimap_values

__all__ = ["DiffMatte", "MattingOutput", "write_known_regions"]


@dataclass
class MattingOutput:
    alpha: Tensor  # (B, 1, H, W) float32 in [0, 1], known trimap regions written
    alpha_raw: Tensor  # (B, 1, H, W) the sampler's alpha before the trimap is written
    pred_x0_steps: list[Tensor] = field(default_factory=list)  # (B, 1, H, W) in [-1, 1], per step
    x_in_steps: list[Tensor] = field(default_factory=list)  # network input per step
    features: Tensor | None = None  # encoder output on the padded input


def write_known_regions(alpha: Tensor, trimap: Tensor, official: bool = False) -> Tensor:
    """Set trimap background to 0 and foreground to 1.

    ``official=True`` reproduces the official code, whose foreground test never holds
    (it compares a {0, 0.5, 1} trimap with 2), so only the background is written.
    """
    out = alpha.clone()
    out[trimap == 0] = 0.0
    if not official:
        out[trimap == 1] = 1.0
    return out


class DiffMatte:
    """A DiffMatte model ready to matte images."""

    def __init__(self, net: DiffMatteNet, diffusion: GaussianDiffusion | None = None) -> None:
        self.net = net.eval()
        self.diffusion = diffusion or GaussianDiffusion(net.config.diffusion)

    @property
    def config(self) -> DiffMatteConfig:
        return self.net.config

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: DiffMatteConfig | str) -> "DiffMatte":
        """A randomly initialised model (for training or tests) from a config or preset name."""
        if isinstance(config, str):
            config = get_preset(config)
        return cls(DiffMatteNet(config))

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], preset: str | None = None, device: str | torch.device = "cpu"
    ) -> "DiffMatte":
        """Load an official ``.pth`` or a diffmatte ``.safetensors`` file, strictly.

        The preset is taken from ``preset``, else the config stored in the file, else
        inferred from the keys and shapes.
        """
        sd, stored = ckpt.read_state_dict(path)
        config = ckpt.config_for(sd, preset, stored)
        net = DiffMatteNet(config)
        ckpt.load_into(net, sd, config.name)
        return cls(net.to(device))

    def save(self, path: str | os.PathLike[str]) -> None:
        ckpt.save_safetensors(self.net, self.config, path)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    # -- tensor-level API ---------------------------------------------------------------------
    @torch.inference_mode()
    def sample(
        self,
        image: Tensor,
        trimap: Tensor,
        steps: int = 10,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: SamplerName = "ddim",
        official_postprocess: bool = False,
        trajectory: bool = False,
    ) -> MattingOutput:
        """Matte a batch. image (B, 3, H, W) RGB in [0, 1]; trimap (B, 1, H, W) in {0, 0.5, 1}.

        ``noise`` is x_T (B, 1, H, W); when absent it is drawn from ``generator``.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if trimap.dim() != 4 or trimap.shape[1] != 1 or trimap.shape[0] != image.shape[0]:
            raise InputError(f"trimap must be (B, 1, H, W) matching image {tuple(image.shape)}, got {tuple(trimap.shape)}")
        if trimap.shape[-2:] != image.shape[-2:]:
            raise InputError(f"trimap size {tuple(trimap.shape[-2:])} differs from image size {tuple(image.shape[-2:])}")
        check_trimap_values(trimap)
        dev = self.device
        image, trimap = image.to(dev, torch.float32), trimap.to(dev, torch.float32)
        if noise is None:
            noise = torch.randn(trimap.shape, generator=generator, dtype=torch.float32, device="cpu").to(dev)
        elif noise.shape != trimap.shape:
            raise InputError(f"noise must have the trimap's shape {tuple(trimap.shape)}, got {tuple(noise.shape)}")
        encoded = self.net.encode(image, trimap)
        result = self.diffusion.sample(
            lambda x_in, t: self.net.denoise(encoded, x_in, t),
            noise.to(dev, torch.float32),
            steps,
            sampler=sampler,
            generator=generator,
            keep_trajectory=trajectory,
        )
        alpha = write_known_regions(result.alpha, trimap, official=official_postprocess)
        return MattingOutput(
            alpha=alpha,
            alpha_raw=result.alpha,
            pred_x0_steps=result.pred_x0_steps,
            x_in_steps=result.x_in_steps,
            features=encoded.features,
        )

    # -- array-level API ----------------------------------------------------------------------
    def predict(
        self,
        image: Any,
        trimap: Any,
        steps: int = 10,
        seed: int | None = None,
        *,
        sampler: SamplerName = "ddim",
        official_postprocess: bool = False,
    ) -> np.ndarray:
        """Alpha matte (H, W) float32 in [0, 1] for one image.

        ``image``: path, PIL image or array (H, W, 3) uint8 / float in [0, 1].
        ``trimap``: path, PIL image or array (H, W): 0 background, 255 (or 1.0) foreground,
        anything else unknown. The same seed gives the same matte.
        """
        from .io import as_image_tensor, as_trimap_tensor

        img = as_image_tensor(image)
        tri = as_trimap_tensor(trimap)
        if tri.shape[-2:] != img.shape[-2:]:
            raise InputError(
                f"trimap is {tri.shape[-1]}x{tri.shape[-2]} but the image is {img.shape[-1]}x{img.shape[-2]} "
                "(width x height); they must be the same size"
            )
        if not bool((tri == 0.5).any()):
            # Nothing to estimate: the trimap already is the matte.
            return tri[0, 0].numpy().astype(np.float32)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        out = self.sample(img, tri, steps, generator=generator, sampler=sampler, official_postprocess=official_postprocess)
        return out.alpha[0, 0].float().cpu().numpy()

