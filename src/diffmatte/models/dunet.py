"""DUNet: DiffMatte's time-conditioned U-Net decoder.

It sees the encoder's features (computed once per image), the decoder condition
(normalised RGB and one-hot trimap, both mapped through ``2c - 1``) and the noisy alpha
``x_t``, and predicts logits whose ``2 * sigmoid - 1`` is the clean-alpha estimate x0 in
(-1, 1). Only this module runs at every sampling step (Hu et al., arXiv 2312.05915, §3).

The time embedding is a sinusoid of the raw ``t`` in [0, 1] with period scale 1e4, as the
official code has it: most of its 32 channels are nearly constant over [0, 1], but the
published weights depend on exactly this embedding.

This is the network as the paper has it, and what training runs. Inference runs it through
:class:`diffmatte.models.fast_decoder.FastDecoder`, which gives the same numbers faster.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DUNetConfig", "DUNet", "timestep_embedding"]


@dataclass(frozen=True)
class DUNetConfig:
    # Encoder-side widths: the 7-channel decoder input, then each down block's output.
    downsample_in: tuple[int, ...] = (7, 32, 64, 128)
    # Decoder-side widths: the encoder feature, the middle block's output, then each up block's.
    upsample_in: tuple[int, ...] = (384, 256, 128, 64, 32)
    model_channels: int = 32  # size of the sinusoidal time embedding
    emb_channels: int = 32
    head_channels: int = 16

    def __post_init__(self) -> None:
        if len(self.upsample_in) != len(self.downsample_in) + 1:
            raise ValueError(
                f"upsample_in needs one entry more than downsample_in, got {len(self.upsample_in)} "
                f"and {len(self.downsample_in)}"
            )
        if self.model_channels % 2:
            raise ValueError(f"model_channels must be even, got {self.model_channels}")
        if min(self.downsample_in + self.upsample_in) < 1:
            raise ValueError("all channel counts must be positive")

    @property
    def in_channels(self) -> int:
        return self.downsample_in[0]

    @property
    def feature_channels(self) -> int:
        return self.upsample_in[0]

    @property
    def feature_stride(self) -> int:
        """Stride of the encoder feature this decoder expects: the down blocks' plus one."""
        return 2 ** len(self.downsample_in)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of times ``t`` (B,) -> (B, dim), cosines first."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class DUNetDownsample(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.op = _conv3x3(cin, cout, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class DUNetUpsample(nn.Module):
    """conv3x3(bilinear 2x upsample(x)): the up blocks' shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv3x3(cin, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))


class DUNetBlock(nn.Module):
    """Residual block that halves (down) or doubles (up) the resolution, with a time shift."""

    def __init__(self, cin: int, cout: int, emb_channels: int, up: bool) -> None:
        super().__init__()
        if up:
            self.conv1: nn.Module = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)
            self.upsample = DUNetUpsample(cin, cout)
        else:
            self.conv1 = _conv3x3(cin, cout, stride=2)
            self.downsample = DUNetDownsample(cin, cout)
        self.up = up
        self.bn1 = nn.BatchNorm2d(cout)
        self.emb_layers = nn.Sequential(nn.Linear(emb_channels, cout), nn.ReLU())
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x))) + self.emb_layers(emb)[:, :, None, None]
        out = self.bn2(self.conv2(out))
        shortcut = self.upsample(x) if self.up else self.downsample(x)
        return F.relu(out + shortcut)


class DUNetHead(nn.Module):
    def __init__(self, cin: int, mid: int) -> None:
        super().__init__()
        self.matting_convs = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.matting_convs(x)


class DUNet(nn.Module):
    """forward(decoder_input, t, features) -> logits (B, 1, H, W); x0 = 2 * sigmoid(logits) - 1.

    ``decoder_input`` is (B, downsample_in[0], H, W) with H, W multiples of the feature
    stride, ``t`` is (B,) in [0, 1], ``features`` is (B, upsample_in[0], H / s, W / s).
    The step-independent part (the image/trimap condition) enters only through the first
    down block together with x_t, so nothing can be cached across steps without changing
    the network.
    """

    def __init__(self, config: DUNetConfig) -> None:
        super().__init__()
        self.config = config
        down, upw = config.downsample_in, config.upsample_in
        e = config.emb_channels
        self.time_embed = nn.Sequential(nn.Linear(config.model_channels, e), nn.ReLU(), nn.Linear(e, e))
        self.down_blks = nn.ModuleList(DUNetBlock(down[i], down[i + 1], e, up=False) for i in range(len(down) - 1))
        self.mid_blk = DUNetBlock(upw[0], upw[1], e, up=True)
        self.up_blks = nn.ModuleList(
            DUNetBlock(upw[i + 1] + down[-(i + 1)], upw[i + 2], e, up=True) for i in range(len(down) - 1)
        )
        self.matting_head = DUNetHead(upw[-1], config.head_channels)

    def forward(self, decoder_input: Tensor, t: Tensor, features: Tensor) -> Tensor:
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(decoder_input.dtype))
        skips = []
        x = decoder_input
        for blk in self.down_blks:
            x = blk(x, emb)
            skips.append(x)
        x = self.mid_blk(features, emb)
        for blk in self.up_blks:
            x = blk(torch.cat([x, skips.pop()], dim=1), emb)
        return self.matting_head(x)
