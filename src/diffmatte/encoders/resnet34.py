"""ResNet-34 matting encoder of DiffMatte (Res34 variant).

DiffMatte ("Diffusion for Natural Image Matting", arXiv 2312.05915) reuses the encoder of
GCA-Matting (Li & Lu, "Natural Image Matting via Guided Contextual Attention", AAAI 2020):
a ResNet-D style network — a three-convolution stem instead of one 7x7 convolution and
average-pooled shortcuts — in which every convolution is wrapped in a hand-written
spectral normalisation. Only the deepest feature map (stride 32) is used by DiffMatte's
decoder, so that is all this module returns.

The input is the 6-channel backbone input of the Res34 model: normalised RGB followed by
the one-hot trimap [background, unknown, foreground]. Parameter and buffer names follow
the official checkpoint below ``model.backbone.``, so a trained checkpoint loads with
``strict=True`` once that prefix is removed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResNet34Config", "ResNet34Encoder", "SpectralNormConv2d"]

# GCA-Matting adds eps to the norm (instead of clamping it) when normalising u and v;
# kept identical so that training reproduces the official power iteration.
_L2_EPS = 1e-12


def _l2normalize(vector: Tensor) -> Tensor:
    return vector / (vector.norm() + _L2_EPS)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ResNet34Config:
    """Architecture of :class:`ResNet34Encoder`; the defaults are DiffMatte's Res34.

    ``stem_widths`` are the output channels of the three stem convolutions (strides
    2, 1, 2); ``stage_widths`` and ``layers`` give the channels and number of basic
    blocks of ``layer1`` (stride 1), ``layer2``, ``layer3`` and ``layer_bottleneck``
    (stride 2 each). Smaller values only serve fast tests; checkpoints need the defaults.
    """

    in_channels: int = 6
    layers: tuple[int, ...] = (3, 4, 4, 2)
    stem_widths: tuple[int, ...] = (32, 32, 64)
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if not _is_int(self.in_channels) or self.in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {self.in_channels!r}")
        # The total stride of 32 is built into the 2 stem + 3 stage downsamplings.
        self._check_positive_ints("layers", self.layers, 4)
        self._check_positive_ints("stem_widths", self.stem_widths, 3)
        self._check_positive_ints("stage_widths", self.stage_widths, 4)
        eps_is_number = isinstance(self.norm_eps, (int, float)) and not isinstance(self.norm_eps, bool)
        if not eps_is_number or not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be a positive number, got {self.norm_eps!r}")

    @staticmethod
    def _check_positive_ints(name: str, values: tuple[int, ...], length: int) -> None:
        if not isinstance(values, tuple) or len(values) != length:
            raise ValueError(f"{name} must be a tuple of {length} ints, got {values!r}")
        if not all(_is_int(v) and v >= 1 for v in values):
            raise ValueError(f"{name} must contain positive ints only, got {values!r}")


class _SpectralWeights(nn.Module):
    """Holds the tensors of one spectrally normalised convolution.

    A separate child module exists only so that the state-dict keys read
    ``<conv>.module.weight_bar`` / ``weight_u`` / ``weight_v`` as in the official code.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        fan = in_channels * kernel_size * kernel_size
        # u and v are state (saved and loaded) but are never optimised: the power
        # iteration owns them, hence parameters with requires_grad=False.
        # Registration order (u, v, bar) mirrors the official state-dict order.
        self.weight_u = nn.Parameter(_l2normalize(torch.randn(out_channels)), requires_grad=False)
        self.weight_v = nn.Parameter(_l2normalize(torch.randn(fan)), requires_grad=False)
        self.weight_bar = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.xavier_uniform_(self.weight_bar)
        self.reset_singular_vectors()

    @torch.no_grad()
    def reset_singular_vectors(self, iterations: int = 20) -> None:
        """Converge u, v for the current weight_bar.

        Random u, v give sigma near zero or negative, so a freshly built model would give
        NaN or sign-flipped features in eval mode; loaded checkpoints overwrite u, v anyway.
        """
        matrix = self.weight_bar.reshape(self.weight_bar.shape[0], -1)
        for _ in range(iterations):
            self.weight_v.copy_(_l2normalize(torch.mv(matrix.t(), self.weight_u)))
            self.weight_u.copy_(_l2normalize(torch.mv(matrix, self.weight_v)))


