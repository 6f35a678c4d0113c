"""Schedules and samplers against hand-computed values and a dummy denoiser."""
from __future__ import annotations

import math

import pytest
import torch

from diffmatte.diffusion.sampler import DiffusionConfig, GaussianDiffusion, normalize_input
from diffmatte.diffusion.schedules import gamma_cosine, gamma_linear, gamma_sigmoid, get_gamma


def test_linear_schedule_values() -> None:
    t = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(gamma_linear(t), torch.tensor([1.0, 0.75, 1e-9]))


@pytest.mark.parametrize("fn", [gamma_linear, gamma_cosine, gamma_sigmoid])
def test_schedules_run_from_signal_to_noise(fn) -> None:
    t = torch.linspace(0, 1, 101)
    g = fn(t)
    assert abs(float(g[0]) - 1.0) < 1e-6 and float(g[-1]) < 1e-6
    assert bool((g[1:] <= g[:-1] + 1e-7).all()), "gamma must not increase with t"


def test_unknown_schedule_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown noise schedule 'quadratic'"):
        get_gamma("quadratic")
    with pytest.raises(ValueError, match="scale"):
        DiffusionConfig(scale=0.0)


def test_timesteps_are_the_official_grid() -> None:
    d = GaussianDiffusion()
    assert torch.equal(d.timesteps(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    with pytest.raises(ValueError, match="positive integer"):
        d.timesteps(0)


def test_q_sample_matches_formula() -> None:
    d = GaussianDiffusion(DiffusionConfig(scale=0.2))
    x0, eps = torch.full((2, 1, 3, 3), 0.5), torch.ones(2, 1, 3, 3)
    t = torch.tensor([0.0, 0.64])
    x = d.q_sample(x0, t, eps)
    torch.testing.assert_close(x[0], 0.2 * x0[0])
    torch.testing.assert_close(x[1], 0.2 * math.sqrt(0.36) * x0[1] + math.sqrt(0.64) * eps[1])


def test_normalize_input_is_per_sample_population_std() -> None:
    x = torch.randn(3, 1, 8, 8) * torch.tensor([0.1, 1.0, 5.0]).view(3, 1, 1, 1)
    y = normalize_input(x)
    torch.testing.assert_close(y.flatten(1).std(dim=1, unbiased=False), torch.ones(3))
    assert torch.equal(normalize_input(torch.zeros(1, 1, 2, 2)), torch.zeros(1, 1, 2, 2))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_oracle_denoiser_recovers_x0(sampler: str, steps: int) -> None:
    """If the network always returns the true x0, every sampler must end at it."""
    d = GaussianDiffusion()
    x0 = torch.rand(2, 1, 5, 7) * 2 - 1
    out = d.sample(lambda x_in, t: x0, torch.randn(2, 1, 5, 7), steps, sampler=sampler,
                   generator=torch.Generator().manual_seed(0), keep_trajectory=True)
    torch.testing.assert_close(out.alpha, (x0 + 1) / 2, atol=1e-5, rtol=0)
    assert len(out.pred_x0_steps) == steps and len(out.x_in_steps) == steps


def test_ddim_passes_each_step_time_and_normalised_input() -> None:
    d = GaussianDiffusion()
    seen = []

    def denoise(x_in, t):
        seen.append((t.clone(), float(x_in.flatten(1).std(dim=1, unbiased=False)[0])))
        return torch.zeros_like(x_in)

    d.sample(denoise, torch.randn(2, 1, 4, 4), 4)
    assert [float(t[0]) for t, _ in seen] == [1.0, 0.75, 0.5, 0.25]
    assert all(t.shape == (2,) for t, _ in seen)
    assert all(abs(s - 1.0) < 1e-5 for _, s in seen[:1])


def test_ddim_is_deterministic_and_ddpm_follows_the_generator() -> None:
    d = GaussianDiffusion()
    noise = torch.randn(1, 1, 6, 6)

    def denoise(x_in, t):
        return torch.tanh(x_in)

    a = d.sample(denoise, noise, 5).alpha
    assert torch.equal(a, d.sample(denoise, noise, 5).alpha)
    p1 = d.sample(denoise, noise, 5, sampler="ddpm", generator=torch.Generator().manual_seed(1)).alpha
    p2 = d.sample(denoise, noise, 5, sampler="ddpm", generator=torch.Generator().manual_seed(1)).alpha
    p3 = d.sample(denoise, noise, 5, sampler="ddpm", generator=torch.Generator().manual_seed(2)).alpha
    assert torch.equal(p1, p2) and not torch.equal(p1, p3)


def test_unknown_sampler_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown sampler"):
        GaussianDiffusion().sample(lambda x, t: x, torch.zeros(1, 1, 2, 2), 1, sampler="euler")
