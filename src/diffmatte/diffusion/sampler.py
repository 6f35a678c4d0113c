"""Continuous-time Gaussian diffusion over alpha mattes: forward noising, DDIM and DDPM.

Notation (DiffMatte, Hu et al., arXiv 2312.05915, §3.1-3.3; DDIM, Song et al. 2021, eq. 12):
  x0        -> 2 * alpha - 1, the clean matte in [-1, 1]
  x_t       -> alpha(t) * x0 + sigma(t) * eps (schedules.py), the noisy matte at time t
  x0_hat    -> f_theta(x_t / std(x_t), t, condition), the network's clean-matte estimate
  eps_hat   -> (x_t - alpha(t) * x0_hat) / sigma(t)
Time runs from t = 1 (pure noise) to t = 0 (data) on a uniform grid of N + 1 points.

This module never sees a network: the caller passes ``denoise(x_in, t) -> x0_hat``, which
receives x_t already divided by its per-sample standard deviation (the signal scale s < 1
would otherwise leave the network input far from unit variance).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from torch import Tensor

from .schedules import ScheduleName, alpha_sigma, get_gamma, right_pad_dims_to

__all__ = [
    "DiffusionConfig",
    "GaussianDiffusion",
    "SamplerStepOutput",
    "SampleOutput",
    "normalize_input",
]

SamplerName = Literal["ddim", "ddpm"]
Denoiser = Callable[[Tensor, Tensor], Tensor]
StepCallback = Callable[[int, Tensor], None]  # (step index, x0_hat in [-1, 1])


@dataclass(frozen=True)
class DiffusionConfig:
    schedule: ScheduleName = "linear"
    scale: float = 0.2  # signal scale s of the official models

    def __post_init__(self) -> None:
        get_gamma(self.schedule)  # raises on an unknown name
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"diffusion scale must be in (0, 1], got {self.scale}")


@dataclass
class SamplerStepOutput:
    prev_sample: Tensor  # x at the next (less noisy) time, (B, 1, H, W)
    pred_x0: Tensor  # clamped x0_hat, (B, 1, H, W) in [-1, 1]


@dataclass
class SampleOutput:
    x0: Tensor  # final clean-matte estimate, (B, 1, H, W) in [-1, 1]
    alpha: Tensor  # (x0 + 1) / 2 computed as the official code does, (B, 1, H, W) in [0, 1]
    times: Tensor  # (steps + 1,) the time grid
    pred_x0_steps: list[Tensor] = field(default_factory=list)  # x0_hat at each step
    x_in_steps: list[Tensor] = field(default_factory=list)  # normalised network input at each step


def normalize_input(x_t: Tensor) -> Tensor:
    """x_t divided by its per-sample population std over (C, H, W), std clamped >= 1e-5."""
    std = x_t.flatten(1).std(dim=1, unbiased=False).clamp(min=1e-5)
    return x_t / right_pad_dims_to(x_t, std)


class GaussianDiffusion:
    """Noise schedule plus samplers. Stateless apart from its config."""

    def __init__(self, config: DiffusionConfig | None = None) -> None:
        self.config = config or DiffusionConfig()
        self._gamma = get_gamma(self.config.schedule)

    # -- schedule -------------------------------------------------------------------------
    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return alpha_sigma(self._gamma(t.float()), self.config.scale)

    def timesteps(self, steps: int, start: float = 1.0) -> Tensor:
        """The uniform grid ``start`` -> 0 with ``steps`` intervals, float32 (steps + 1,)."""
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if not 0.0 < start <= 1.0:
            raise ValueError(f"start must be a time in (0, 1], got {start!r}")
        return torch.linspace(start, 0.0, steps + 1, dtype=torch.float32)

    # -- training side --------------------------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = alpha(t) x0 + sigma(t) eps for per-sample times t (B,)."""
        a, s = self.alpha_sigma(t)
        return right_pad_dims_to(x0, a) * x0 + right_pad_dims_to(x0, s) * noise

    # -- sampling steps -------------------------------------------------------------------
    def ddim_step(self, pred_x0: Tensor, t: Tensor, t_next: Tensor, x_t: Tensor) -> SamplerStepOutput:
        """Deterministic DDIM (eta = 0) from t to t_next; t, t_next are 0-d or (B,) tensors."""
        # 1. clamp the estimate to the data range
        x0_hat = pred_x0.clamp(-1.0, 1.0)
        a, s = self.alpha_sigma(t)
        a_next, s_next = self.alpha_sigma(t_next)
        # 2. the noise that x_t implies given x0_hat
        eps_hat = (x_t - _bc(x_t, a) * x0_hat) / _bc(x_t, s.clamp(min=1e-10))
        # 3. re-noise x0_hat to the next time along the same eps (eq. 12 with sigma_t = 0)
        prev = _bc(x_t, a_next) * x0_hat + _bc(x_t, s_next) * eps_hat
        return SamplerStepOutput(prev, x0_hat)

    def ddpm_step(
        self,
        pred_x0: Tensor,
        t: Tensor,
        t_next: Tensor,
        x_t: Tensor,
        generator: torch.Generator | None = None,
    ) -> SamplerStepOutput:
        """Ancestral step of the continuous-time posterior q(x_next | x_t, x0_hat)."""
        x0_hat = pred_x0.clamp(-1.0, 1.0)
        g, g_next = self._gamma(t.float()), self._gamma(t_next.float())
        log_snr = torch.log((g / (1 - g)).clamp(min=1e-5))
        log_snr_next = torch.log((g_next / (1 - g_next)).clamp(min=1e-5))
        c = -torch.expm1(log_snr - log_snr_next)
        a, _ = alpha_sigma(g, self.config.scale)
        a_next, s_next = alpha_sigma(g_next, self.config.scale)
        mean = _bc(x_t, a_next) * (x_t * _bc(x_t, 1 - c) / _bc(x_t, a) + _bc(x_t, c) * x0_hat)
        if bool((t_next <= 0).all()):
            return SamplerStepOutput(mean, x0_hat)
        noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
        return SamplerStepOutput(mean + _bc(x_t, (s_next**2 * c).sqrt()) * noise, x0_hat)

    # -- the loop ---------------------------------------------------------------------------
    def sample(
        self,
        denoise: Denoiser,
        noise: Tensor,
        steps: int,
        sampler: SamplerName = "ddim",
        generator: torch.Generator | None = None,
        keep_trajectory: bool = False,
        on_step: StepCallback | None = None,
        start: float = 1.0,
    ) -> SampleOutput:
        """Run ``steps`` sampler steps from x_T = ``noise`` (B, 1, H, W).

        ``start`` < 1 begins part-way (a warm start): ``noise`` is then x at that time, e.g.
        ``q_sample(x0_guess, start, eps)``, and the ``steps`` intervals span ``start`` -> 0.
        UTI training saw every time on the grid, so a late start is in the model's range.

        ``denoise(x_in, t)`` gets the std-normalised x_t and the times (B,) and returns
        x0_hat (B, 1, H, W). The trajectory (x0_hat and network input of every step) is
        kept only on request, so a long run holds two maps at a time. ``on_step(k, x0_hat)``
        is called after step k (0-based) with the clamped estimate; an exception it raises
        stops the run (how a caller cancels or enforces a time limit).
        """
        if sampler not in ("ddim", "ddpm"):
            raise ValueError(f"unknown sampler {sampler!r}; choose 'ddim' or 'ddpm'")
        times = self.timesteps(steps, start).to(noise.device)
        b = noise.shape[0]
        x = noise
        out = SampleOutput(x0=noise, alpha=noise, times=times)
        x0_hat = noise
        for k in range(steps):
            t, t_next = times[k], times[k + 1]
            x_in = normalize_input(x)
            x0_hat = denoise(x_in, t.expand(b))
            if sampler == "ddim":
                step = self.ddim_step(x0_hat, t, t_next, x)
            else:
                step = self.ddpm_step(x0_hat, t, t_next, x, generator=generator)
            x, x0_hat = step.prev_sample, step.pred_x0
            if keep_trajectory:
                out.pred_x0_steps.append(x0_hat)
                out.x_in_steps.append(x_in)
            if on_step is not None:
                on_step(k, x0_hat)
        out.x0 = x0_hat
        # At t = 0, sigma = 0 and alpha = s, so x = s * x0_hat; dividing by s (rather than
        # taking x0_hat) is what the official code does, and keeps its rounding.
        out.alpha = (x / self.config.scale + 1.0).mul(0.5).clamp(0.0, 1.0)
        return out


def _bc(x: Tensor, v: Tensor) -> Tensor:
    """Broadcast a 0-d or per-sample (B,) schedule value against x (B, ...)."""
    return v if v.dim() == 0 else right_pad_dims_to(x, v)
