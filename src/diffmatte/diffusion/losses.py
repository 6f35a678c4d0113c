"""DiffMatte's training losses, and the times each training stage draws.

The network passes of each stage live in :mod:`diffmatte.models.objective` (they need the
network; this package imports no model).

Notation (DiffMatte, Hu et al., arXiv 2312.05915, §3.2-3.4; SPEC §6):
  x0        -> 2 * alpha - 1, the ground-truth matte in [-1, 1]
  eps       -> standard Gaussian noise, one draw per sample, shared by both passes
  t, t'     -> times in [0, 1]; t' = t + d >= t is the earlier (noisier) time of self-alignment
  x_t       -> alpha(t) x0 + sigma(t) eps (GaussianDiffusion.q_sample)
  p~        -> x0 estimate of the first pass, at t' (detached: it is data for the second pass)
  p         -> x0 estimate of the second (or only) pass, at t; every loss compares p with x0
  M         -> unknown mask, trimap == 0.5

Stages (the encoder runs once per batch; both decoder passes reuse its features):
  normal        p = f(x_t, t)
  self-align 1  p~ = f(eps, 1);  p = f(alpha(t) sg(p~) + sigma(t) eps, t)
  self-align 2  d ~ U(0, 1), t = U(0, 1) (1 - d), t' = t + d;
                p~ = f(x_t', t');  p = f(alpha(t) sg(p~) + sigma(t) eps, t)   (one DDIM step t' -> t)
The network always receives x_t / std(x_t) (sampler.normalize_input).

Losses, all on the [-1, 1] scale, each with a weight from LossConfig:
  mse         mean (p - x0)^2
  unknown_l1  masked mean over M of |p - x0|
  known_l1    masked mean over 1 - M of |p - x0|
  gradient    masked mean over M of |Sobel_x(p - x0)| + |Sobel_y(p - x0)|
              + 0.01 (|Sobel_x p| + |Sobel_y p|)      (Sobel with zero padding)
  laplacian   sum_l 2^l mean |L_l(p) - L_l(x0)| / 5 over a 5-level Laplacian pyramid
The official code writes the masked means as mean(|.| M) * B * 512^2 / sum(M), which equals a
masked mean only for 512 x 512 crops; ``reference_pixels = 262144`` reproduces that constant.
An empty mask gives 0 here (the official code divides by zero).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Stage",
    "LossConfig",
    "LossOutput",
    "draw_times",
    "matting_losses",
    "mse_loss",
    "unknown_l1_loss",
    "known_l1_loss",
    "gradient_penalty",
    "laplacian_loss",
]

Stage = Literal["normal", "self_align_1", "self_align_2"]
STAGES: tuple[str, ...] = ("normal", "self_align_1", "self_align_2")

# Weight of the gradient-magnitude regulariser inside the gradient penalty (official value).
_GRADIENT_REG = 0.01
_LAPLACIAN_LEVELS = 5


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms (0 switches a term off); every official weight is 1."""

    mse: float = 1.0
    unknown_l1: float = 1.0
    known_l1: float = 1.0
    gradient: float = 1.0
    laplacian: float = 1.0
    # 0: masked means are true means. 262144 (512^2): the official normaliser, which scales
    # the masked terms by 512^2 / (H W), e.g. by 1/4 for 1024 crops.
    reference_pixels: int = 0

    def __post_init__(self) -> None:
        for name in self.term_names():
            w = getattr(self, name)
            if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
                raise ValueError(f"loss weight {name} must be a number >= 0, got {w!r}")
        if self.reference_pixels < 0:
            raise ValueError(f"reference_pixels must be >= 0, got {self.reference_pixels}")
        if not any(getattr(self, n) for n in self.term_names()):
            raise ValueError("all loss weights are 0: nothing to train")

    @staticmethod
    def term_names() -> tuple[str, ...]:
        return ("mse", "unknown_l1", "known_l1", "gradient", "laplacian")


@dataclass
class LossOutput:
    total: Tensor  # 0-d, sum of weight * term
    terms: dict[str, Tensor]  # unweighted 0-d terms, for logging


# -- the passes ------------------------------------------------------------------------------


def draw_times(
    stage: Stage, batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor | None]:
    """(t, t') per sample for ``stage``; t' is None for the normal stage. Both (B,) float32."""
    if stage == "normal":
        return torch.rand(batch, generator=generator, device=device), None
    if stage == "self_align_1":
        return torch.rand(batch, generator=generator, device=device), torch.ones(batch, device=device)
    if stage == "self_align_2":
        # 1. the interval first, then t inside [0, 1 - d], so that t' = t + d stays <= 1
        d = torch.rand(batch, generator=generator, device=device)
        t = torch.rand(batch, generator=generator, device=device) * (1.0 - d)
        return t, t + d
    raise ValueError(f"unknown training stage {stage!r}; choose one of {', '.join(STAGES)}")


