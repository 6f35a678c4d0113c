"""The decoder's inference fast path (diffmatte.models.fast_decoder): the plain DUNet's numbers
with every combination of speed paths, derived weights that follow the network's, and a
pipeline that leaves the network it is given as it was."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import diffmatte.models.fast_decoder as fast_decoder
from diffmatte import DiffMatte, DiffMatteNet, get_preset
from diffmatte.models.dunet import DUNet, DUNetBlock, DUNetConfig
from diffmatte.models.fast_decoder import FAST, PLAIN, FastDecoder, InferenceOptions

SMALL = DUNetConfig(downsample_in=(7, 8, 16), upsample_in=(24, 16, 8, 8), head_channels=4)


def _randomise_batch_norms(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.3)


def _decoder_inputs(batch: int = 2, h: int = 32, w: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 7, h, w), torch.rand(batch), torch.randn(batch, 24, h // 8, w // 8)


ALL_OPTIONS = [
    InferenceOptions(channels_last=cl, fused_upsample=fu, fold_batch_norm=fb, band_pixels=bp, min_band_rows=1)
    for cl in (False, True) for fu in (False, True) for fb in (False, True) for bp in (None, 100)
]


@pytest.mark.parametrize("options", ALL_OPTIONS, ids=lambda o: f"cl{o.channels_last:d}fu{o.fused_upsample:d}"
                         f"fb{o.fold_batch_norm:d}b{o.band_pixels}")
def test_every_combination_of_speed_paths_gives_the_plain_decoders_numbers(options: InferenceOptions) -> None:
    torch.manual_seed(0)
    dec = DUNet(SMALL).eval()
    _randomise_batch_norms(dec)
    x, t, feats = _decoder_inputs()
    with torch.inference_mode():
        plain = dec(x, t, feats)
        fast = FastDecoder(dec, options)(x, t, feats)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("preset", ["tiny_vit", "tiny_res34"])
@pytest.mark.parametrize("budget", [1, 2000, 10**9])
def test_banded_decoder_equals_unbanded(preset: str, budget: int) -> None:
    torch.manual_seed(0)
    net = DiffMatteNet(get_preset(preset)).eval()
    _randomise_batch_norms(net.decoder)
    image, trimap = torch.rand(2, 3, 150, 70), torch.full((2, 1, 150, 70), 0.5)
    banded = FastDecoder(net.decoder, InferenceOptions(band_pixels=budget, min_band_rows=1))
    with torch.inference_mode():
        enc = net.encode(image, trimap)
        x_in, t = torch.randn(2, 1, 150, 70), torch.rand(2)
        torch.testing.assert_close(net.denoise(enc, x_in, t, banded), net.denoise(enc, x_in, t), atol=1e-5, rtol=1e-5)


def test_decoder_bands_keep_a_minimum_height() -> None:
    x = torch.zeros(1)
    assert FastDecoder(DUNet(SMALL), InferenceOptions(band_pixels=1, min_band_rows=32))._band_pixels(2, 96, x) == 32 * 2 * 96
    assert FastDecoder(DUNet(SMALL), InferenceOptions(band_pixels=10**6, min_band_rows=32))._band_pixels(2, 96, x) == 10**6
    assert FastDecoder(DUNet(SMALL), PLAIN)._band_pixels(2, 96, x) is None


def test_half_precision_autocast_gets_bands_of_the_same_bytes() -> None:
    fast = FastDecoder(DUNet(SMALL), InferenceOptions(band_pixels=1000, min_band_rows=1))
    x = torch.zeros(1)
    assert fast._band_pixels(1, 8, x) == 1000
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast._band_pixels(1, 8, x) == 2000


@pytest.mark.parametrize("tap_first", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(4, 4), (5, 9), (16, 23)])
def test_upsample_without_the_upsampled_map_equals_the_direct_way(
    monkeypatch: pytest.MonkeyPatch, tap_first: bool, channels_last: bool, size: tuple[int, int]
) -> None:
    monkeypatch.setattr(fast_decoder, "_TAP_FIRST_MIN_CIN", 1 if tap_first else 10**6)
    torch.manual_seed(0)
    blk = DUNetBlock(6, 5, 4, up=True).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 6, *size).contiguous(memory_format=fmt)
    fast = FastDecoder(DUNet(SMALL), FAST)
    with torch.no_grad():
        fused = fast._upsample(blk, x, blk.upsample.conv.weight, fmt)
        direct = blk.upsample(x)
    assert fused.shape == direct.shape == (2, 5, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(fused, direct, rtol=1e-5, atol=1e-5)
    assert len(fast._phase_weights(blk, fmt)) == (2 if tap_first else 1)


def test_upsample_takes_the_tap_first_way_for_wide_inputs_only() -> None:
    fast = FastDecoder(DUNet(SMALL), FAST)
    fmt = torch.contiguous_format
    assert len(fast._phase_weights(DUNetBlock(96, 32, 4, up=True), fmt)) == 1
    assert len(fast._phase_weights(DUNetBlock(192, 64, 4, up=True), fmt)) == 2


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("chunk_elements", [1, 630, 1890])
def test_tap_first_in_row_chunks_equals_one_piece(
    monkeypatch: pytest.MonkeyPatch, channels_last: bool, chunk_elements: int
) -> None:
    torch.manual_seed(0)
    per_tap, stencil = fast_decoder.tap_weights(torch.randn(5, 6, 3, 3))
    x = torch.randn(2, 6, 17, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    whole = F.conv2d(F.conv2d(x, per_tap), stencil, padding=1, groups=5)
    monkeypatch.setattr(fast_decoder, "_TAP_CHUNK_ELEMENTS", chunk_elements)  # 1 row, 1 row, 3 rows per chunk
    torch.testing.assert_close(fast_decoder.tap_first_phases(x, per_tap, stencil, 5), whole, rtol=1e-5, atol=1e-5)


def test_derived_weights_follow_the_networks() -> None:
    torch.manual_seed(0)
    dec = DUNet(SMALL).eval()
    fast = FastDecoder(dec, FAST)
    x, t, feats = _decoder_inputs()
    with torch.no_grad():
        fast(x, t, feats)
        dec.up_blks[0].upsample.conv.weight.mul_(2.0)  # as an optimizer step would change it
        torch.testing.assert_close(fast(x, t, feats), dec(x, t, feats), rtol=1e-5, atol=1e-5)
        other = DUNet(SMALL).eval()
        _randomise_batch_norms(other)
        dec.load_state_dict(other.state_dict())  # as loading other weights would
        torch.testing.assert_close(fast(x, t, feats), other(x, t, feats), rtol=1e-5, atol=1e-5)


def test_folded_weights_do_not_outlive_a_training_forward() -> None:
    # A training-mode forward moves the running statistics in place.
    torch.manual_seed(0)
    dec = DUNet(SMALL).eval()
    _randomise_batch_norms(dec)
    fast = FastDecoder(dec, FAST)
    x, t, feats = _decoder_inputs()
    with torch.no_grad():
        before = fast(x, t, feats)
        dec.train()
        dec(x * 3 + 1, t, feats)
        dec.eval()
        after = dec(x, t, feats)
        assert not torch.allclose(after, before, atol=1e-3)
        torch.testing.assert_close(fast(x, t, feats), after, rtol=1e-5, atol=1e-5)


def test_prepare_makes_the_weights_the_steps_use() -> None:
    torch.manual_seed(0)
    dec = DUNet(SMALL).eval()
    fast = FastDecoder(dec, FAST)
    fast.prepare()
    made = dict(fast._cache)
    assert len(made) == 5 + 3 + 1  # 5 blocks, 3 of them up (phase weights), the head
    x, t, feats = _decoder_inputs(1)
    with torch.no_grad():
        fast(x, t, feats)
    assert all(fast._cache[k][1] is v[1] for k, v in made.items()), "a step derived its weights again"
    assert fast._cache.keys() == made.keys()


def test_fast_decoder_runs_on_meta_tensors_for_flop_counting() -> None:
    # benchmarks/_measure.py counts a step's FLOPs this way.
    dec = DUNet(SMALL).eval().to("meta")
    with torch.no_grad():
        out = FastDecoder(dec, FAST)(*(v.to("meta") for v in _decoder_inputs()))
    assert out.shape == (2, 1, 32, 40)


def test_pipeline_prepares_the_decoder_before_encoding() -> None:
    model = DiffMatte.from_config("tiny_vit")
    seen: list[int] = []
    encode = model.net.backbone.forward
    model.net.backbone.forward = lambda *a, **k: (seen.append(len(model.network._decoder._cache)), encode(*a, **k))[1]  # type: ignore[method-assign]
    model.sample(torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 0.5), 1)
    assert seen and seen[0] > 0


def test_pipeline_leaves_the_network_it_is_given_as_it_was() -> None:
    torch.manual_seed(0)
    net = DiffMatteNet(get_preset("tiny_res34")).train()
    net.backbone.eval()  # a mixed state, as a trainer with a frozen encoder has
    modes = {name: m.training for name, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    image, trimap, noise = torch.rand(1, 3, 64, 64), torch.full((1, 1, 64, 64), 0.5), torch.randn(1, 1, 64, 64)
    out = DiffMatte(net).sample(image, trimap, 2, noise=noise)
    assert {name: m.training for name, m in net.named_modules()} == modes
    assert all(v.is_contiguous() for v in net.state_dict().values())  # no channels-last conversion
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    # and it sampled in eval mode: the same as a network built for inference
    net.eval()
    torch.testing.assert_close(DiffMatte(net).sample(image, trimap, 2, noise=noise).alpha, out.alpha)


def test_pipeline_results_do_not_depend_on_the_options() -> None:
    torch.manual_seed(0)
    fast = DiffMatte.from_config("tiny_vit")
    _randomise_batch_norms(fast.net.decoder)
    plain = DiffMatte(fast.net, options=PLAIN)
    image, trimap, noise = torch.rand(1, 3, 96, 64), torch.full((1, 1, 96, 64), 0.5), torch.randn(1, 1, 96, 64)
    torch.testing.assert_close(fast.sample(image, trimap, 3, noise=noise).alpha,
                               plain.sample(image, trimap, 3, noise=noise).alpha, atol=1e-5, rtol=1e-5)
    assert fast.network.options == FAST and plain.network.options == PLAIN and dataclasses.replace(FAST, band_pixels=None) != FAST


def test_inference_options_are_frozen_and_checked() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAST.band_pixels = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="band_pixels"):
        InferenceOptions(band_pixels=0)
