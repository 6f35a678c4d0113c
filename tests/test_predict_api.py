"""DiffMatte.predict / predict_batch on a tiny random model: input forms, trajectory, shortcuts."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffmatte import DiffMatte
from diffmatte.errors import InputError

from .helpers import band_trimap, random_image

H, W = 40, 56
STEPS = 2


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # The tiny model's ops are too small to split: with 2 threads on a busy 2-core machine
    # each predict spends ~10x longer waiting at thread barriers.
    torch.set_num_threads(1)


def _image(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return random_image(h, w, seed)


def _trimap(h: int = H, w: int = W) -> np.ndarray:
    return band_trimap(h, w)


def test_paths_pil_and_arrays_agree(tiny_vit: DiffMatte, tmp_path: Path) -> None:
    img, tri = _image(), _trimap()
    Image.fromarray(img).save(tmp_path / "i.png")
    Image.fromarray(tri).save(tmp_path / "t.png")
    from_arrays = tiny_vit.predict(img, tri, STEPS, seed=3)
    from_floats = tiny_vit.predict(img / 255.0, tri / 255.0, STEPS, seed=3)
    from_paths = tiny_vit.predict(tmp_path / "i.png", str(tmp_path / "t.png"), STEPS, seed=3)
    from_pil = tiny_vit.predict(Image.open(tmp_path / "i.png"), Image.open(tmp_path / "t.png"), STEPS, seed=3)
    assert from_arrays.shape == (H, W) and from_arrays.dtype == np.float32
    for other in (from_floats, from_paths, from_pil):
        np.testing.assert_allclose(other, from_arrays, atol=1e-6)
    assert (from_arrays[:, : W // 3] == 0).all() and (from_arrays[:, -W // 3 :] == 1).all()


def test_same_seed_same_matte(tiny_vit: DiffMatte) -> None:
    a = tiny_vit.predict(_image(), _trimap(), STEPS, seed=7)
    b = tiny_vit.predict(_image(), _trimap(), STEPS, seed=7)
    np.testing.assert_array_equal(a, b)


def test_trajectory(tiny_vit: DiffMatte) -> None:
    final = tiny_vit.predict(_image(), _trimap(), 3, seed=1)
    frames = tiny_vit.predict(_image(), _trimap(), 3, seed=1, trajectory=True)
    assert frames.shape == (3, H, W) and frames.dtype == np.float32
    assert frames.min() >= 0 and frames.max() <= 1
    np.testing.assert_array_equal(frames[-1], final)
    assert (frames[:, :, : W // 3] == 0).all() and (frames[:, :, -W // 3 :] == 1).all()


def test_predict_batch_equals_predict(tiny_vit: DiffMatte) -> None:
    images = [_image(0), _image(1, 48, 40)]
    trimaps = [_trimap(), _trimap(48, 40)]
    batch = tiny_vit.predict_batch(images, trimaps, STEPS, seed=5)
    assert [a.shape for a in batch] == [(H, W), (48, 40)]
    for got, img, tri in zip(batch, images, trimaps, strict=True):
        np.testing.assert_array_equal(got, tiny_vit.predict(img, tri, STEPS, seed=5))
    frames = tiny_vit.predict_batch(images[:1], trimaps[:1], STEPS, seed=5, trajectory=True)
    assert frames[0].shape == (STEPS, H, W)


def test_predict_batch_needs_matching_lists(tiny_vit: DiffMatte) -> None:
    with pytest.raises(InputError, match="1 trimaps"):
        tiny_vit.predict_batch([_image(), _image()], [_trimap()])
    with pytest.raises(InputError, match="lists"):
        tiny_vit.predict_batch("a.png", "b.png")  # type: ignore[arg-type]


def test_no_unknown_skips_the_network(tiny_vit: DiffMatte, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiny_vit, "sample", lambda *a, **k: pytest.fail("the network ran"))
    tri = np.zeros((H, W), np.uint8)
    tri[:, W // 2 :] = 255
    alpha = tiny_vit.predict(_image(), tri)
    np.testing.assert_array_equal(alpha, tri / 255.0)
    assert tiny_vit.predict(_image(), tri, 4, trajectory=True).shape == (4, H, W)


def test_no_known_pixels_warns_and_works(tiny_vit: DiffMatte) -> None:
    with pytest.warns(UserWarning, match="no known pixels"):
        alpha = tiny_vit.predict(_image(), np.full((H, W), 128, np.uint8), STEPS, seed=0)
    assert alpha.shape == (H, W) and np.isfinite(alpha).all()


def test_good_input_gives_no_warning(tiny_vit: DiffMatte) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_vit.predict(_image(), _trimap(), 1, seed=0)


@pytest.mark.parametrize(
    "image,trimap,kwargs,match",
    [
        (_image(0, 31, 64), _trimap(31, 64), {}, "at least 32"),
        (_image(), _trimap(), {"max_pixels": 100}, "over the limit"),
        (_image(), _trimap(32, 32), {}, "same size"),
        (_image(), np.full((H, W), 2.0, np.float32), {}, r"\[0, 1\]"),
    ],
    ids=["too-small", "too-large", "size-mismatch", "bad-trimap-range"],
)
def test_bad_inputs(tiny_vit: DiffMatte, image: np.ndarray, trimap: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        tiny_vit.predict(image, trimap, STEPS, **kwargs)


def test_seeds_are_one_batch_on_one_encoding_and_give_a_spread(tiny_vit: DiffMatte) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((48, 56, 3)).astype(np.float32)
    trimap = np.full((48, 56), 128, np.uint8)
    trimap[:, :12], trimap[:, -12:] = 0, 255
    img = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    tri = torch.from_numpy(np.where(trimap == 128, 0.5, trimap / 255).astype(np.float32))[None, None]
    noise = torch.randn(3, 1, 48, 56, generator=torch.Generator().manual_seed(5))
    together = tiny_vit.sample(img, tri, 2, noise=noise).alpha
    for i in range(3):  # each row is what that noise gives alone
        assert torch.allclose(together[i], tiny_vit.sample(img, tri, 2, noise=noise[i : i + 1]).alpha[0], atol=1e-5)
    alpha, std = tiny_vit.predict(image, trimap, steps=2, seed=5, seeds=3, uncertainty=True)
    rows = together[:, 0].numpy()
    assert np.allclose(alpha, rows.mean(0), atol=1e-5)
    assert np.all(std[trimap != 128] == 0) and std[trimap == 128].mean() > 0
    assert np.allclose(std[trimap == 128], rows.std(0)[trimap == 128], atol=1e-5)
    assert np.array_equal(tiny_vit.predict(image, trimap, steps=2, seed=5, seeds=3), alpha)
    for bad, message in ((dict(seeds=0), "seeds must be"), (dict(uncertainty=True), "seeds >= 2"),
                         (dict(seeds=2, flip_tta=True), "cannot be combined")):
        with pytest.raises(InputError, match=message):
            tiny_vit.predict(image, trimap, steps=2, **bad)


def test_loaded_arrays_are_used_as_they_are_and_never_changed(tiny_vit: DiffMatte) -> None:
    from diffmatte.io import load_pair

    image, trimap = load_pair(_image(), _trimap())
    again_image, again_trimap = load_pair(image, trimap)
    assert again_image is image and again_trimap is trimap  # not converted a second time
    before = image.copy(), trimap.copy()
    for kwargs in ({}, {"flip_tta": True}, {"seeds": 2, "uncertainty": True}, {"working_megapixels": 0.002},
                   {"fusion": True}):
        tiny_vit.predict(image, trimap, 2, seed=0, **kwargs)
        np.testing.assert_array_equal(image, before[0])
        np.testing.assert_array_equal(trimap, before[1])
