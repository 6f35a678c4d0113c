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


@pytest.mark.parametrize("preset", ["tiny_vit", "tiny_res34"])
@pytest.mark.parametrize("budget", [1, 2000, 10**9])
def test_banded_decoder_equals_unbanded(preset: str, budget: int) -> None:
    torch.manual_seed(0)
    net = DiffMatteNet(get_preset(preset)).eval()
    for m in net.decoder.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    image, trimap = torch.rand(2, 3, 150, 70), torch.full((2, 1, 150, 70), 0.5)
    with torch.inference_mode():
        enc = net.encode(image, trimap)
        hp, wp = enc.condition.shape[-2:]
        x = torch.cat([enc.condition, torch.randn(2, 1, hp, wp)], dim=1)
        t = torch.rand(2)
        whole = net.decoder(x, t, enc.features)
        banded = net.decoder(x, t, enc.features, max_band_pixels=budget)
    torch.testing.assert_close(banded, whole, atol=1e-5, rtol=1e-5)


def _record_band_budgets(net: DiffMatteNet) -> list[int | None]:
    """The ``max_band_pixels`` of every later decoder call, in order."""
    budgets: list[int | None] = []
    forward = net.decoder.forward
    net.decoder.forward = lambda *a, max_band_pixels=None: (budgets.append(max_band_pixels), forward(*a))[1]  # type: ignore[method-assign]
    return budgets


def test_decoder_bands_keep_a_minimum_height() -> None:
    net = DiffMatteNet(get_preset("tiny_vit")).eval()
    budgets = _record_band_budgets(net)
    image, trimap = torch.rand(2, 3, 150, 70), torch.full((2, 1, 150, 70), 0.5)
    with torch.inference_mode():
        enc = net.encode(image, trimap)
        wp = enc.condition.shape[-1]
        net.decoder_band_pixels, net.decoder_min_band_rows = 1, 32
        net.denoise(enc, torch.randn(2, 1, 150, 70), torch.rand(2))
        net.decoder_band_pixels = 10**6
        net.denoise(enc, torch.randn(2, 1, 150, 70), torch.rand(2))
    assert budgets == [32 * 2 * wp, 10**6]


