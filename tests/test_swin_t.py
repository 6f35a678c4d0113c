"""Tests for the Swin-T prior-token encoder (diffmatte.encoders.swin_t)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffmatte.encoders.swin_t import SwinTConfig, SwinTEncoder

PARITY_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "parity"
KEYS_FILE = PARITY_DIR / "keys_swin_t.txt"
REF_FILE = PARITY_DIR / "ref" / "swin_t.pt"
PREFIX = "model.backbone."

TINY = SwinTConfig(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2))


def _official_backbone_keys() -> dict[str, tuple[tuple[int, ...], str]]:
    entries = {}
    for line in KEYS_FILE.read_text().splitlines():
        if not line.startswith(PREFIX):
            continue
        key, shape, dtype, _ = line.split("\t")
        dims = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
        entries[key[len(PREFIX) :]] = (dims, dtype)
    return entries


def _input(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.randn(batch, 3, height, width, generator=gen)
    labels = torch.randint(0, 3, (batch, height, width), generator=gen)
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    return torch.cat([rgb, onehot], dim=1)


@pytest.fixture(scope="module")
def default_encoder() -> SwinTEncoder:
    return SwinTEncoder(SwinTConfig())


def test_state_dict_matches_official_keys(default_encoder: SwinTEncoder) -> None:
    if not KEYS_FILE.exists():
        pytest.skip(f"official key list not found at {KEYS_FILE}")
    expected = _official_backbone_keys()
    actual = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in default_encoder.state_dict().items()}
    assert actual == expected
    assert default_encoder.out_channels == 768
    assert default_encoder.in_channels == 6
    assert default_encoder.stride == 32
    assert default_encoder.trimap_encoding == "onehot"


def test_relative_position_index_matches_reference(default_encoder: SwinTEncoder) -> None:
    if not REF_FILE.exists():
        pytest.skip(f"parity reference not found at {REF_FILE}")
    fixed = torch.load(REF_FILE, weights_only=False)["weights"]["fixed"]
    buffers = {k: v for k, v in default_encoder.state_dict().items() if k.endswith("relative_position_index")}
    assert len(buffers) == sum(SwinTConfig().depths)
    for key, value in buffers.items():
        assert torch.equal(value, fixed[PREFIX + key]), key


@pytest.mark.parametrize(("shape", "expected"), [((2, 6, 64, 96), (2, 128, 2, 3)), ((1, 6, 32, 32), (1, 128, 1, 1))])
def test_tiny_forward_shapes(shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    encoder = SwinTEncoder(TINY).eval()
    with torch.no_grad():
        out = encoder(_input(*shape[:1], *shape[2:]))
    assert out.shape == expected
    assert torch.isfinite(out).all()


def test_batch_equals_single_samples() -> None:
    torch.manual_seed(0)
    encoder = SwinTEncoder(TINY).eval()
    x = _input(2, 64, 96, seed=1)
    with torch.no_grad():
        batched = encoder(x)
        singles = torch.cat([encoder(x[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batched, singles, atol=1e-5, rtol=0)


def test_training_step_reaches_prior_bias() -> None:
    torch.manual_seed(0)
    encoder = SwinTEncoder(TINY).train()
    encoder(_input(2, 32, 64)).square().mean().backward()
    table = encoder.layers[0].blocks[1].attn.relative_position_bias_table
    assert table.grad is not None and table.grad[-3:].abs().sum() > 0


def test_rejects_wrong_input_size() -> None:
    encoder = SwinTEncoder(TINY)
    with pytest.raises(ValueError):
        encoder(_input(1, 48, 64))


@pytest.mark.parametrize(
    "overrides",
    [
        {"in_channels": 3},
        {"embed_dim": 0},
        {"depths": (2, 2, 6)},
        {"depths": (2, 0, 6, 2)},
        {"num_heads": (3, 5, 12, 24)},
        {"window_size": 1},
        {"mlp_ratio": -1.0},
        {"drop_path_rate": 1.0},
        {"patch_size": 0},
    ],
)
def test_invalid_config_raises(overrides: dict) -> None:
    with pytest.raises(ValueError):
        SwinTConfig(**overrides)


def test_config_sequences_become_tuples() -> None:
    config = SwinTConfig(depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], embed_dim=16)
    assert config.depths == (1, 1, 1, 1) and config.num_heads == (1, 1, 2, 2)
    hash(config)
