"""Continuous-time noise schedules: gamma(t) for t in [0, 1].

Notation (Kingma et al. 2021; Chen 2023, arXiv 2301.10972; DiffMatte arXiv 2312.05915 §3):
  gamma(t)  -> fraction of signal variance left at time t; gamma(0) = 1, gamma(1) = 0
  s         -> signal scale ("input scale"); DiffMatte uses s = 0.2
  alpha(t)  -> s * sqrt(gamma(t)), the factor on x0 in x_t
  sigma(t)  -> sqrt(1 - gamma(t)), the factor on the noise in x_t
so that x_t = alpha(t) * x0 + sigma(t) * eps. All schedule math runs in float32.
"""
from __future__ import annotations

import math
from typing import Callable, Literal

import torch
from torch import Tensor

__all__ = [
    "ScheduleName",
    "gamma_linear",
    "gamma_cosine",
    "gamma_sigmoid",
    "get_gamma",
    "alpha_sigma",
    "right_pad_dims_to",
    "GAMMA_MIN",
]

ScheduleName = Literal["linear", "cosine", "sigmoid"]

# The official code clamps gamma here so that log-SNR and 1/alpha stay finite at t = 1.
GAMMA_MIN = 1e-9


def gamma_linear(t: Tensor) -> Tensor:
    """gamma(t) = 1 - t: the schedule of every official DiffMatte model."""
    return (1.0 - t).clamp(min=GAMMA_MIN)


def gamma_cosine(t: Tensor, offset: float = 0.008) -> Tensor:
    """Nichol & Dhariwal's cosine schedule in continuous time."""
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    f0 = math.cos(offset / (1 + offset) * math.pi / 2) ** 2
    return (f / f0).clamp(min=GAMMA_MIN, max=1.0)


def gamma_sigmoid(t: Tensor, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> Tensor:
    """Chen (2023) sigmoid schedule, normalised so gamma(0) = 1 and gamma(1) = 0."""
    v_start = torch.sigmoid(torch.tensor(start / tau))
    v_end = torch.sigmoid(torch.tensor(end / tau))
    g = (v_end - torch.sigmoid((t * (end - start) + start) / tau)) / (v_end - v_start)
    return g.clamp(min=GAMMA_MIN, max=1.0)


_SCHEDULES: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": gamma_linear,
    "cosine": gamma_cosine,
    "sigmoid": gamma_sigmoid,
}


def get_gamma(name: str) -> Callable[[Tensor], Tensor]:
    if name not in _SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; choose one of {sorted(_SCHEDULES)}")
    return _SCHEDULES[name]


def alpha_sigma(gamma: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """(alpha, sigma) = (s * sqrt(gamma), sqrt(1 - gamma))."""
    return torch.sqrt(gamma) * scale, torch.sqrt(1.0 - gamma)


def right_pad_dims_to(x: Tensor, t: Tensor) -> Tensor:
    """View a per-sample tensor t (B,) so it broadcasts against x (B, ...)."""
    return t.view(*t.shape, *((1,) * (x.dim() - t.dim())))