@pytest.mark.parametrize("preset", ["tiny_vit", "tiny_res34"])
def test_channels_last_decoder_equals_nchw(preset: str) -> None:
    torch.manual_seed(0)
    net = DiffMatteNet(get_preset(preset)).eval()
    image, trimap = torch.rand(1, 3, 96, 64), torch.full((1, 1, 96, 64), 0.5)
    x_in, t = torch.randn(1, 1, 96, 64), torch.rand(1)
    with torch.inference_mode():
        enc = net.encode(image, trimap)
        nchw = net.denoise(enc, x_in, t)
        net.use_channels_last()
        nhwc = net.denoise(enc, x_in, t)
    assert net.decoder.down_blks[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(nhwc, nchw, atol=1e-5, rtol=1e-5)
    # Weights saved from a channels-last model are the same numbers in the standard layout.
    sd = net.state_dict()
    net.use_channels_last(False)
    assert all(torch.equal(sd[k], v) for k, v in net.state_dict().items())


def test_vit_encoder_trains() -> None:
    net = DiffMatteNet(get_preset("tiny_vit")).train()
    enc = net.encode(torch.rand(1, 3, 64, 64), torch.full((1, 1, 64, 64), 0.5))
    enc.features.square().mean().backward()
    assert all(p.grad is not None for n, p in net.backbone.named_parameters() if "rel_pos" in n)


@pytest.mark.parametrize("tap_first", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(4, 4), (5, 9), (16, 23)])
def test_upsample_without_the_upsampled_map_equals_the_direct_way(
    tap_first: bool, channels_last: bool, size: tuple[int, int]
) -> None:
    from diffmatte.models.dunet import DUNetUpsample

    torch.manual_seed(0)
    up = DUNetUpsample(6, 5).eval()
    up.tap_first = tap_first
    x = torch.randn(2, 6, *size)
    if channels_last:
        up, x = up.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fused = up(x)
        direct = up._direct(x)
    assert fused.shape == direct.shape == (2, 5, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(fused, direct, rtol=1e-5, atol=1e-5)
    up.train()  # training takes the direct way (autograd through one well-tested op)
    torch.testing.assert_close(up(x), direct, rtol=0, atol=0)


def test_upsample_takes_the_tap_first_way_for_wide_inputs_only() -> None:
    from diffmatte.models.dunet import DUNetUpsample

    assert not DUNetUpsample(96, 32).tap_first
    assert DUNetUpsample(192, 64).tap_first


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("chunk_elements", [1, 630, 1890])
def test_tap_first_in_row_chunks_equals_one_piece(
    monkeypatch: pytest.MonkeyPatch, channels_last: bool, chunk_elements: int
) -> None:
    import torch.nn.functional as F

    import diffmatte.models.dunet as dunet

    torch.manual_seed(0)
    per_tap, stencil = dunet._tap_weights(torch.randn(5, 6, 3, 3))
    x = torch.randn(2, 6, 17, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    whole = F.conv2d(F.conv2d(x, per_tap), stencil, padding=1, groups=5)
    monkeypatch.setattr(dunet, "_TAP_CHUNK_ELEMENTS", chunk_elements)  # 1 row, 1 row, 3 rows per chunk
    torch.testing.assert_close(dunet._tap_first_phases(x, per_tap, stencil, 5), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tap_first", [False, True])
def test_upsample_on_meta_tensors_for_flop_counting(tap_first: bool) -> None:
    from diffmatte.models.dunet import DUNetUpsample

    up = DUNetUpsample(6, 5).eval().to("meta")
    up.tap_first = tap_first
    with torch.no_grad():
        assert up(torch.zeros(1, 6, 8, 10, device="meta")).shape == (1, 5, 16, 20)


@pytest.mark.parametrize("tap_first", [False, True])
def test_upsample_phase_weights_follow_the_conv_weight(tap_first: bool) -> None:
    from diffmatte.models.dunet import DUNetUpsample

    torch.manual_seed(0)
    up = DUNetUpsample(6, 5).eval()
    up.tap_first = tap_first
    x = torch.randn(1, 6, 8, 10)
    with torch.no_grad():
        up(x)
        up.conv.weight.mul_(2.0)  # as an optimizer step or load_state_dict would change it
        torch.testing.assert_close(up(x), up._direct(x), rtol=1e-5, atol=1e-5)
        up.load_state_dict({"conv.weight": torch.randn(5, 6, 3, 3)})
        torch.testing.assert_close(up(x), up._direct(x), rtol=1e-5, atol=1e-5)
        up.fused = False
        assert torch.equal(up(x), up._direct(x))


@pytest.mark.parametrize("channels_last", [False, True])
def test_decoder_with_batch_norms_folded_equals_unfolded(channels_last: bool) -> None:
    torch.manual_seed(0)
    dec = DUNet(DUNetConfig(downsample_in=(7, 8, 16), upsample_in=(24, 16, 8, 8), head_channels=4)).eval()

    def randomise_batch_norms() -> None:
        for m in dec.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.normal_(0, 0.3)

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dec.to(memory_format=fmt)
    x = torch.randn(2, 7, 32, 40).contiguous(memory_format=fmt)
    feats = torch.randn(2, 24, 4, 5).contiguous(memory_format=fmt)
    t = torch.tensor([0.3, 0.8])

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            folded = dec(x, t, feats)
            for m in dec.modules():
                if hasattr(m, "fold_batch_norm"):
                    m.fold_batch_norm = False
            unfolded = dec(x, t, feats)
            for m in dec.modules():
                if hasattr(m, "fold_batch_norm"):
                    m.fold_batch_norm = True
        return folded, unfolded

    randomise_batch_norms()
    folded, unfolded = both()
    torch.testing.assert_close(folded, unfolded, atol=1e-5, rtol=1e-5)
    randomise_batch_norms()  # as loading other weights would: the folded weights follow
    folded_again, unfolded_again = both()
    assert not torch.allclose(unfolded_again, unfolded, atol=1e-3)
    torch.testing.assert_close(folded_again, unfolded_again, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # training mode never takes the folded path
        dec.train()
        assert not torch.equal(dec(x, t, feats), folded_again)
    # That training-mode call moved the running statistics without bumping their versions:
    # the folded weights must not outlive it.
    dec.eval()
    folded_after_training, unfolded_after_training = both()
    assert not torch.allclose(unfolded_after_training, unfolded_again, atol=1e-3)
    torch.testing.assert_close(folded_after_training, unfolded_after_training, atol=1e-5, rtol=1e-5)


def test_decoder_prepare_inference_makes_the_weights_the_steps_use() -> None:
    from diffmatte.models.dunet import DUNetUpsample

    torch.manual_seed(0)
    dec = DUNet(DUNetConfig(downsample_in=(7, 8, 16), upsample_in=(24, 16, 8, 8), head_channels=4)).eval()
    dec.up_blks[0].upsample.tap_first = True  # one block of each fused path
    dec.to(memory_format=torch.channels_last)
    dec.prepare_inference(torch.channels_last)
    made = {name: m._phase_cache for name, m in dec.named_modules() if isinstance(m, DUNetUpsample)}
    made |= {name: m._folded._cache for name, m in dec.named_modules() if hasattr(m, "_folded")}
    assert len(made) == 3 + 5 + 1 and all(c is not None for c in made.values())
    x = torch.randn(1, 7, 32, 32).contiguous(memory_format=torch.channels_last)
    feats = torch.randn(1, 24, 4, 4).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        dec(x, torch.tensor([0.5]), feats)
    for name, m in dec.named_modules():
        if isinstance(m, DUNetUpsample):
            assert m._phase_cache is made[name], f"{name} recomputed its weights in the step"
        if hasattr(m, "_folded"):
            assert m._folded._cache is made[name], f"{name} refolded its batch norms in the step"


def test_pipeline_sample_prepares_the_decoder_before_encoding() -> None:
    from diffmatte import DiffMatte
    from diffmatte.models.dunet import DUNetUpsample

    model = DiffMatte.from_config("tiny_vit")
    ups = [m for m in model.net.decoder.modules() if isinstance(m, DUNetUpsample)]
    seen: list[bool] = []
    encode = model.net.backbone.forward
    model.net.backbone.forward = lambda *a, **k: (seen.append(all(u._phase_cache is not None for u in ups)),  # type: ignore[method-assign]
                                                  encode(*a, **k))[1]
    model.sample(torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 0.5), 1)
    assert seen == [True]


def test_half_precision_autocast_gets_bands_of_the_same_bytes() -> None:
    net = DiffMatteNet(get_preset("tiny_vit")).eval()
    net.decoder_band_pixels, net.decoder_min_band_rows = 1000, 1
    seen = _record_band_budgets(net)
    image, trimap = torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 0.5)
    with torch.no_grad():
        enc = net.encode(image, trimap)
        net.denoise(enc, torch.zeros(1, 1, 32, 32), torch.tensor([0.5]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            net.denoise(enc, torch.zeros(1, 1, 32, 32), torch.tensor([0.5]))
    assert seen == [1000, 2000]


def test_whole_network_runs_on_meta_tensors_for_flop_counting() -> None:
    # benchmarks/_measure.py counts FLOPs this way.
    net = DiffMatteNet(get_preset("tiny_vit")).eval().to("meta")
    with torch.inference_mode():
        enc = net.encode(torch.zeros(1, 3, 64, 64, device="meta"), torch.zeros(1, 1, 64, 64, device="meta"))
        x0 = net.denoise(enc, torch.zeros(1, 1, 64, 64, device="meta"), torch.ones(1, device="meta"))
    assert x0.shape == (1, 1, 64, 64)
