"""diffmatte.io: inputs as users have them, size limits, and atomic writers."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmatte import io
from diffmatte.errors import InputError

H, W = 48, 64


def _pattern(h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8 with distinct corners, so a rotation or flip is visible."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


def _trimap_codes(h: int = H, w: int = W) -> np.ndarray:
    t = np.full((h, w), 128, np.uint8)
    t[:, : w // 4] = 0
    t[:, -w // 4 :] = 255
    return t


def _save_with_orientation(arr: np.ndarray, path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, exif=exif)


# -- images ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB", "L", "P", "CMYK"])
def test_read_image_modes(tmp_path: Path, mode: str) -> None:
    src = Image.fromarray(_pattern()).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    src.save(path)
    out = io.read_image(path)
    assert out.shape == (H, W, 3) and out.dtype == np.float32
    expected = np.asarray(src.convert("RGB"), np.float32) / 255.0
    np.testing.assert_allclose(out, expected, atol=1 / 255)


def test_read_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (W, H), (0, 0, 0, 0)).save(tmp_path / "x.jpg")
    out = io.read_image(tmp_path / "x.jpg")
    assert out.shape == (H, W, 3)
    assert out.min() > 0.95, "CMYK (0,0,0,0) is white"


def test_rgba_alpha_ignored_with_warning(tmp_path: Path) -> None:
    rgba = np.dstack([_pattern(), np.full((H, W), 100, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "x.png")
    with pytest.warns(UserWarning, match="alpha channel is ignored"):
        out = io.read_image(tmp_path / "x.png")
    np.testing.assert_allclose(out, _pattern() / 255.0, atol=1e-6)


def test_opaque_rgba_reads_without_warning(tmp_path: Path) -> None:
    rgba = np.dstack([_pattern(), np.full((H, W), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "x.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.read_image(tmp_path / "x.png")


def test_sixteen_bit_png_keeps_its_range(tmp_path: Path) -> None:
    grey = np.full((H, W), 32768, np.uint16)
    grey[:, :8] = 200  # a dark 16-bit value must not be read as 8-bit (200/255)
    Image.fromarray(grey).save(tmp_path / "x.png")
    assert Image.open(tmp_path / "x.png").mode.startswith("I")
    out = io.read_image(tmp_path / "x.png")
    np.testing.assert_allclose(out[0, 20], [32768 / 65535] * 3, atol=1e-6)
    np.testing.assert_allclose(out[0, 0], [200 / 65535] * 3, atol=1e-6)


@pytest.mark.parametrize(
    "dtype,scale", [(np.uint8, 255.0), (np.uint16, 65535.0), (np.float32, 1.0), (np.float64, 1.0)]
)
def test_image_array_dtypes(dtype: type, scale: float) -> None:
    arr = (_pattern() / 255.0 * scale).astype(dtype)
    out = io.image_to_array(arr)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _pattern() / 255.0, atol=1e-3)


@pytest.mark.parametrize(
    "arr,match",
    [
        (np.zeros((H, W, 2), np.uint8), "must be"),
        (np.full((H, W, 3), 2.0, np.float32), r"\[0, 1\]"),
        (np.full((H, W, 3), np.nan, np.float32), r"\[0, 1\]"),
        (np.full((H, W, 3), 300, np.int32), "unsupported dtype"),
    ],
)
def test_bad_image_arrays(arr: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        io.image_to_array(arr)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    _save_with_orientation(_pattern(), tmp_path / "x.png", 6)  # 6: shown turned 90 degrees clockwise
    out = io.read_image(tmp_path / "x.png")
    assert out.shape == (W, H, 3)
    np.testing.assert_allclose(out, np.rot90(_pattern(), k=-1) / 255.0, atol=1e-6)


# -- image + trimap -------------------------------------------------------------------------------
def test_load_pair_trimap_in_displayed_orientation(tmp_path: Path) -> None:
    _save_with_orientation(_pattern(), tmp_path / "img.jpg", 6)
    shown = np.rot90(_trimap_codes(), k=-1)
    Image.fromarray(np.ascontiguousarray(shown)).save(tmp_path / "tri.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img, tri = io.load_pair(tmp_path / "img.jpg", tmp_path / "tri.png")
    assert img.shape == (W, H, 3) and tri.shape == (W, H)
    np.testing.assert_array_equal(tri, io.trimap_from_array(shown))
    assert np.abs(img - np.rot90(_pattern(), k=-1) / 255.0).mean() < 0.05  # JPEG: blocks blur


def test_load_pair_turns_a_stored_orientation_trimap_alike(tmp_path: Path) -> None:
    _save_with_orientation(_pattern(), tmp_path / "img.jpg", 8)
    Image.fromarray(_trimap_codes()).save(tmp_path / "tri.png")  # made from the stored pixels
    with pytest.warns(UserWarning, match="turned the same way"):
        img, tri = io.load_pair(tmp_path / "img.jpg", tmp_path / "tri.png")
    expected = io.trimap_from_array(np.rot90(_trimap_codes(), k=1))
    np.testing.assert_array_equal(tri, expected)
    assert img.shape[:2] == tri.shape


def test_trimap_with_its_own_exif(tmp_path: Path) -> None:
    _save_with_orientation(_pattern(), tmp_path / "img.png", 3)
    _save_with_orientation(_trimap_codes(), tmp_path / "tri.png", 3)
    img, tri = io.load_pair(tmp_path / "img.png", tmp_path / "tri.png")
    np.testing.assert_array_equal(tri, io.trimap_from_array(np.rot90(_trimap_codes(), 2)))
    np.testing.assert_allclose(img, np.rot90(_pattern(), 2) / 255.0, atol=1e-6)


def test_trimap_values_other_greys_are_unknown() -> None:
    codes = np.array([[0, 1, 102, 128, 200, 254, 255]], np.uint8)
    np.testing.assert_array_equal(io.trimap_from_array(codes), [[0, 0.5, 0.5, 0.5, 0.5, 0.5, 1]])


def test_rgb_trimap_is_read_through_its_grey(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, 20:40] = 128
    rgb[:, 40:] = 255
    rgb[0, 0] = (255, 0, 0)  # a coloured stroke: unknown
    Image.fromarray(rgb).save(tmp_path / "tri.png")
    tri = io.read_trimap(tmp_path / "tri.png")
    assert tri[1, 0] == 0 and tri[1, 30] == 0.5 and tri[1, 50] == 1 and tri[0, 0] == 0.5


def test_sixteen_bit_trimap(tmp_path: Path) -> None:
    codes = np.zeros((H, W), np.uint16)
    codes[:, 20:40] = 32768
    codes[:, 40:] = 65535
    Image.fromarray(codes).save(tmp_path / "tri.png")
    tri = io.read_trimap(tmp_path / "tri.png")
    assert tri[0, 0] == 0 and tri[0, 30] == 0.5 and tri[0, 50] == 1


def test_jpeg_trimap_warns(tmp_path: Path) -> None:
    Image.fromarray(_trimap_codes()).save(tmp_path / "tri.jpg")
    with pytest.warns(UserWarning, match="save trimaps as PNG"):
        io.read_trimap(tmp_path / "tri.jpg")


def test_size_mismatch_and_resize_trimap() -> None:
    img = _pattern()
    small = _trimap_codes(H // 2, W // 2)
    with pytest.raises(InputError, match="resize-trimap"):
        io.load_pair(img, small)
    with pytest.warns(UserWarning, match="resized"):
        _, tri = io.load_pair(img, small, resize_trimap=True)
    assert tri.shape == (H, W)
    assert set(np.unique(tri)) <= {0.0, 0.5, 1.0}


@pytest.mark.parametrize("h,w", [(31, 64), (64, 20)])
def test_too_small(h: int, w: int) -> None:
    with pytest.raises(InputError, match="at least 32 px"):
        io.load_pair(np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8))


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(_pattern()).save(tmp_path / "x.png")
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded before the size check"))
    with pytest.raises(InputError, match="over the limit"):
        io.read_image(tmp_path / "x.png", max_pixels=H * W - 1)


def test_pixel_limit_on_arrays() -> None:
    with pytest.raises(InputError, match="max_pixels"):
        io.load_pair(_pattern(), _trimap_codes(), max_pixels=1000)


@pytest.mark.parametrize(
    "content,match",
    [(None, "no such file"), (b"not an image", "not a readable image"), ("truncated", "not a readable image")],
)
def test_missing_and_corrupt_files(tmp_path: Path, content: bytes | str | None, match: str) -> None:
    path = tmp_path / "x.png"
    if content == "truncated":
        noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)  # does not compress
        Image.fromarray(noise).save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content is not None:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=match):
        io.read_image(path)


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        io.read_image(tmp_path)


def test_read_mask_prefers_transparency(tmp_path: Path) -> None:
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere: the grey level says nothing
    rgba[:, W // 2 :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    mask = io.read_mask(tmp_path / "cut.png")
    assert mask[0, 0] == 0 and mask[0, -1] == 1


# -- output checks and writers --------------------------------------------------------------------
def test_check_output_path_refuses_an_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = tmp_path / "img.png"
    Image.fromarray(_pattern()).save(img)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="also an input"):
        io.check_output_path(Path("img.png"), inputs=[img], overwrite=True)
    (tmp_path / "link.png").symlink_to(img)
    with pytest.raises(InputError, match="also an input"):
        io.check_output_path(tmp_path / "link.png", inputs=[img], overwrite=True)


def test_check_output_path_exists_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"old")
    with pytest.raises(InputError, match="--overwrite"):
        io.check_output_path(tmp_path / "a.png")
    assert io.check_output_path(tmp_path / "a.png", overwrite=True) == tmp_path / "a.png"
    assert io.check_output_path(tmp_path / "new" / "deeper" / "a.png") is not None  # created when written
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InputError, match="is a file, not a folder"):
        io.check_output_path(tmp_path / "file" / "a.png")
    with pytest.raises(InputError, match="cannot hold"):
        io.check_output_path(tmp_path / "a.xyz")
    with pytest.raises(InputError, match="transparency"):
        io.check_output_path(tmp_path / "cut.jpg", purpose="rgba")


def test_check_output_path_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        # root may write into read-only folders, so stand in for an ordinary user's view
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    try:
        with pytest.raises(InputError, match="not writable"):
            io.check_output_path(locked / "a.png")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("bits,ext,mode", [(8, "png", "L"), (16, "png", "I;16"), (16, "tif", "I;16"), (8, "jpg", "L")])
def test_save_alpha_roundtrip(tmp_path: Path, bits: int, ext: str, mode: str) -> None:
    alpha = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    path = tmp_path / f"a.{ext}"
    io.save_alpha(alpha, path, bit_depth=bits)
    with Image.open(path) as im:
        assert im.mode == mode
    back = io.read_alpha(path)
    tol = {8: 1 / 255, 16: 1 / 65535}[bits] * (8 if ext == "jpg" else 0.6)
    np.testing.assert_allclose(back, alpha, atol=tol)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left behind"


def test_save_alpha_16_bit_needs_png_or_tiff(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="16-bit"):
        io.save_alpha(np.zeros((H, W), np.float32), tmp_path / "a.jpg", bit_depth=16)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"precious")

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(InputError, match="No space left"):
        io.save_alpha(np.zeros((H, W), np.float32), path)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_save_rgba_rgb_trimap_frames(tmp_path: Path) -> None:
    rgba = np.random.default_rng(0).random((H, W, 4)).astype(np.float32)
    io.save_rgba(rgba, tmp_path / "c.webp")
    io.save_rgb(rgba[..., :3], tmp_path / "c.jpg")
    io.save_trimap(io.trimap_from_array(_trimap_codes()), tmp_path / "t.png")
    frames = np.stack([np.full((H, W), v, np.float32) for v in (0.0, 0.5, 1.0)])
    io.save_frames(frames, tmp_path / "f.gif")
    with Image.open(tmp_path / "c.webp") as im:
        assert im.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "t.png")), _trimap_codes())
    with Image.open(tmp_path / "f.gif") as im:
        assert im.n_frames == 3
    with pytest.raises(InputError, match="blur"):
        io.save_trimap(np.zeros((H, W), np.float32), tmp_path / "t.jpg")


def test_training_backgrounds_drop_their_alpha_quietly(tmp_path: Path) -> None:
    # Some wallpapers are RGBA; a warning per training sample flooded the log (phase 5).
    import warnings

    from diffmatte.data.files import load_rgb, read_background

    path = tmp_path / "wallpaper.png"
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 100
    Image.fromarray(rgba, "RGBA").save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_background(path)[0, 0].tolist() == [200, 0, 0]
    with pytest.warns(UserWarning, match="alpha channel is ignored"):
        load_rgb(path)  # a training photo with alpha still says so


def test_one_quantiser_rounds_as_the_dim_metrics_files_are_written(tmp_path: Path) -> None:
    """cv2.imwrite's rule (half to even, saturated) everywhere a float becomes 8 bits."""
    import diffmatte.evaluation.run as evaluation_run
    import diffmatte.server.engine as server_engine
    import diffmatte.video.container as video_container
    from diffmatte.writers import save_alpha, to_uint8

    x = np.array([[0.5, 1.5, 2.5, 254.5, -3.0, 300.0]], np.float64) / 255
    assert to_uint8(x).tolist() == [[0, 2, 2, 254, 0, 255]]
    assert to_uint8(np.array([np.nan])).tolist() == [0]
    save_alpha(x.astype(np.float32), tmp_path / "a.png")
    assert np.asarray(Image.open(tmp_path / "a.png")).tolist() == to_uint8(x.astype(np.float32)).tolist()
    for module in (evaluation_run, server_engine, video_container):
        assert module.to_uint8 is to_uint8
