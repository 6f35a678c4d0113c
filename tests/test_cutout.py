"""diffmatte.foreground: foreground estimation (against a known truth and against pymatting), compositing."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmatte.errors import InputError
from diffmatte.foreground import (
    composite,
    cutout,
    estimate_foreground,
    estimate_foreground_background,
    estimate_foreground_blur_fusion,
    parse_background,
    remove_spill,
)

H, W = 48, 64
LEMUR = Path(__file__).resolve().parents[2] / "shared" / "data" / "pymatting_lemur"


def _synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Image made from known smooth F and B and a soft alpha ramp: (image, alpha, F, B)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    fg = np.stack([0.9 - 0.3 * y / H, 0.2 + 0.2 * x / W, np.full_like(x, 0.1)], axis=2)
    bg = np.stack([np.full_like(x, 0.1), 0.3 + 0.4 * y / H, 0.8 - 0.2 * x / W], axis=2)
    alpha = np.clip((x - 16) / 32, 0, 1)  # background left, ramp in the middle, foreground right
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return image, alpha, fg, bg


def test_recovers_known_foreground_in_the_soft_region() -> None:
    image, alpha, fg, bg = _synthetic()
    f_est, b_est = estimate_foreground_background(image, alpha)
    soft = (alpha > 0.1) & (alpha < 0.9)
    naive_error = np.abs(image - fg)[soft].mean()  # what RGBA = (I, alpha) would show
    assert np.abs(f_est - fg)[soft].mean() < naive_error / 3
    # The estimate explains the image: alpha F + (1 - alpha) B = I.
    recon = alpha[..., None] * f_est + (1 - alpha[..., None]) * b_est
    assert np.abs(recon - image).max() < 0.02
    assert f_est.dtype == np.float32 and f_est.min() >= 0 and f_est.max() <= 1


def test_blur_fusion_also_removes_the_old_background() -> None:
    image, alpha, fg, _ = _synthetic()
    f_est = estimate_foreground_blur_fusion(image, alpha)
    soft = (alpha > 0.1) & (alpha < 0.9)
    assert np.abs(f_est - fg)[soft].mean() < np.abs(image - fg)[soft].mean() / 3
    assert f_est.shape == image.shape and f_est.dtype == np.float32 and 0 <= f_est.min() and f_est.max() <= 1
    with pytest.raises(InputError, match="same size"):
        estimate_foreground_blur_fusion(image, alpha[:-1])


def test_constant_regions_stay_put() -> None:
    image = np.full((H, W, 3), 0.25, np.float32)
    f_est = estimate_foreground(image, np.ones((H, W), np.float32))
    np.testing.assert_allclose(f_est, image, atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("pymatting") is None, reason="pymatting is not installed")
@pytest.mark.skipif(not (LEMUR / "lemur.png").is_file(), reason="shared/data/pymatting_lemur is absent")
def test_matches_pymatting_estimate_foreground_ml() -> None:
    from pymatting import estimate_foreground_ml

    # A 96 px crop around the lemur's fur, where the matte is soft.
    image = np.asarray(Image.open(LEMUR / "lemur.png").convert("RGB"), np.float32)[100:196, 250:346] / 255.0
    alpha = np.asarray(Image.open(LEMUR / "lemur_alpha.png").convert("L"), np.float32)[100:196, 250:346] / 255.0
    ours = estimate_foreground(image, alpha)
    ref = estimate_foreground_ml(image, alpha)
    visible = alpha > 0.05
    # Red-black vs sequential Gauss-Seidel: the same minimiser, reached along another path.
    assert np.abs(ours - ref)[visible].mean() < 0.01
    assert np.abs(ours - ref)[visible].max() < 0.25


def test_cutout_is_rgba_with_the_alpha() -> None:
    image, alpha, _, _ = _synthetic()
    rgba = cutout((image * 255).astype(np.uint8), alpha)
    assert rgba.shape == (H, W, 4) and rgba.dtype == np.float32
    np.testing.assert_array_equal(rgba[..., 3], alpha)


def test_cutout_size_mismatch() -> None:
    with pytest.raises(InputError, match="alpha is"):
        cutout(np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 1), np.float32))


def test_composite_on_a_colour() -> None:
    image, alpha, _, _ = _synthetic()
    rgba = cutout(image, alpha)
    out = composite(rgba, "#00ff00")
    assert out.shape == (H, W, 3)
    np.testing.assert_allclose(out[:, 0], np.tile([0.0, 1.0, 0.0], (H, 1)))  # alpha 0: pure background
    np.testing.assert_allclose(out[:, -1], rgba[:, -1, :3])  # alpha 1: the foreground


def test_composite_on_an_image_of_another_size(tmp_path: Path) -> None:
    bg = np.zeros((30, 200, 3), np.uint8)
    bg[:, 95:105] = 255  # scaled 1.6x to 48x320 and cropped to columns 128..192: the stripe is central
    Image.fromarray(bg).save(tmp_path / "bg.png")
    rgba = np.zeros((H, W, 4), np.float32)
    out = composite(rgba, tmp_path / "bg.png")
    assert out.shape == (H, W, 3)
    assert out[:, W // 2].mean() > 0.9 and out[:, 0].mean() < 0.1


@pytest.mark.parametrize(
    "spec,expected", [("#ff0000", [1, 0, 0]), ("white", [1, 1, 1]), ((0, 0, 255), [0, 0, 1]), ("#0f0", [0, 1, 0])]
)
def test_parse_background_colours(spec: object, expected: list[float]) -> None:
    np.testing.assert_allclose(parse_background(spec), expected)


def test_parse_background_rejects_nonsense(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither an image file nor a colour"):
        parse_background(str(tmp_path / "missing.jpg"))
    with pytest.raises(InputError, match="no such file"):
        parse_background(tmp_path / "missing.jpg")


def _spilled() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """White fur lit green by grass: F near the edge carries the background's green, deep inside
    it is white; and a foreground that is green all the way in. (fg, bg, alpha, green_object)"""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    alpha = np.clip((x - 8) / 8, 0, 1)
    bg = np.broadcast_to(np.array([0.2, 0.6, 0.2], np.float32), (H, W, 3)).copy()
    tint = np.clip(1 - (x - 8) / 24, 0, 1)[..., None]  # green light fading over 24 px inside
    fg = np.array([0.9, 0.9, 0.9], np.float32) * (1 - 0.2 * tint) + np.array([0.0, 0.2, 0.0], np.float32) * tint
    return fg.astype(np.float32), bg, alpha, np.broadcast_to(np.array([0.3, 0.7, 0.3], np.float32), (H, W, 3)).copy()


def test_remove_spill_takes_the_backgrounds_hue_out_near_the_edge_only() -> None:
    fg, bg, alpha, _ = _spilled()

    def green(f: np.ndarray) -> np.ndarray:
        return f[..., 1] - (f[..., 0] + f[..., 2]) / 2

    out = remove_spill(fg, bg, alpha, reach=12)
    edge, deep = (slice(None), slice(10, 20)), (slice(None), slice(40, None))
    assert green(fg)[edge].mean() > 0.1 and green(out)[edge].mean() < 0.5 * green(fg)[edge].mean()
    np.testing.assert_array_equal(out[deep], fg[deep])  # beyond the reach inside: untouched
    np.testing.assert_array_equal(out[:, :8], fg[:, :8])  # alpha 0: nothing to show, nothing changed
    grey = np.full_like(fg, 0.5)
    np.testing.assert_array_equal(remove_spill(grey, bg, alpha), grey)  # no chroma, no spill
    with pytest.raises(InputError, match="one size"):
        remove_spill(fg, bg[:-1], alpha)


def test_remove_spill_costs_a_foreground_that_shares_the_backgrounds_hue() -> None:
    # Why it is off by default: a green object over green grass loses some of its green.
    _, bg, alpha, green_object = _spilled()
    out = remove_spill(green_object, bg, alpha, reach=12)
    assert (out[:, 10:20, 1] < green_object[:, 10:20, 1] - 0.05).all()


def test_cutout_despill_changes_the_colours_not_the_alpha() -> None:
    fg, bg, alpha, _ = _spilled()
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    plain, despilled = cutout(image, alpha), cutout(image, alpha, despill=True)
    np.testing.assert_array_equal(plain[..., 3], despilled[..., 3])
    assert (despilled[..., 1] <= plain[..., 1] + 1e-6).all() and (despilled[..., :3] != plain[..., :3]).any()