class SpectralNormConv2d(nn.Module):
    """Bias-free convolution whose weight is divided by its estimated spectral norm.

    sigma = u . (W v) with W = weight_bar reshaped to (out, in * k * k). In training mode
    u and v first take one power-iteration step (in place, without gradient), and the
    gradient flows through weight_bar in both W and sigma; in eval mode the stored u, v
    are used as they are, so inference is deterministic and leaves the state untouched.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        # "same" padding for odd kernels: 3x3 -> 1, 1x1 -> 0, as in the official convs.
        self.padding = kernel_size // 2
        self.module = _SpectralWeights(in_channels, out_channels, kernel_size)

    def normalized_weight(self) -> Tensor:
        params = self.module
        weight_bar = params.weight_bar
        matrix = weight_bar.reshape(weight_bar.shape[0], -1)
        u, v = params.weight_u, params.weight_v
        if self.training:
            with torch.no_grad():
                v.copy_(_l2normalize(torch.mv(matrix.t(), u)))
                u.copy_(_l2normalize(torch.mv(matrix, v)))
            # Clones keep autograd's saved tensors independent of later in-place updates,
            # e.g. when the encoder runs twice before a single backward pass.
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, torch.mv(matrix, v))
        return weight_bar / sigma

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.normalized_weight(), None, self.stride, self.padding)

    def extra_repr(self) -> str:
        out_channels, in_channels, kernel, _ = self.module.weight_bar.shape
        return f"{in_channels}, {out_channels}, kernel_size={kernel}, stride={self.stride}"


class _BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU (stride on the first conv)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm_eps: float) -> None:
        super().__init__()
        self.conv1 = SpectralNormConv2d(in_channels, out_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=norm_eps)
        self.conv2 = SpectralNormConv2d(out_channels, out_channels, 3)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=norm_eps)
        self.downsample: nn.Sequential | None = None
        if stride != 1:
            # ResNet-D shortcut: average-pool first so that no input pixel is skipped
            # (a strided 1x1 conv would drop 3 of every 4). Index 0 has no parameters,
            # which is why the official keys start at downsample.1.
            self.downsample = nn.Sequential(
                nn.AvgPool2d(2, stride),
                SpectralNormConv2d(in_channels, out_channels, 1),
                nn.BatchNorm2d(out_channels, eps=norm_eps),
            )
        elif in_channels != out_channels:
            # Only reachable with non-default widths; same layout as GCA-Matting.
            self.downsample = nn.Sequential(
                SpectralNormConv2d(in_channels, out_channels, 1),
                nn.BatchNorm2d(out_channels, eps=norm_eps),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet34Encoder(nn.Module):
    """DiffMatte's Res34 backbone: (B, 6, H, W) -> (B, 512, H/32, W/32)."""

    stride = 32
    trimap_encoding = "onehot"

    def __init__(self, config: ResNet34Config) -> None:
        super().__init__()
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.stage_widths[-1]
        eps = config.norm_eps
        stem1, stem2, stem3 = config.stem_widths

        # Convs before norms: only to reproduce the official state-dict key order.
        self.conv1 = SpectralNormConv2d(config.in_channels, stem1, 3, stride=2)
        self.conv2 = SpectralNormConv2d(stem1, stem2, 3, stride=1)
        self.conv3 = SpectralNormConv2d(stem2, stem3, 3, stride=2)
        self.bn1 = nn.BatchNorm2d(stem1, eps=eps)
        self.bn2 = nn.BatchNorm2d(stem2, eps=eps)
        self.bn3 = nn.BatchNorm2d(stem3, eps=eps)

        strides = (1, 2, 2, 2)
        names = ("layer1", "layer2", "layer3", "layer_bottleneck")
        channels = stem3
        for name, blocks, width, stride in zip(names, config.layers, config.stage_widths, strides, strict=True):
            stage = [_BasicBlock(channels, width, stride, eps)]
            stage += [_BasicBlock(width, width, 1, eps) for _ in range(blocks - 1)]
            self.add_module(name, nn.Sequential(*stage))
            channels = width

        self._init_weights()

    def _init_weights(self) -> None:
        # Zeroing each block's last BN scale makes every block start as the identity
        # (plus the shortcut), which keeps the deep SN network trainable from scratch.
        for module in self.modules():
            if isinstance(module, _BasicBlock):
                nn.init.zeros_(module.bn2.weight)
        # The trimap channels start switched off so the stem initially responds to RGB
        # only (as pretrained RGB filters would); training learns to use the trimap.
        with torch.no_grad():
            self.conv1.module.weight_bar[:, 3:].zero_()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % self.stride or x.shape[-1] % self.stride:
            raise ValueError(f"H and W must be multiples of {self.stride} (pad first), got {tuple(x.shape[-2:])}")
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer_bottleneck(x)
