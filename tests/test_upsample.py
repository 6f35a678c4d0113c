"""Matting at a working resolution: sizes, trimap downscaling, the guided upsampler, the pipeline and CLI option."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from diffmatte import DiffMatte, InputError
from diffmatte.cli import main as cli_main
from diffmatte.upsample import downscale_image, downscale_trimap, guided_upsample, working_shape


def test_working_shape() -> None:
    assert working_shape(100, 200, 0) == (100, 200)
    assert working_shape(100, 200, 1.0) == (100, 200)  # already small enough
    h, w = working_shape(1500, 2000, 0.5)
    assert h * w <= 0.5e6 * 1.01 and abs(w / h - 2000 / 1500) < 0.01


def test_downscaled_trimap_never_shrinks_the_unknown_region() -> None:
    rng = np.random.default_rng(0)
    tri = np.zeros((97, 131), np.float32)
    tri[20:80, 30:110] = 1.0
    tri[rng.random(tri.shape) < 0.01] = 0.5  # scattered unknown pixels, and the band below
    tri[18:23, 28:112] = 0.5
    low = downscale_trimap(tri, (31, 43))
    assert set(np.unique(low)) <= {0.0, 0.5, 1.0}
    # every full-size unknown pixel lies under (by its centre) a low-resolution unknown pixel
    ys, xs = np.nonzero(tri == 0.5)
    ly, lx = ((ys + 0.5) * 31 / 97).astype(int), ((xs + 0.5) * 43 / 131).astype(int)
    assert (low[ly, lx] == 0.5).all()
    assert (low == 1.0).sum() > 100 and (low == 0.0).sum() > 100


def _edge_scene(h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A slanted colour edge: alpha follows the colour exactly, as in a clean composite."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip((xx - 0.37 * yy - 110.3) / 1.5 + 0.5, 0, 1).astype(np.float32)
    fg, bg = np.array([0.9, 0.3, 0.2]), np.array([0.1, 0.5, 0.8])
    image = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    return image, alpha


def test_guided_upsample_recovers_the_edge_that_bilinear_blurs() -> None:
    image, alpha = _edge_scene()
    low_shape = (60, 80)
    image_low = downscale_image(image, low_shape)
    alpha_low = np.asarray(Image.fromarray(alpha, mode="F").resize((80, 60), Image.BOX))
    bilinear = np.asarray(Image.fromarray(alpha_low, mode="F").resize((320, 240), Image.BILINEAR))
    guided = guided_upsample(alpha_low, image_low, image)
    assert guided.shape == alpha.shape and guided.min() >= 0 and guided.max() <= 1
    err_bilinear, err_guided = np.abs(bilinear - alpha).sum(), np.abs(guided - alpha).sum()
    assert err_guided < 0.5 * err_bilinear, (err_guided, err_bilinear)


@pytest.fixture(scope="module")
def model() -> DiffMatte:
    torch.manual_seed(0)
    return DiffMatte.from_config("tiny_res34")


def _inputs(h: int = 90, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, :30] = 0
    trimap[:, -30:] = 255
    return image, trimap


def test_predict_at_a_working_size_returns_full_size_with_exact_known_regions(model: DiffMatte) -> None:
    image, trimap = _inputs()
    full = model.predict(image, trimap, steps=2, seed=0, working_megapixels=0)
    low = model.predict(image, trimap, steps=2, seed=0, working_megapixels=0.003)  # 3000 px: ~47x63
    assert low.shape == full.shape == trimap.shape
    assert (low[trimap == 0] == 0).all() and (low[trimap == 255] == 1).all()
    assert not np.allclose(low, full)
    frames = model.predict(image, trimap, steps=2, seed=0, working_megapixels=0.003, trajectory=True)
    assert frames.shape == (2, *trimap.shape)
    np.testing.assert_array_equal(frames[-1], low)
    with pytest.raises(InputError, match="working_megapixels"):
        model.predict(image, trimap, steps=1, seed=0, working_megapixels=-1)


def test_the_model_config_sets_the_default_working_size(model: DiffMatte) -> None:
    image, trimap = _inputs()
    small = DiffMatte(model.net)
    small.net.config = dataclasses.replace(model.config, working_megapixels=0.003)
    try:
        np.testing.assert_array_equal(
            small.predict(image, trimap, steps=1, seed=0),
            small.predict(image, trimap, steps=1, seed=0, working_megapixels=0.003),
        )
        assert not np.array_equal(
            small.predict(image, trimap, steps=1, seed=0), small.predict(image, trimap, steps=1, seed=0, working_megapixels=0)
        )
    finally:
        small.net.config = dataclasses.replace(model.config, working_megapixels=0.0)


def test_cli_resolution_is_checked(tmp_path, capsys) -> None:
    image, trimap = _inputs()
    Image.fromarray(image).save(tmp_path / "i.png")
    Image.fromarray(trimap).save(tmp_path / "t.png")
    with pytest.raises(SystemExit) as e:
        cli_main(["predict", str(tmp_path / "i.png"), str(tmp_path / "t.png"), "-o", str(tmp_path / "a.png"),
                  "--resolution", "huge"])
    assert e.value.code == 2
    assert "--resolution must be auto, full or a positive number" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_flip_tta_averages_the_straight_and_the_mirrored_sample(model: DiffMatte) -> None:
    image, trimap = _inputs(64, 80)
    tta = model.predict(image, trimap, steps=2, seed=3, flip_tta=True)
    img = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    tri = torch.from_numpy(np.where(trimap == 0, 0.0, np.where(trimap == 255, 1.0, 0.5)).astype(np.float32))[None, None]
    noise = torch.randn(tri.shape, generator=torch.Generator().manual_seed(3))
    straight = model.sample(img, tri, 2, noise=noise).alpha[0, 0].numpy()
    mirrored = model.sample(img.flip(-1), tri.flip(-1), 2, noise=noise.flip(-1)).alpha[0, 0].numpy()[:, ::-1]
    np.testing.assert_allclose(tta, 0.5 * (straight + mirrored), atol=1e-6)
    assert not np.allclose(tta, model.predict(image, trimap, steps=2, seed=3))
