"""DiffMatte.sample / predict on tiny models: shapes, known regions, seeds, input checks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from diffmatte import DiffMatte, InputError
from diffmatte.pipeline import write_known_regions
from diffmatte.runtime import cpu_has_fast_bf16


@pytest.fixture(scope="module", params=["tiny_vit", "tiny_res34"])
def model(request) -> DiffMatte:
    torch.manual_seed(0)
    return DiffMatte.from_config(request.param)


def _arrays(h: int = 45, w: int = 61):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, :10] = 0
    trimap[:, -10:] = 255
    return image, trimap


def test_predict_shape_range_and_known_regions(model: DiffMatte) -> None:
    image, trimap = _arrays()
    alpha = model.predict(image, trimap, steps=2, seed=0)
    assert alpha.shape == trimap.shape and alpha.dtype == np.float32
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()


def test_same_seed_same_matte_other_seed_other_matte(model: DiffMatte) -> None:
    image, trimap = _arrays()
    a = model.predict(image, trimap, steps=2, seed=7)
    assert np.array_equal(a, model.predict(image, trimap, steps=2, seed=7))
    assert not np.array_equal(a, model.predict(image, trimap, steps=2, seed=8))


def test_official_postprocess_leaves_foreground_unwritten() -> None:
    alpha = torch.full((1, 1, 2, 3), 0.3)
    trimap = torch.tensor([[[[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]]]])
    fixed = write_known_regions(alpha, trimap)
    official = write_known_regions(alpha, trimap, official=True)
    assert fixed.flatten().tolist() == pytest.approx([0, 0.3, 1, 1, 0.3, 0])
    assert official.flatten().tolist() == pytest.approx([0, 0.3, 0.3, 0.3, 0.3, 0])


def test_trimap_without_unknown_returns_it_without_the_network(model: DiffMatte, monkeypatch) -> None:
    image, trimap = _arrays()
    trimap[trimap == 128] = 255
    monkeypatch.setattr(model.net, "encode", lambda *a: pytest.fail("network ran"))
    alpha = model.predict(image, trimap)
    assert np.array_equal(alpha, (trimap / 255).astype(np.float32))


def test_sample_batch_and_trajectory(model: DiffMatte) -> None:
    image = torch.rand(2, 3, 33, 40)
    trimap = torch.full((2, 1, 33, 40), 0.5)
    out = model.sample(image, trimap, 3, generator=torch.Generator().manual_seed(0), trajectory=True)
    assert out.alpha.shape == (2, 1, 33, 40)
    assert len(out.pred_x0_steps) == 3 and out.pred_x0_steps[0].shape == (2, 1, 33, 40)


@pytest.mark.parametrize(
    "image_shape, trimap_shape, match",
    [((1, 3, 8, 8), (1, 1, 8, 9), "differs from image size"), ((1, 4, 8, 8), (1, 1, 8, 8), r"\(B, 3, H, W\)")],
)
def test_sample_rejects_bad_shapes(model: DiffMatte, image_shape, trimap_shape, match) -> None:
    with pytest.raises(InputError, match=match):
        model.sample(torch.rand(image_shape), torch.zeros(trimap_shape), 1)


def test_sample_rejects_unquantised_trimaps(model: DiffMatte) -> None:
    with pytest.raises(InputError, match="exactly 0, 0.5 or 1"):
        model.sample(torch.rand(1, 3, 8, 8), torch.full((1, 1, 8, 8), 0.4), 1)


def test_bf16_precision_stays_close_to_fp32() -> None:
    torch.manual_seed(0)
    fp32 = DiffMatte.from_config("tiny_vit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bf16 = DiffMatte(fp32.net, precision="bf16")
    # A CPU without bf16 instructions gets told that fp32 is faster there.
    assert any("emulated" in str(w.message) for w in caught) == (not cpu_has_fast_bf16())
    image, trimap = torch.rand(1, 3, 40, 48), torch.full((1, 1, 40, 48), 0.5)
    noise = torch.randn(1, 1, 40, 48)
    a = fp32.sample(image, trimap, 3, noise=noise).alpha
    b = bf16.sample(image, trimap, 3, noise=noise).alpha
    assert b.dtype == torch.float32
    assert 0 < float((a - b).abs().max()) < 0.05
    with pytest.raises(ValueError, match="precision"):
        DiffMatte(fp32.net, precision="fp16")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_multiplies_it(native: bool, monkeypatch) -> None:
    from diffmatte import runtime

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: native)
    monkeypatch.setattr("diffmatte.pipeline.cpu_has_fast_bf16", lambda: native)
    net = DiffMatte.from_config("tiny_vit").net
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never picks an emulated bf16, so it never warns
        model = DiffMatte(net, precision="auto")
    assert model.precision == ("bf16" if native else "fp32")
    assert DiffMatte(net, precision="fp32").precision == "fp32"  # asked for: kept, whatever the CPU
    assert model.with_precision("auto") is model
    # fp32 under auto: the CPU's doing, or, where the CPU could, the model's (an ONNX export)
    reason = "runs in fp32 only" if native else "no native bfloat16"
    assert reason in runtime.explain_precision("auto", "fp32") and \
        "asked for" in runtime.explain_precision("fp32", "fp32")
