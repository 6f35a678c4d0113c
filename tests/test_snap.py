"""The final matte's faint alpha snapped to 0 or 1 in the unknown region (DiffMatteConfig.snap)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from diffmatte import DiffMatte
from diffmatte.errors import InputError
from diffmatte.models.configuration import DiffMatteConfig, get_preset, list_presets


def _scene(h: int = 64, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    xx = np.broadcast_to(np.arange(w, dtype=np.float32), (h, w))
    alpha = np.clip((xx - 0.3 * w) / (0.4 * w), 0, 1)
    image = (alpha[..., None] * np.array([0.9, 0.2, 0.1]) + (1 - alpha[..., None]) * np.array([0.1, 0.3, 0.8]))
    trimap = np.full((h, w), 0.5, np.float32)
    trimap[xx < 0.2 * w], trimap[xx > 0.8 * w] = 0, 1
    return image.astype(np.float32), trimap


def test_snap_moves_only_faint_unknown_pixels() -> None:
    from diffmatte.pipeline import snap_faint_alpha as _snap

    trimap = np.array([[0, 0.5, 0.5, 0.5, 0.5, 1]], np.float32)
    alpha = np.array([[0, 0.01, 0.3, 0.97, 0.995, 1]], np.float32)
    np.testing.assert_array_equal(_snap(alpha, trimap, 0.02), np.array([[0, 0, 0.3, 0.97, 1, 1]], np.float32))
    np.testing.assert_array_equal(_snap(alpha, trimap, 0.0), alpha)


def test_predict_snaps_the_final_matte_by_its_config() -> None:
    torch.manual_seed(0)
    model = DiffMatte.from_config("tiny_vit")
    image, trimap = _scene()
    plain = model.predict(image, trimap, steps=2, seed=3)
    assert model.config.snap == 0 and np.array_equal(model.predict(image, trimap, steps=2, seed=3, snap=0.0), plain)
    unknown = trimap == 0.5
    assert (plain[unknown] < 0.49).all()  # the random tiny network answers about 0.47 everywhere
    snapped = model.predict(image, trimap, steps=2, seed=3, snap=0.49)
    assert (snapped[unknown] == 0).all()
    np.testing.assert_array_equal(snapped[~unknown], trimap[~unknown])
    # the model's config turns it on by default, and the trajectory still ends at the matte returned
    model.net.config = dataclasses.replace(model.config, snap=0.49)
    on = DiffMatte(model.net)
    np.testing.assert_array_equal(on.predict(image, trimap, steps=2, seed=3), snapped)
    np.testing.assert_array_equal(on.predict(image, trimap, steps=2, seed=3, trajectory=True)[-1], snapped)
    with pytest.raises(InputError, match="snap must lie"):
        model.predict(image, trimap, steps=1, snap=0.5)


def test_snap_is_off_for_every_preset_and_survives_the_config() -> None:
    assert all(get_preset(name).snap == 0 for name in list_presets())
    config = dataclasses.replace(get_preset("lite0"), snap=0.02)
    assert DiffMatteConfig.from_dict(config.to_dict()).snap == 0.02
    with pytest.raises(ValueError, match="snap"):
        dataclasses.replace(config, snap=-0.1)
