"""DiffMatteNet: a matting encoder plus the DUNet diffusion decoder.

The encoder runs once per image (:meth:`DiffMatteNet.encode`); the decoder runs once per
sampling step (:meth:`DiffMatteNet.denoise`). State-dict keys are the official ones
without the leading ``model.`` (``backbone.*``, ``decoder.*``), so official checkpoints load
strictly. This module never reads files and never draws noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..encoders import create_encoder
from ..transforms import normalize_image, pad_to, padded_size, trimap_onehot
from .configuration import DiffMatteConfig
from .dunet import DUNet
from .evidence import EVIDENCE_CHANNELS, colour_evidence

__all__ = ["Decoder", "DiffMatteNet", "EncodedImage", "network_inputs"]

# (decoder input, t, features) -> logits: the DUNet itself or a FastDecoder over it.
Decoder = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class EncodedImage:
    """What every sampling step reuses: encoder features and the padded decoder condition."""

    features: Tensor  # (B, C, Hp / stride, Wp / stride)
    # (B, 6, Hp, Wp): 2 * [normalised RGB, one-hot trimap] - 1, zero padding; evidence presets
    # add diffmatte.models.evidence's channels, also through 2c - 1 (B, 11, Hp, Wp)
    condition: Tensor
    size: tuple[int, int]  # (H, W) before padding


class DiffMatteNet(nn.Module):
    def __init__(self, config: DiffMatteConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = create_encoder(config.encoder, config.encoder_config)
        self.decoder = DUNet(config.decoder)
        if self.backbone.out_channels != config.decoder.feature_channels:
            raise ValueError(
                f"encoder {config.encoder!r} gives {self.backbone.out_channels} channels but the decoder "
                f"expects {config.decoder.feature_channels}"
            )
        if self.backbone.stride != config.decoder.feature_stride:
            raise ValueError(
                f"encoder stride {self.backbone.stride} does not match the decoder's {config.decoder.feature_stride}"
            )
        condition = 6 + (EVIDENCE_CHANNELS if config.evidence else 0)
        if config.decoder.in_channels != condition + 1:
            raise ValueError(
                f"the decoder input is {condition} condition channels + x_t = {condition + 1}, "
                f"got {config.decoder.in_channels}"
            )

    def encoder_input(self, image: Tensor, trimap: Tensor) -> tuple[Tensor, Tensor]:
        """Padded (encoder input, decoder condition) for image (B,3,H,W), trimap (B,1,H,W)."""
        return network_inputs(image, trimap, self.backbone.trimap_encoding, evidence=self.config.evidence)

    def encode(self, image: Tensor, trimap: Tensor) -> EncodedImage:
        enc, cond = self.encoder_input(image, trimap)
        return EncodedImage(self.backbone(enc), cond, (image.shape[-2], image.shape[-1]))

    def denoise(self, encoded: EncodedImage, x_in: Tensor, t: Tensor, decoder: Decoder | None = None) -> Tensor:
        """x0_hat (B, 1, H, W) in (-1, 1) from the normalised noisy matte x_in (B, 1, H, W).

        ``decoder`` runs the decoder instead of ``self.decoder`` (a pipeline's
        :class:`~diffmatte.models.fast_decoder.FastDecoder`): same inputs, same logits.
        """
        return 2.0 * torch.sigmoid(self.denoise_logits(encoded, x_in, t, decoder)) - 1.0

    def denoise_logits(self, encoded: EncodedImage, x_in: Tensor, t: Tensor, decoder: Decoder | None = None) -> Tensor:
        h, w = encoded.size
        hp, wp = encoded.condition.shape[-2:]
        x = torch.cat([encoded.condition, pad_to(x_in, hp, wp)], dim=1)
        logits = (self.decoder if decoder is None else decoder)(x, t, encoded.features)
        return logits[:, :, :h, :w]


def network_inputs(
    image: Tensor, trimap: Tensor, trimap_encoding: str, evidence: bool = False
) -> tuple[Tensor, Tensor]:
    """Padded (encoder input, decoder condition) for image (B,3,H,W), trimap (B,1,H,W).

    ``trimap_encoding`` is the encoder's: "raw" (the trimap as one channel) or "onehot";
    ``evidence`` appends the colour evidence channels to the condition (evidence presets).
    Shared with the ONNX backend, whose graphs take these padded tensors.
    """
    rgb = normalize_image(image)
    onehot = trimap_onehot(trimap)
    if trimap_encoding == "raw":
        enc = torch.cat([rgb, trimap], dim=1)
    else:
        enc = torch.cat([rgb, onehot], dim=1)
    # The official code maps the whole condition, normalised RGB included, through 2c - 1.
    parts = [rgb, onehot] + ([colour_evidence(image, trimap).to(rgb.dtype)] if evidence else [])
    cond = torch.cat(parts, dim=1).mul_(2).sub_(1)
    hp, wp = padded_size(image.shape[-2], image.shape[-1])
    return pad_to(enc, hp, wp), pad_to(cond, hp, wp)
