"""Tests for the DiffMatte Res34 encoder (diffmatte.encoders.resnet34)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from diffmatte.encoders.resnet34 import ResNet34Config, ResNet34Encoder, SpectralNormConv2d

PARITY_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "parity"
KEYS_FILE = PARITY_DIR / "keys_res34.txt"
PREFIX = "model.backbone."

# Small enough to run in milliseconds; stem_widths[-1] != stage_widths[0] also exercises
# the stride-1 projection shortcut that the default widths never build.
TINY = ResNet34Config(layers=(1, 1, 1, 1), stem_widths=(4, 4, 6), stage_widths=(8, 8, 16, 16))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _official_backbone_entries() -> dict[str, tuple[tuple[int, ...], str]]:
    entries: dict[str, tuple[tuple[int, ...], str]] = {}
    for line in KEYS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape, dtype, _numel = line.split("\t")
        if not key.startswith(PREFIX):
            assert key.startswith("model.decoder."), key
            continue
        dims = tuple(int(d) for d in shape.strip("[]").split(",") if d.strip())
        entries[key[len(PREFIX):]] = (dims, dtype)
    return entries


def _spectral_convs(model: torch.nn.Module) -> list[SpectralNormConv2d]:
    return [m for m in model.modules() if isinstance(m, SpectralNormConv2d)]


@pytest.mark.skipif(not KEYS_FILE.is_file(), reason=f"official key listing not found at {KEYS_FILE}")
def test_default_state_dict_matches_official_keys() -> None:
    expected = _official_backbone_entries()
    model = ResNet34Encoder(ResNet34Config())
    actual = {
        key: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for key, t in model.state_dict().items()
    }
    assert sorted(set(expected) - set(actual)) == []  # missing
    assert sorted(set(actual) - set(expected)) == []  # unexpected
    assert {k: v for k, v in actual.items() if v != expected[k]} == {}
    assert model.out_channels == 512 and model.stride == 32 and model.trimap_encoding == "onehot"


def test_default_init() -> None:
    model = ResNet34Encoder(ResNet34Config())
    assert model.in_channels == 6 and model.out_channels == 512
    assert torch.count_nonzero(model.conv1.module.weight_bar[:, 3:]) == 0
    assert torch.count_nonzero(model.conv1.module.weight_bar[:, :3]) > 0
    blocks = [b for stage in (model.layer1, model.layer2, model.layer3, model.layer_bottleneck) for b in stage]
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer_bottleneck)] == [3, 4, 4, 2]
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in blocks)
    for conv in _spectral_convs(model):
        params = conv.module
        assert not params.weight_u.requires_grad and not params.weight_v.requires_grad
        assert params.weight_bar.requires_grad
        assert torch.allclose(params.weight_u.norm(), torch.tensor(1.0))
        assert torch.allclose(params.weight_v.norm(), torch.tensor(1.0))


def test_tiny_forward_shape() -> None:
    model = ResNet34Encoder(TINY).eval()
    assert "layer1.0.downsample.0.module.weight_bar" in model.state_dict()
    with torch.no_grad():
        out = model(torch.randn(2, 6, 64, 96))
    assert out.shape == (2, 16, 2, 3)
    assert model.out_channels == 16


def test_forward_rejects_bad_input() -> None:
    model = ResNet34Encoder(TINY).eval()
    with pytest.raises(ValueError):
        model(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError):
        model(torch.randn(1, 6, 64, 100))


def test_train_mode_updates_u_v_and_backpropagates() -> None:
    model = ResNet34Encoder(TINY).train()
    convs = _spectral_convs(model)
    before = [(c.module.weight_u.clone(), c.module.weight_v.clone()) for c in convs]
    ids = [(id(c.module.weight_u), id(c.module.weight_v)) for c in convs]

    model(torch.randn(2, 6, 64, 96)).square().mean().backward()

    for conv, (u0, v0), (u_id, v_id) in zip(convs, before, ids, strict=True):
        params = conv.module
        # updated in place: same Parameter objects, new values, still unit vectors
        assert (id(params.weight_u), id(params.weight_v)) == (u_id, v_id)
        assert not torch.equal(params.weight_u, u0) and not torch.equal(params.weight_v, v0)
        assert torch.allclose(params.weight_u.norm(), torch.tensor(1.0), atol=1e-5)
        assert params.weight_u.grad is None and params.weight_v.grad is None
        assert params.weight_bar.grad is not None and torch.isfinite(params.weight_bar.grad).all()
    assert model.conv1.module.weight_bar.grad.abs().sum() > 0


def test_sigma_carries_gradient_and_power_iteration_converges() -> None:
    conv = SpectralNormConv2d(3, 5, 3, stride=2).train()
    x = torch.randn(2, 3, 8, 8)
    conv(x).sum().backward()
    grad = conv.module.weight_bar.grad.clone()

    # Recompute with the u, v the forward pass left behind: the gradient must include
    # the d(sigma)/d(weight_bar) term, i.e. differ from the one with sigma detached.
    u, v = conv.module.weight_u.detach(), conv.module.weight_v.detach()

    def grad_of(detach_sigma: bool) -> torch.Tensor:
        w = conv.module.weight_bar.detach().clone().requires_grad_(True)
        sigma = torch.dot(u, w.reshape(5, -1).mv(v))
        sigma = sigma.detach() if detach_sigma else sigma
        F.conv2d(x, w / sigma, None, 2, 1).sum().backward()
        return w.grad

    assert torch.allclose(grad, grad_of(False), atol=1e-5)
    assert not torch.allclose(grad, grad_of(True), atol=1e-5)

    with torch.no_grad():
        for _ in range(200):
            weight = conv.normalized_weight()
    # after convergence W / sigma has spectral norm 1
    assert torch.linalg.matrix_norm(weight.reshape(5, -1), ord=2).item() == pytest.approx(1.0, abs=1e-4)


def test_eval_mode_is_deterministic_and_leaves_u_v_alone() -> None:
    model = ResNet34Encoder(TINY)
    model.train()
    with torch.no_grad():  # a few steps so sigma estimates are sensible
        for _ in range(3):
            model(torch.randn(2, 6, 64, 64))
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 6, 64, 96)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())

    # eval uses the stored u, v without iterating: W / (u . W v)
    conv = model.conv2
    w = conv.module.weight_bar
    sigma = torch.dot(conv.module.weight_u, w.reshape(w.shape[0], -1).mv(conv.module.weight_v))
    assert torch.equal(conv.normalized_weight(), w / sigma)


@pytest.mark.parametrize(
    "overrides",
    [
        {"in_channels": 0},
        {"in_channels": 6.0},
        {"layers": (3, 4, 4)},
        {"layers": (3, 4, 0, 2)},
        {"layers": [3, 4, 4, 2]},
        {"stem_widths": (32, 64)},
        {"stem_widths": (32, -1, 64)},
        {"stage_widths": (64, 128, 256, 512, 1024)},
        {"stage_widths": (64, 128, 256, 0)},
        {"norm_eps": 0.0},
    ],
)
def test_invalid_config_raises(overrides: dict) -> None:
    with pytest.raises(ValueError):
        ResNet34Config(**overrides)
