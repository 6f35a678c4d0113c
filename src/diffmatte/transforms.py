"""Input encodings of the official model: normalisation, trimap encodings, padding.

All functions take and return tensors; images are (B, 3, H, W) RGB in [0, 1] and trimaps
(B, 1, H, W) with values exactly {0, 0.5, 1} (background, unknown, foreground).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InputError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize_image",
    "trimap_onehot",
    "padded_size",
    "pad_to",
    "check_trimap_values",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_image(image: Tensor) -> Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image - mean) / std


def trimap_onehot(trimap: Tensor) -> Tensor:
    """(B, 1, H, W) in {0, 0.5, 1} -> (B, 3, H, W) one-hot in the order [bg, unknown, fg]."""
    index = (trimap[:, 0] * 2).round().long()
    return F.one_hot(index, 3).permute(0, 3, 1, 2).to(trimap.dtype)


def padded_size(h: int, w: int, multiple: int = 32) -> tuple[int, int]:
    """Size the official code pads to.

    When either side is not a multiple of ``multiple``, *both* sides get
    ``multiple - side % multiple`` added, so an aligned side still grows by a full
    ``multiple`` (64x100 -> 96x128). The published weights were evaluated this way and
    the padding changes the result inside the image, so parity needs the same rule.
    """
    if h % multiple == 0 and w % multiple == 0:
        return h, w
    return h + multiple - h % multiple, w + multiple - w % multiple


def pad_to(x: Tensor, h: int, w: int) -> Tensor:
    """Zero-pad (B, C, H0, W0) at the bottom/right to (B, C, h, w)."""
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph))


def check_trimap_values(trimap: Tensor) -> None:
    bad = torch.unique(trimap[(trimap != 0) & (trimap != 0.5) & (trimap != 1)])
    if bad.numel():
        shown = ", ".join(f"{v:g}" for v in bad[:5].tolist())
        raise InputError(f"trimap values must be exactly 0, 0.5 or 1 at the tensor level, got {shown}")
