"""Every official preset builds with exactly the official state-dict keys, shapes and dtypes."""
from __future__ import annotations

import pytest
import torch

from diffmatte import DiffMatteNet, get_preset
from diffmatte.checkpoint import infer_preset

from .conftest import official_keys

OFFICIAL = ["vits", "vitb", "vits_1024", "res34", "swin_t"]


@pytest.mark.parametrize("preset", OFFICIAL)
def test_state_dict_matches_official_keys(preset: str) -> None:
    expected = official_keys(preset)
    net = DiffMatteNet(get_preset(preset))
    got = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()}
    assert sorted(got) == sorted(expected), (
        f"missing {sorted(set(expected) - set(got))[:5]}, extra {sorted(set(got) - set(expected))[:5]}"
    )
    diff = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
    assert not diff, f"shape/dtype differences: {list(diff.items())[:5]}"


@pytest.mark.parametrize("preset", OFFICIAL)
def test_preset_inferred_from_keys(preset: str) -> None:
    shapes = official_keys(preset)
    fake = {k: torch.empty(s) for k, (s, _) in shapes.items()}
    assert infer_preset(fake) == preset


@pytest.mark.parametrize("preset", ["vitb", "vits_1024"])
def test_heavy_presets_run_on_tiny_input(preset: str) -> None:
    net = DiffMatteNet(get_preset(preset)).eval()
    image = torch.rand(1, 3, 32, 48)
    trimap = torch.full((1, 1, 32, 48), 0.5)
    with torch.inference_mode():
        enc = net.encode(image, trimap)
        # 32x48 is padded to 64x64 by the official rule (both sides grow), so the /16 features are 4x4
        assert enc.features.shape == (1, net.backbone.out_channels, 4, 4)
        x0 = net.denoise(enc, torch.randn(1, 1, 32, 48), torch.ones(1))
    assert x0.shape == (1, 1, 32, 48)
    assert bool((x0.abs() <= 1).all())
