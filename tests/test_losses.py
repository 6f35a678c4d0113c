"""Tests for the training objective and matting losses (diffmatte.diffusion.losses)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from diffmatte.diffusion.losses import (
    LossConfig,
    draw_times,
    gradient_penalty,
    known_l1_loss,
    laplacian_loss,
    matting_losses,
    mse_loss,
    unknown_l1_loss,
)
from diffmatte.diffusion.sampler import GaussianDiffusion, normalize_input
from diffmatte.models.configuration import get_preset
from diffmatte.models.modeling_diffmatte import DiffMatteNet
from diffmatte.models.objective import DiffusionObjective

OFFICIAL_PIXELS = 512 * 512


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _batch(b: int = 2, h: int = 64, w: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pred = torch.rand(b, 1, h, w) * 2 - 1
    x0 = torch.rand(b, 1, h, w) * 2 - 1
    trimap = torch.full((b, 1, h, w), 0.5)
    trimap[..., : h // 3, :] = 0.0
    trimap[..., -h // 3 :, :] = 1.0
    return pred, x0, trimap


def test_mse_is_mean_of_per_sample_means() -> None:
    pred, x0, _ = _batch()
    assert torch.allclose(mse_loss(pred, x0), ((pred - x0) ** 2).mean())


def test_masked_l1_losses_match_the_official_formula() -> None:
    # Official: F.l1_loss(p * M, x0 * M) * B * 512^2 / sum(M); at any crop size this is
    # the masked mean times 512^2 / (H W), which reference_pixels reproduces.
    pred, x0, trimap = _batch()
    m = (trimap == 0.5).float()
    b = pred.shape[0]
    official_unknown = F.l1_loss(pred * m, x0 * m) * b * OFFICIAL_PIXELS / m.sum()
    official_known = F.l1_loss(pred * (1 - m), x0 * (1 - m)) * b * OFFICIAL_PIXELS / (1 - m).sum()
    assert torch.allclose(unknown_l1_loss(pred, x0, m, OFFICIAL_PIXELS), official_unknown, rtol=1e-5)
    assert torch.allclose(known_l1_loss(pred, x0, m, OFFICIAL_PIXELS), official_known, rtol=1e-5)
    # and without the constant, a true masked mean
    assert torch.allclose(unknown_l1_loss(pred, x0, m), ((pred - x0).abs() * m).sum() / m.sum())


def test_empty_masks_give_zero_not_nan() -> None:
    pred, x0, _ = _batch()
    pred.requires_grad_(True)
    none = torch.zeros_like(pred)
    for loss in (unknown_l1_loss(pred, x0, none), gradient_penalty(pred, x0, none), known_l1_loss(pred, x0, 1 - none)):
        assert loss.item() == 0.0
        loss.backward()  # still part of the graph


def _sobel_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    gx = ndimage.correlate(x, kx, mode="constant", cval=0.0)
    gy = ndimage.correlate(x, kx.T, mode="constant", cval=0.0)
    return gx, gy


def test_gradient_penalty_matches_a_scipy_reference() -> None:
    pred, x0, trimap = _batch(b=1, h=32, w=48)
    m = (trimap == 0.5).float()
    px, py = _sobel_reference(pred[0, 0].double().numpy())
    gx, gy = _sobel_reference(x0[0, 0].double().numpy())
    mm = m[0, 0].numpy().astype(bool)
    expected = (
        np.abs(px - gx)[mm].mean() + np.abs(py - gy)[mm].mean() + 0.01 * (np.abs(px)[mm].mean() + np.abs(py)[mm].mean())
    )
    assert gradient_penalty(pred, x0, m).item() == pytest.approx(expected, rel=1e-5)


def _laplacian_reference(a: np.ndarray, b: np.ndarray, levels: int = 5) -> float:
    k1 = np.array([1, 4, 6, 4, 1], dtype=np.float64)
    kernel = np.outer(k1, k1) / 256.0

    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.convolve(x, kernel, mode="mirror")  # scipy "mirror" == torch "reflect"

    def pyramid(x: np.ndarray) -> list[np.ndarray]:
        out = []
        for _ in range(levels):
            x = x[: x.shape[0] // 2 * 2, : x.shape[1] // 2 * 2]
            down = blur(x)[::2, ::2]
            up = np.zeros_like(x)
            up[::2, ::2] = down * 4
            out.append(x - blur(up))
            x = down
        return out

    return sum(2**l * np.abs(pa - pb).mean() for l, (pa, pb) in enumerate(zip(pyramid(a), pyramid(b), strict=True))) / levels


def test_laplacian_loss_matches_a_scipy_reference() -> None:
    pred, x0, _ = _batch(b=1, h=64, w=80)
    expected = _laplacian_reference(pred[0, 0].double().numpy(), x0[0, 0].double().numpy())
    assert laplacian_loss(pred, x0).item() == pytest.approx(expected, rel=1e-5)


def test_laplacian_loss_ignores_a_constant_offset() -> None:
    pred, _, _ = _batch()
    assert laplacian_loss(pred, pred + 0.3).item() == pytest.approx(0.0, abs=1e-6)
    assert laplacian_loss(pred, torch.flip(pred, dims=[-1])).item() > 0.01


def test_matting_losses_weights_and_switches() -> None:
    pred, x0, trimap = _batch()
    out = matting_losses(pred, x0, trimap, LossConfig())
    assert set(out.terms) == {"mse", "unknown_l1", "known_l1", "gradient", "laplacian"}
    assert torch.allclose(out.total, sum(out.terms.values()))
    halved = matting_losses(pred, x0, trimap, LossConfig(mse=0.5, laplacian=0.0))
    assert "laplacian" not in halved.terms
    expected = out.total - out.terms["laplacian"] - 0.5 * out.terms["mse"]
    assert torch.allclose(halved.total, expected)
    # a perfect prediction leaves only the gradient penalty's 0.01 |grad p| regulariser
    perfect = matting_losses(x0, x0, trimap, LossConfig())
    assert all(v.item() == pytest.approx(0.0, abs=1e-6) for k, v in perfect.terms.items() if k != "gradient")
    assert perfect.terms["gradient"].item() > 0


@pytest.mark.parametrize("bad", [{"mse": -1.0}, {"reference_pixels": -5}, dict.fromkeys(LossConfig.term_names(), 0.0)])
def test_loss_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        LossConfig(**bad)


def test_draw_times_ranges_per_stage() -> None:
    g = torch.Generator().manual_seed(1)
    t, first = draw_times("normal", 1000, g)
    assert first is None and 0 <= t.min() and t.max() < 1
    t, first = draw_times("self_align_1", 1000, g)
    assert torch.equal(first, torch.ones(1000))
    t, first = draw_times("self_align_2", 1000, g)
    assert (first >= t).all() and (first <= 1).all() and (t >= 0).all()
    # the interval d = t' - t is uniform on [0, 1], so its mean is about 1/2
    assert (first - t).mean().item() == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="unknown training stage"):
        draw_times("stage3", 2, g)  # type: ignore[arg-type]


class _CountingNet(DiffMatteNet):
    def __init__(self) -> None:
        super().__init__(get_preset("tiny_vit"))
        self.encodes, self.denoise_inputs = 0, []

    def encode(self, image, trimap):  # type: ignore[no-untyped-def]
        self.encodes += 1
        return super().encode(image, trimap)

    def denoise(self, encoded, x_in, t):  # type: ignore[no-untyped-def]
        self.denoise_inputs.append((x_in.detach().clone(), t.clone(), torch.is_grad_enabled()))
        return super().denoise(encoded, x_in, t)


def _objective_inputs() -> tuple[torch.Tensor, ...]:
    image = torch.rand(2, 3, 64, 64)
    _, x0, trimap = _batch(b=2)
    noise = torch.randn(2, 1, 64, 64)
    return image, trimap, x0, noise


def test_normal_stage_is_one_pass_on_the_noised_ground_truth() -> None:
    net = _CountingNet().eval()
    diffusion = GaussianDiffusion(net.config.diffusion)
    image, trimap, x0, noise = _objective_inputs()
    t = torch.tensor([0.2, 0.9])
    pred = DiffusionObjective(net, diffusion)(image, trimap, x0, noise, t)
    assert net.encodes == 1 and len(net.denoise_inputs) == 1
    expected = net.denoise(net.encode(image, trimap), normalize_input(diffusion.q_sample(x0, t, noise)), t)
    assert torch.allclose(pred, expected)


@pytest.mark.parametrize("stage", ["self_align_1", "self_align_2"])
def test_self_align_reuses_the_encoder_and_renoises_the_detached_first_estimate(stage: str) -> None:
    net = _CountingNet().eval()
    diffusion = GaussianDiffusion(net.config.diffusion)
    image, trimap, x0, noise = _objective_inputs()
    t, first = torch.tensor([0.1, 0.4]), torch.tensor([0.5, 1.0])
    pred = DiffusionObjective(net, diffusion)(image, trimap, x0, noise, t, first, stage)  # type: ignore[arg-type]
    assert net.encodes == 1 and len(net.denoise_inputs) == 2
    (x_first, t_first, grad_first), (x_second, t_second, grad_second) = net.denoise_inputs
    assert torch.equal(t_first, first) and torch.equal(t_second, t)
    assert not grad_first and grad_second  # the first pass keeps no graph
    # first pass: pure noise (stage 1) or the ground truth noised to t' (stage 2)
    first_input = noise if stage == "self_align_1" else diffusion.q_sample(x0, first, noise)
    assert torch.allclose(x_first, normalize_input(first_input))
    # second pass: the first estimate re-noised to t with the same eps
    with torch.no_grad():
        encoded = net.encode(image, trimap)
        p_first = net.denoise(encoded, normalize_input(first_input), first)
        a, s = diffusion.alpha_sigma(t)
        x_t = a.view(-1, 1, 1, 1) * p_first + s.view(-1, 1, 1, 1) * noise
    assert torch.allclose(x_second, normalize_input(x_t), atol=1e-6)
    assert pred.requires_grad


def test_gradients_reach_encoder_and_decoder_through_the_second_pass() -> None:
    net = DiffMatteNet(get_preset("tiny_res34")).train()
    diffusion = GaussianDiffusion(net.config.diffusion)
    image, trimap, x0, noise = _objective_inputs()
    t, first = draw_times("self_align_2", 2, torch.Generator().manual_seed(0))
    pred = DiffusionObjective(net, diffusion)(image, trimap, x0, noise, t, first, "self_align_2")
    matting_losses(pred, x0, trimap, LossConfig()).total.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