# -- the losses ------------------------------------------------------------------------------


def matting_losses(pred: Tensor, x0: Tensor, trimap: Tensor, config: LossConfig) -> LossOutput:
    """Weighted sum of the enabled terms. pred, x0 (B, 1, H, W) in [-1, 1]; trimap in {0, 0.5, 1}."""
    pred, x0 = pred.float(), x0.float()
    unknown = (trimap == 0.5).to(pred.dtype)
    ref = config.reference_pixels
    compute = {
        "mse": lambda: mse_loss(pred, x0),
        "unknown_l1": lambda: unknown_l1_loss(pred, x0, unknown, ref),
        "known_l1": lambda: known_l1_loss(pred, x0, unknown, ref),
        "gradient": lambda: gradient_penalty(pred, x0, unknown, ref),
        "laplacian": lambda: laplacian_loss(pred, x0),
    }
    terms = {name: fn() for name, fn in compute.items() if getattr(config, name) > 0}
    total = sum((getattr(config, name) * value for name, value in terms.items()), torch.zeros((), device=pred.device))
    return LossOutput(total, terms)


def mse_loss(pred: Tensor, x0: Tensor) -> Tensor:
    """Mean over the batch of each sample's mean squared error."""
    return (pred - x0).pow(2).flatten(1).mean(dim=1).mean()


def _masked_mean(values: Tensor, mask: Tensor, reference_pixels: int) -> Tensor:
    """sum(values * mask) / sum(mask), times reference_pixels / (H W) when that is set."""
    count = mask.sum()
    if count == 0:
        return (values * 0).sum()  # zero that keeps the graph, so DDP sees every parameter used
    scale = reference_pixels / (mask.shape[-2] * mask.shape[-1]) if reference_pixels else 1.0
    return (values * mask).sum() / count * scale


def unknown_l1_loss(pred: Tensor, x0: Tensor, unknown: Tensor, reference_pixels: int = 0) -> Tensor:
    return _masked_mean((pred - x0).abs(), unknown, reference_pixels)


def known_l1_loss(pred: Tensor, x0: Tensor, unknown: Tensor, reference_pixels: int = 0) -> Tensor:
    return _masked_mean((pred - x0).abs(), 1.0 - unknown, reference_pixels)


def _sobel(x: Tensor) -> tuple[Tensor, Tensor]:
    """Sobel x and y responses of (B, 1, H, W), zero padding, cross-correlation as F.conv2d."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    kernels = torch.stack([kx, kx.t()])[:, None]  # (2, 1, 3, 3): x then y
    g = F.conv2d(x, kernels, padding=1)  # (B, 2, H, W)
    return g[:, :1], g[:, 1:]


def gradient_penalty(pred: Tensor, x0: Tensor, unknown: Tensor, reference_pixels: int = 0) -> Tensor:
    px, py = _sobel(pred)
    gx, gy = _sobel(x0)
    fit = _masked_mean((px - gx).abs(), unknown, reference_pixels) + _masked_mean((py - gy).abs(), unknown, reference_pixels)
    # a small push towards flat predictions inside the unknown region
    smooth = _masked_mean(px.abs(), unknown, reference_pixels) + _masked_mean(py.abs(), unknown, reference_pixels)
    return fit + _GRADIENT_REG * smooth


def _gauss_kernel(dtype: torch.dtype, device: torch.device) -> Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=dtype, device=device)
    return (k[:, None] * k[None, :] / 256.0)[None, None]  # (1, 1, 5, 5), sums to 1


def _blur(x: Tensor, kernel: Tensor) -> Tensor:
    b, c, h, w = x.shape
    y = F.conv2d(F.pad(x.reshape(b * c, 1, h, w), (2, 2, 2, 2), mode="reflect"), kernel)
    return y.reshape(b, c, h, w)


def _laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    kernel = _gauss_kernel(x.dtype, x.device)
    pyramid = []
    current = x
    for _ in range(levels):
        h, w = current.shape[-2:]
        current = current[..., : h - h % 2, : w - w % 2]  # even sizes so down-up round-trips
        down = _blur(current, kernel)[..., ::2, ::2]
        up = torch.zeros_like(current)
        up[..., ::2, ::2] = down * 4  # x4 keeps the mean after zero insertion
        pyramid.append(current - _blur(up, kernel))
        current = down
    return pyramid


def laplacian_loss(pred: Tensor, x0: Tensor, levels: int = _LAPLACIAN_LEVELS) -> Tensor:
    """sum_l 2^l L1(L_l(pred), L_l(x0)) / levels; needs H, W >= 2^(levels - 1) * 3 for reflect padding."""
    total = torch.zeros((), dtype=pred.dtype, device=pred.device)
    for level, (a, b) in enumerate(zip(_laplacian_pyramid(pred, levels), _laplacian_pyramid(x0, levels), strict=True)):
        total = total + (2**level) * F.l1_loss(a, b)
    return total / levels
