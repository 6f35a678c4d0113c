"""Colour evidence for the decoder: what the trimap's known pixels say about the unknown ones.

Closed-form matting wins where a pixel of the unknown region looks like the background next to
it (glass over a busy scene: the network sees shapes and calls them foreground). This module
gives the decoder that colour model as extra input channels, computed from the image and the
trimap alone, once per image (issue 22 item 2, after FBA's trimap and colour inputs):

1. ``alpha_hat``: the image's projection on the line from the propagated background colour to
   the propagated foreground colour, in [0, 1] (the per-pixel colour-line estimate).
2. ``bg_distance``, 3. ``fg_distance``: |I - B| and |I - F| over sqrt(3).
4. ``bg_near``, 5. ``fg_near``: the known-background and known-foreground masks blurred over about
   16 px (how close known pixels of each kind are).

B and F are the known colours pushed into the unknown region by a push-pull pyramid (each
unknown pixel takes the average of the nearest known pixels, coarse to fine). Where an image
has no known pixel of a kind, the channels that need it are 0.5 (no evidence), so a trimap
without foreground (transparent matter) says nothing rather than something false.

Plain tensor code, batched, no files and no parameters.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["EVIDENCE_CHANNELS", "colour_evidence", "push_pull", "blur_mask", "widen_decoder_input"]

EVIDENCE_CHANNELS = 5
# Levels of 2x pooling for the proximity channels: cells of 16 px, about the width of the
# benchmark bands at the working size.
_NEAR_LEVELS = 4
_EPS = 1e-6
# The condition's channels before the evidence (normalised RGB, one-hot trimap).
_CONDITION = 6


def push_pull(values: Tensor, weight: Tensor) -> Tensor:
    """Fill ``values`` (B, C, H, W) where ``weight`` (B, 1, H, W) is 0 from the known pixels nearby.

    Pull: average the known values down a 2x pyramid. Push: from the coarsest level up, a pixel
    keeps its own level's average where at least a quarter of its cell is known and blends in
    the coarser answer where less is. Known pixels (weight 1) keep their values exactly. An
    image with no known pixel at all comes back as zeros.
    """
    pyramid: list[tuple[Tensor, Tensor]] = []
    total, mass = values * weight, weight
    while max(total.shape[-2:]) > 1:
        pyramid.append((total, mass))
        total, mass = _halve(total), _halve(mass)
    filled = total / mass.clamp_min(_EPS)
    for total, mass in reversed(pyramid):
        coarse = F.interpolate(filled, size=total.shape[-2:], mode="bilinear", align_corners=False)
        own = (mass * 4).clamp(max=1)
        filled = own * (total / mass.clamp_min(_EPS)) + (1 - own) * coarse
    return filled


def blur_mask(mask: Tensor, levels: int = _NEAR_LEVELS) -> Tensor:
    """``mask`` (B, C, H, W) averaged over 2^levels px cells and smoothly upsampled back."""
    h, w = mask.shape[-2:]
    small = mask
    for _ in range(levels):
        small = _halve(small)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def _halve(x: Tensor) -> Tensor:
    # a side of 1 stays 1; an odd side's last cell averages the pixels it has
    kernel = (min(2, x.shape[-2]), min(2, x.shape[-1]))
    return F.avg_pool2d(x, kernel, ceil_mode=True)


def colour_evidence(image: Tensor, trimap: Tensor) -> Tensor:
    """(B, 5, H, W) evidence channels in [0, 1] for image (B, 3, H, W) in [0, 1] and trimap in {0, 0.5, 1}."""
    image = image.float()
    bg = (trimap < 0.25).float()
    fg = (trimap > 0.75).float()
    has_bg = (bg.amax(dim=(1, 2, 3), keepdim=True) > 0).float()
    has_fg = (fg.amax(dim=(1, 2, 3), keepdim=True) > 0).float()
    # both fills in one pass: the pyramid's cost is per call, not per channel
    back, fore = push_pull(torch.cat([image, image]), torch.cat([bg, fg])).chunk(2)
    line = fore - back
    alpha_hat = ((image - back) * line).sum(1, keepdim=True) / ((line * line).sum(1, keepdim=True) + 1e-3)
    scale = 1.0 / math.sqrt(3.0)
    bg_distance = (image - back).norm(dim=1, keepdim=True) * scale
    fg_distance = (image - fore).norm(dim=1, keepdim=True) * scale
    both = has_bg * has_fg
    channels = [
        _or_neutral(alpha_hat.clamp(0, 1), both),
        _or_neutral(bg_distance.clamp(0, 1), has_bg),
        _or_neutral(fg_distance.clamp(0, 1), has_fg),
        blur_mask(torch.cat([bg, fg], dim=1)),
    ]
    return torch.cat(channels, dim=1).to(trimap.dtype)


def _or_neutral(x: Tensor, known: Tensor) -> Tensor:
    return known * x + (1 - known) * 0.5


def widen_decoder_input(sd: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``sd`` of the same model without evidence, fitted to ``own`` (an evidence model's state dict).

    The decoder input is [condition (6), evidence (5), x_t (1)]; only the first down block
    reads it. Its weights get zeros for the evidence channels, so the widened model starts
    out computing exactly what ``sd`` did and training decides what the evidence is worth.
    Tensors that already fit are returned as they are.
    """
    out = dict(sd)
    for key, target in own.items():
        have = sd.get(key)
        if have is None or have.shape == target.shape:
            continue
        if (
            have.dim() == 4 and target.dim() == 4 and have.shape[0] == target.shape[0]
            and target.shape[1] - have.shape[1] == EVIDENCE_CHANNELS and have.shape[2:] == target.shape[2:]
        ):
            zeros = have.new_zeros(have.shape[0], EVIDENCE_CHANNELS, *have.shape[2:])
            out[key] = torch.cat([have[:, :_CONDITION], zeros, have[:, _CONDITION:]], dim=1)
    return out
