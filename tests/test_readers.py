"""One reader per kind of file: an RGB trimap means the same unknown region on every path
(predict, evaluate, training, validation), and a corrupt EXIF block is said, not hidden."""
from __future__ import annotations

import io as stdio
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffmatte import io
from diffmatte.data.datasets import ValidationSet
from diffmatte.data.files import Triplet, load_alpha, load_trimap
from diffmatte.evaluation import Method, MethodSpec, evaluate, load_dataset

H, W = 40, 48
# Colours a paint program leaves in a trimap, and what each must mean: 0 bg, 0.5 unknown, 1 fg.
COLOURS = {
    (0, 0, 0): 0.0,
    (255, 255, 255): 1.0,
    (128, 128, 128): 0.5,
    (102, 102, 102): 0.5,
    (255, 0, 0): 0.5,  # a red stroke (its first channel alone would read as foreground)
    (0, 0, 255): 0.5,  # a blue stroke (its first channel alone would read as background)
    (255, 255, 254): 0.5,  # near-white (luma rounds it to 255)
    (0, 0, 1): 0.5,  # near-black (luma rounds it to 0)
    (255, 0, 129): 0.5,  # a colour whose mean is 128
}


def _rgb_trimap(colours: dict[tuple[int, int, int], float]) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 trimap in horizontal bands of the colours, and the expected {0, .5, 1}."""
    rgb = np.zeros((H, W, 3), np.uint8)
    want = np.zeros((H, W), np.float32)
    for i, (colour, meaning) in enumerate(colours.items()):
        rows = slice(i * H // len(colours), (i + 1) * H // len(colours))
        rgb[rows], want[rows] = colour, meaning
    return rgb, want


def _files(tmp_path: Path, colours: dict[tuple[int, int, int], float]) -> tuple[Path, Path, Path, np.ndarray]:
    rgb, want = _rgb_trimap(colours)
    image, alpha, trimap = tmp_path / "image.png", tmp_path / "alpha.png", tmp_path / "trimap.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(image)
    Image.fromarray((want * 255).astype(np.uint8)).save(alpha)
    Image.fromarray(rgb).save(trimap)
    return image, alpha, trimap, want


def test_an_rgb_trimap_means_the_same_on_every_path(tmp_path: Path) -> None:
    image, alpha, trimap, want = _files(tmp_path, COLOURS)
    unknown = want == 0.5
    seen = {
        "read_trimap": io.read_trimap(trimap) == 0.5,
        "predict (load_pair)": io.load_pair(image, trimap)[1] == 0.5,
        "tensor": io.as_trimap_tensor(trimap)[0, 0].numpy() == 0.5,
        "array": io.trimap_from_array(np.asarray(Image.open(trimap))) == 0.5,
        "training": load_trimap(trimap) == 128,
        "evaluation levels": ~np.isin(io.read_trimap_levels(trimap), (0, 255)),
    }
    # validation: the ValidationSet's uint8 trimap, converted as train._validate does
    _, _, val_trimap, _ = ValidationSet([Triplet(image, alpha, trimap, (W, H))])[0]
    seen["validation"] = io.trimap_from_array(val_trimap) == 0.5
    for path, region in seen.items():
        np.testing.assert_array_equal(region, unknown, err_msg=path)
    np.testing.assert_array_equal(io.read_trimap(trimap), want)


def test_evaluation_gives_methods_and_metrics_the_same_unknown_region(tmp_path: Path) -> None:
    # Evaluation accepts only the levels 0, 128 and 255 (the metrics score 128 alone).
    colours = {c: m for c, m in COLOURS.items() if c in [(0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 129)]}
    root = tmp_path / "ds"
    for sub in ("merged", "alpha_copy", "trimaps"):
        (root / sub).mkdir(parents=True)
    image, alpha, trimap, want = _files(tmp_path, colours)
    for src, sub in ((image, "merged"), (alpha, "alpha_copy"), (trimap, "trimaps")):
        (root / sub / "a.png").write_bytes(src.read_bytes())
    given = []

    def record(img: np.ndarray, tri: np.ndarray) -> np.ndarray:
        given.append(tri)
        return np.where(tri == 0.5, 0.0, tri)  # wrong exactly on the unknown pixels

    result = evaluate(load_dataset(root), [Method(MethodSpec("record"), record)])
    np.testing.assert_array_equal(given[0], io.read_trimap(trimap))
    # the alpha file holds 127 there and the prediction 0: SAD = 127/255 per unknown pixel / 1000
    expected_sad = 127 / 255 * (want == 0.5).sum() / 1000
    assert result.scores[0].sad == pytest.approx(expected_sad, rel=1e-6)


def test_colour_alpha_is_read_from_its_first_channel_everywhere(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 10, 90
    path = tmp_path / "alpha.png"
    Image.fromarray(rgb).save(path)
    assert (io.read_alpha_u8(path) == 200).all() and (load_alpha(path) == 200).all()
    np.testing.assert_allclose(io.read_alpha(path), 200 / 255)


def _jpeg_with_exif(payload: bytes) -> bytes:
    buf = stdio.BytesIO()
    Image.new("RGB", (W, H), (200, 10, 10)).save(buf, "JPEG")
    data = buf.getvalue()
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + b"Exif\x00\x00" + payload
    return data[:2] + segment + data[2:]


@pytest.mark.parametrize("kind", ["truncated", "orientation-9"])
def test_a_corrupt_exif_block_is_a_warning_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "photo.jpg"
    if kind == "truncated":  # an IFD that claims 65535 entries
        path.write_bytes(_jpeg_with_exif(b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 4))
    else:
        exif = Image.Exif()
        exif[0x0112] = 9
        Image.new("RGB", (W, H)).save(path, exif=exif)
    with pytest.warns(UserWarning, match=r"photo\.jpg: its EXIF block is corrupt .*taken as upright"):
        img = io.read_image(path)
    assert img.shape == (H, W, 3)


def test_a_good_exif_block_warns_nothing(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (W, H)).save(path, exif=exif)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert io.read_image(path).shape == (W, H, 3)
    assert isinstance(io.as_image_tensor(path), torch.Tensor)
