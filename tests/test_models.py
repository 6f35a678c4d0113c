"""Decoder, ViT attention chunking, padding rule and config validation."""
from __future__ import annotations

import pytest
import torch

from diffmatte import DiffMatteConfig, DiffMatteNet, get_preset
from diffmatte.encoders import create_encoder, list_encoders
from diffmatte.encoders.vit import ViTConfig
from diffmatte.models.dunet import DUNet, DUNetConfig, timestep_embedding
from diffmatte.transforms import padded_size, trimap_onehot


@pytest.mark.parametrize(
    "hw, expected",
    [((64, 96), (64, 96)), ((64, 100), (96, 128)), ((50, 70), (64, 96)), ((32, 32), (32, 32)), ((33, 64), (64, 96))],
)
def test_official_padding_rule(hw, expected) -> None:
    assert padded_size(*hw) == expected


def test_trimap_onehot_order_is_bg_unknown_fg() -> None:
    t = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    assert torch.equal(trimap_onehot(t)[0, :, 0], torch.eye(3))


def test_timestep_embedding_cosines_first() -> None:
    e = timestep_embedding(torch.tensor([0.0, 1.0]), 32)
    assert torch.equal(e[0, :16], torch.ones(16)) and torch.equal(e[0, 16:], torch.zeros(16))
    assert abs(float(e[1, 0]) - float(torch.cos(torch.tensor(1.0)))) < 1e-6


@pytest.mark.parametrize(
    "down, up, stride",
    [((7, 8, 8, 16), (32, 16, 16, 8, 8), 16), ((7, 8, 8, 16, 16), (24, 16, 16, 16, 8, 8), 32)],
)
def test_dunet_shapes(down, up, stride) -> None:
    net = DUNet(DUNetConfig(downsample_in=down, upsample_in=up, head_channels=4)).eval()
    assert net.config.feature_stride == stride
    x = torch.randn(2, 7, 64, 96)
    feats = torch.randn(2, up[0], 64 // stride, 96 // stride)
    assert net(x, torch.rand(2), feats).shape == (2, 1, 64, 96)


def test_dunet_config_validation() -> None:
    with pytest.raises(ValueError, match="one entry more"):
        DUNetConfig(downsample_in=(7, 8), upsample_in=(8,))


def _vit_pair(split_config: dict, **attention_attrs: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same tiny ViT twice, in eval mode: global attention in one piece, and split as
    ``split_config`` (ViTConfig fields) and ``attention_attrs`` (ViTAttention attributes) say."""
    torch.manual_seed(0)
    base = dict(embed_dim=32, num_heads=2, depth=2, global_blocks=(1,), window_size=4, img_size=64)
    whole = create_encoder("vit", ViTConfig(**base, attn_max_bias_elements=10**9)).eval()
    for p in whole.parameters():  # non-zero rel-pos tables so the bias path is exercised
        if p.dim() == 2 and p.shape[1] == 16:
            torch.nn.init.normal_(p, std=0.5)
    split = create_encoder("vit", ViTConfig(**base, **split_config))
    split.load_state_dict(whole.state_dict())
    split.eval()
    for m in split.modules():
        if hasattr(m, "min_chunk_queries"):
            for name, value in attention_attrs.items():
                setattr(m, name, value)
    return whole, split


def test_chunked_global_attention_equals_unchunked() -> None:
    # One query row per chunk.
    whole, chunked = _vit_pair(dict(attn_max_bias_elements=1), min_chunk_queries=1)
    x = torch.randn(2, 4, 96, 128)
    with torch.inference_mode():
        torch.testing.assert_close(chunked(x), whole(x), atol=1e-5, rtol=1e-5)


def _vit_pair_with_key_blocks() -> tuple[torch.nn.Module, torch.nn.Module]:
    """Whole attention, and global attention one query row and one key row at a time."""
    return _vit_pair(
        dict(attn_max_bias_elements=1, attn_max_key_block_bytes=1), key_blocks_above_bytes=0, min_chunk_queries=1
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_global_attention_in_key_blocks_equals_whole(precision, monkeypatch) -> None:
    from diffmatte.encoders import vit

    calls = []
    original = vit._attention_in_key_blocks
    monkeypatch.setattr(vit, "_attention_in_key_blocks", lambda *a: calls.append(a[-1]) or original(*a))
    whole, blocked = _vit_pair_with_key_blocks()
    x = torch.randn(2, 4, 96, 128)
    bf16 = precision == "bf16"
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        expected, got = whole(x).float(), blocked(x).float()
    assert calls and set(calls) == {1}  # every query row chunk, one key row per block
    tol = 3e-2 if bf16 else 1e-5
    torch.testing.assert_close(got, expected, atol=tol, rtol=tol)


def test_global_attention_key_blocks_stay_out_of_autograd(monkeypatch) -> None:
    from diffmatte.encoders import vit

    monkeypatch.setattr(vit, "_attention_in_key_blocks", lambda *a: pytest.fail("key blocks under autograd"))
    whole, blocked = _vit_pair_with_key_blocks()
    x = torch.randn(1, 4, 64, 64)
    out = blocked(x)
    out.sum().backward()
    torch.testing.assert_close(out, whole(x), atol=1e-5, rtol=1e-5)


def test_encoder_registry_rejects_unknown_names() -> None:
    assert {"vit", "resnet34", "swin_t"} <= set(list_encoders())
    with pytest.raises(ValueError, match="known encoders"):
        create_encoder("resnet999")


def test_config_round_trips_through_dict() -> None:
    for name in ["vits", "res34", "swin_t", "tiny_vit", "tiny_res34"]:
        cfg = get_preset(name)
        assert DiffMatteConfig.from_dict(cfg.to_dict()) == cfg


def test_mismatched_encoder_and_decoder_are_rejected() -> None:
    cfg = get_preset("tiny_res34")
    bad = DiffMatteConfig(encoder=cfg.encoder, encoder_config=cfg.encoder_config,
                          decoder=DUNetConfig(downsample_in=(7, 8, 8, 16, 16), upsample_in=(48, 16, 16, 16, 8, 8)))
    with pytest.raises(ValueError, match="channels"):
        DiffMatteNet(bad)


def test_vit_encoder_trains() -> None:
    net = DiffMatteNet(get_preset("tiny_vit")).train()
    enc = net.encode(torch.rand(1, 3, 64, 64), torch.full((1, 1, 64, 64), 0.5))
    enc.features.square().mean().backward()
    assert all(p.grad is not None for n, p in net.backbone.named_parameters() if "rel_pos" in n)


def test_whole_network_runs_on_meta_tensors_for_flop_counting() -> None:
    # benchmarks/_measure.py counts FLOPs this way.
    net = DiffMatteNet(get_preset("tiny_vit")).eval().to("meta")
    with torch.inference_mode():
        enc = net.encode(torch.zeros(1, 3, 64, 64, device="meta"), torch.zeros(1, 1, 64, 64, device="meta"))
        x0 = net.denoise(enc, torch.zeros(1, 1, 64, 64, device="meta"), torch.ones(1, device="meta"))
    assert x0.shape == (1, 1, 64, 64)
