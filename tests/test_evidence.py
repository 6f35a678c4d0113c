"""Colour evidence inputs (models/evidence.py): the fills, the channels, widening a checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffmatte import DiffMatte
from diffmatte.checkpoint import load_into
from diffmatte.errors import CheckpointError
from diffmatte.models.configuration import DiffMatteConfig, get_preset
from diffmatte.models.evidence import EVIDENCE_CHANNELS, blur_mask, colour_evidence, push_pull, widen_decoder_input
from diffmatte.models.modeling_diffmatte import DiffMatteNet


def _scene(h: int = 48, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Red background on the left, blue foreground on the right, an unknown band between."""
    image = torch.zeros(1, 3, h, w)
    image[:, 0, :, : w // 2] = 1.0
    image[:, 2, :, w // 2 :] = 1.0
    trimap = torch.full((1, 1, h, w), 0.5)
    trimap[..., : w // 4] = 0.0
    trimap[..., -w // 4 :] = 1.0
    return image, trimap


def test_push_pull_keeps_known_pixels_and_fills_from_the_nearest_ones() -> None:
    image, trimap = _scene()
    known = (trimap < 0.25).float()
    filled = push_pull(image, known)
    assert torch.equal(filled[..., :16], image[..., :16])
    # the unknown band next to the red background is filled red, far from it too
    assert torch.allclose(filled[:, :, :, 16:], torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 48, 48))
    # nothing known: zeros, not NaN
    assert torch.equal(push_pull(image, torch.zeros_like(known)), torch.zeros_like(image))


def test_push_pull_of_two_known_colours_blends_between_them() -> None:
    values = torch.zeros(1, 1, 1, 65)
    weight = torch.zeros(1, 1, 1, 65)
    values[..., 0], weight[..., 0] = 0.0, 1.0
    values[..., -1], weight[..., -1] = 1.0, 1.0
    filled = push_pull(values, weight)[0, 0, 0]
    assert filled[0] == 0.0 and filled[-1] == 1.0
    assert 0.0 < filled[32] < 1.0
    assert filled[10] < filled[54]  # nearer the 0 end, nearer 0


def test_evidence_channels_read_the_colour_line() -> None:
    image, trimap = _scene()
    ev = colour_evidence(image, trimap)
    assert ev.shape == (1, EVIDENCE_CHANNELS, 48, 64)
    assert float(ev.min()) >= 0.0 and float(ev.max()) <= 1.0
    alpha_hat, bg_distance, fg_distance, bg_near, fg_near = ev[0]
    # an unknown pixel the colour of the background: alpha 0, no distance to the background
    assert float(alpha_hat[:, 20].max()) < 0.01 and float(bg_distance[:, 20].max()) < 1e-6
    # one the colour of the foreground: alpha 1, at distance sqrt(2)/sqrt(3) from the background
    assert float(alpha_hat[:, 40].min()) > 0.99 and float(fg_distance[:, 40].max()) < 1e-6
    assert torch.allclose(bg_distance[:, 40], torch.full((48,), (2 / 3) ** 0.5))
    # proximity: high on the known side, falling off into the unknown band
    assert float(bg_near[:, 2].min()) > 0.9 and float(bg_near[:, 60].max()) < 0.1
    assert float(fg_near[:, 62].min()) > 0.9 and float(fg_near[:, 4].max()) < 0.1


def test_a_trimap_without_foreground_gives_no_evidence_rather_than_false_evidence() -> None:
    image, trimap = _scene()
    trimap[trimap == 1.0] = 0.5  # transparent matter: no pixel is sure foreground
    ev = colour_evidence(image, trimap)
    assert torch.equal(ev[0, 0], torch.full((48, 64), 0.5))  # alpha_hat needs both colours
    assert torch.equal(ev[0, 2], torch.full((48, 64), 0.5))  # fg_distance needs the foreground
    assert float(ev[0, 1, :, 20].max()) < 1e-6  # the background side still speaks
    assert torch.equal(ev[0, 4], torch.zeros(48, 64))


def test_the_batch_is_per_image() -> None:
    image, trimap = _scene()
    other_trimap = trimap.clone()
    other_trimap[other_trimap == 1.0] = 0.5
    batch = colour_evidence(torch.cat([image, image]), torch.cat([trimap, other_trimap]))
    assert torch.allclose(batch[:1], colour_evidence(image, trimap))
    assert torch.allclose(batch[1:], colour_evidence(image, other_trimap))


def test_blur_mask_handles_images_smaller_than_its_cells() -> None:
    mask = torch.zeros(1, 2, 5, 3)
    mask[:, 0, 0, 0] = 1.0
    out = blur_mask(mask)
    assert out.shape == mask.shape and float(out[:, 1].max()) == 0.0 and float(out[:, 0].max()) > 0.0


def test_widened_weights_compute_exactly_what_the_model_without_evidence_did() -> None:
    torch.manual_seed(0)
    base = DiffMatteNet(get_preset("tiny_vit")).eval()
    wide = DiffMatteNet(get_preset("tiny_vit_evidence")).eval()
    with pytest.raises(CheckpointError, match="shapes differ"):
        load_into(wide, base.state_dict(), "tiny_vit_evidence")
    sd = widen_decoder_input(base.state_dict(), wide.state_dict())
    load_into(wide, sd, "tiny_vit_evidence")
    first = sd["decoder.down_blks.0.conv1.weight"]
    assert first.shape[1] == 12 and float(first[:, 6:11].abs().max()) == 0.0
    assert torch.equal(first[:, 11], base.state_dict()["decoder.down_blks.0.conv1.weight"][:, 6])  # x_t last
    image, trimap = _scene(40, 56)
    x = torch.randn(1, 1, 40, 56)
    t = torch.tensor([0.4])
    with torch.no_grad():
        want = base.denoise(base.encode(image, trimap), x, t)
        got = wide.denoise(wide.encode(image, trimap), x, t)
    assert torch.allclose(got, want, atol=1e-6)
    # an evidence checkpoint passes through unchanged
    own = wide.state_dict()
    again = widen_decoder_input(own, own)
    assert all(again[k] is v for k, v in own.items())


def test_the_evidence_flag_travels_with_the_config_and_checks_the_decoder_width(tmp_path) -> None:
    config = get_preset("tiny_vit_evidence")
    assert DiffMatteConfig.from_dict(config.to_dict()) == config
    assert DiffMatteConfig.from_dict({**get_preset("tiny_vit").to_dict()}).evidence is False  # older files
    with pytest.raises(ValueError, match="11 condition channels"):
        DiffMatteNet(DiffMatteConfig.from_dict({**get_preset("tiny_vit").to_dict(), "evidence": True}))
    model = DiffMatte.from_config("tiny_vit_evidence")
    model.save(tmp_path / "ev.safetensors")
    loaded = DiffMatte.from_checkpoint(tmp_path / "ev.safetensors")
    assert loaded.config.evidence
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    trimap = np.full((40, 50), 128, np.uint8)
    trimap[:, :10], trimap[:, -10:] = 0, 255
    alpha = loaded.predict(image, trimap, 2, seed=0)
    assert alpha.shape == (40, 50)
    assert np.array_equal(alpha, model.predict(image, trimap, 2, seed=0))
