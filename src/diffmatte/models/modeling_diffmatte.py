"""DiffMatteNet: a matting encoder plus the DUNet diffusion decoder.

The encoder runs once per image (:meth:`DiffMatteNet.encode`); the decoder runs once per
sampling step (:meth:`DiffMatteNet.denoise`). State-dict keys are the official ones
without the leading ``model.`` (``backbone.*``, ``decoder.*``), so official checkpoints load
strictly. This module never reads files and never draws noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..encoders import create_encoder
from ..transforms import normalize_image, pad_to, padded_size, trimap_onehot
from .configuration import DiffMatteConfig
from .dunet import DUNet

__all__ = ["DiffMatteNet", "EncodedImage", "network_inputs"]


@dataclass
class EncodedImage:
    """What every sampling step reuses: encoder features and the padded decoder condition."""

    features: Tensor  # (B, C, Hp / stride, Wp / stride)
    condition: Tensor  # (B, 6, Hp, Wp): 2 * [normalised RGB, one-hot trimap] - 1, zero padding
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
        # Inference-time memory bound of the decoder's full-resolution tail (output pixels
        # per band, for float32 activations: half-precision autocast gets twice the pixels
        # in the same bytes); does not change results. None: no banding. Each band
        # recomputes a halo, so larger bands are faster: a ViT-S step at 1024² is 3% (fp32)
        # and 6% (bf16) faster with 2^18 than 2^17, but fp32 peak RSS grows 966 -> 1142 MiB.
        self.decoder_band_pixels: int | None = 1 << 17
        # Bands never hold fewer output rows than this: each recomputes a halo of 8 output
        # rows on either side, so on wide images bands of 2^17 pixels (64 rows at 2048 px)
        # made a ViT-S step at 2048^2 take 8.79-8.86 s, 128-row bands 7.86-7.97 s (halo 3).
        self.decoder_min_band_rows = 128
        self.decoder_channels_last = False
        if config.decoder.in_channels != 7:
            raise ValueError(f"the decoder input is 6 condition channels + x_t, got {config.decoder.in_channels}")

    def use_channels_last(self, enabled: bool = True) -> None:
        """Run the decoder in NHWC layout (weights and activations): its 3x3 convolutions are
        about 10% faster so on x86 CPUs; results equal NCHW up to float rounding."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        self.decoder.to(memory_format=fmt)
        self.decoder_channels_last = enabled

    def encoder_input(self, image: Tensor, trimap: Tensor) -> tuple[Tensor, Tensor]:
        """Padded (encoder input, decoder condition) for image (B,3,H,W), trimap (B,1,H,W)."""
        return network_inputs(image, trimap, self.backbone.trimap_encoding)

    def encode(self, image: Tensor, trimap: Tensor) -> EncodedImage:
        if not self.training:
            fmt = torch.channels_last if self.decoder_channels_last else torch.contiguous_format
            self.decoder.prepare_inference(fmt)
        enc, cond = self.encoder_input(image, trimap)
        return EncodedImage(self.backbone(enc), cond, (image.shape[-2], image.shape[-1]))

    def denoise(self, encoded: EncodedImage, x_in: Tensor, t: Tensor) -> Tensor:
        """x0_hat (B, 1, H, W) in (-1, 1) from the normalised noisy matte x_in (B, 1, H, W)."""
        return 2.0 * torch.sigmoid(self.denoise_logits(encoded, x_in, t)) - 1.0

    def denoise_logits(self, encoded: EncodedImage, x_in: Tensor, t: Tensor) -> Tensor:
        h, w = encoded.size
        hp, wp = encoded.condition.shape[-2:]
        x = torch.cat([encoded.condition, pad_to(x_in, hp, wp)], dim=1)
        features = encoded.features
        if self.decoder_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            features = features.contiguous(memory_format=torch.channels_last)
        band = None if self.training else self.decoder_band_pixels
        if band is not None:
            if _half_precision_autocast(x.device.type):
                band *= 2
            band = max(band, self.decoder_min_band_rows * x.shape[0] * wp)
        logits = self.decoder(x, t, features, max_band_pixels=band)
        return logits[:, :, :h, :w]


def network_inputs(image: Tensor, trimap: Tensor, trimap_encoding: str) -> tuple[Tensor, Tensor]:
    """Padded (encoder input, decoder condition) for image (B,3,H,W), trimap (B,1,H,W).

    ``trimap_encoding`` is the encoder's: "raw" (the trimap as one channel) or "onehot".
    Shared with the ONNX backend, whose graphs take these padded tensors.
    """
    rgb = normalize_image(image)
    onehot = trimap_onehot(trimap)
    if trimap_encoding == "raw":
        enc = torch.cat([rgb, trimap], dim=1)
    else:
        enc = torch.cat([rgb, onehot], dim=1)
    # The official code maps the whole condition, normalised RGB included, through 2c - 1.
    cond = torch.cat([rgb, onehot], dim=1).mul_(2).sub_(1)
    hp, wp = padded_size(image.shape[-2], image.shape[-1])
    return pad_to(enc, hp, wp), pad_to(cond, hp, wp)


def _half_precision_autocast(device_type: str) -> bool:
    # Devices without autocast (meta, used for FLOP counting) raise on the query.
    if not torch.amp.is_autocast_available(device_type):
        return False
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type).itemsize == 2
