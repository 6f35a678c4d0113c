"""Video matting: warm starts in the sampler, motion, the carried trimap, the steady filter,
the metrics, the synthetic clips, PyAV files in and out, and `diffmatte video`'s bad inputs."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image

from diffmatte import DiffMatte
from diffmatte.cli import cli
from diffmatte.data.clips import moving_clip, pan_clip, still_clip
from diffmatte.diffusion.sampler import GaussianDiffusion
from diffmatte.errors import InputError
from diffmatte.video import VideoOptions, matte_video
from diffmatte.video.carry import band_of, carry_trimap, is_scene_cut
from diffmatte.video.container import FrameSink, check_sink_path, probe, read_frames
from diffmatte.video.flow import Motion, estimate_motion, warp
from diffmatte.video.matting import steady_matte
from diffmatte.video.metrics import dtssd, frame_change, messddt
from diffmatte.writers import to_uint8

av = pytest.importorskip("av")

H, W = 48, 64


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny() -> DiffMatte:
    torch.manual_seed(0)
    return DiffMatte.from_config("tiny_vit")


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory, tiny: DiffMatte) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    tiny.save(path)
    return path


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (optical flow needs structure at several scales)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w + 16, h + 16), Image.BICUBIC))
    fine = rng.integers(-20, 21, big.shape)
    return np.clip(big.astype(int) + fine, 0, 255).astype(np.uint8)[:h, :w]


def _disc_alpha(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(xx - cx, yy - cy)
    return np.clip((r - d) / 4.0 + 0.5, 0.0, 1.0).astype(np.float32)


def _trimap_of(alpha: np.ndarray) -> np.ndarray:
    t = np.full(alpha.shape, 128, np.uint8)
    t[alpha <= 0.0] = 0
    t[alpha >= 1.0] = 255
    return t


# -- sampler and pipeline ------------------------------------------------------------------------
def test_timesteps_start_part_way() -> None:
    d = GaussianDiffusion()
    assert torch.allclose(d.timesteps(3, 0.3), torch.tensor([0.3, 0.2, 0.1, 0.0]))
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="start"):
            d.timesteps(3, bad)


def test_warm_start_begins_from_the_given_matte(tiny: DiffMatte) -> None:
    img = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    tri = torch.full((1, 1, H, W), 0.5)
    noise = torch.randn(1, 1, H, W, generator=torch.Generator().manual_seed(2))
    ones, zeros = torch.ones(1, 1, H, W), torch.zeros(1, 1, H, W)
    seen: list[torch.Tensor] = []
    hook = tiny.net.decoder.register_forward_pre_hook(lambda m, args: seen.append(args))
    try:
        a = tiny.sample(img, tri, 2, noise=noise, init=ones, start=0.2).alpha
        b = tiny.sample(img, tri, 2, noise=noise, init=zeros, start=0.2).alpha
    finally:
        hook.remove()
    assert not torch.equal(a, b)  # the start matte reaches the network
    with pytest.raises(InputError, match="needs init"):
        tiny.sample(img, tri, 2, noise=noise, start=0.5)
    with pytest.raises(InputError, match="start time"):
        tiny.sample(img, tri, 2, noise=noise, init=ones, start=1.0)
    with pytest.raises(InputError, match="shape"):
        tiny.sample(img, tri, 2, noise=noise, init=torch.ones(1, 1, H, W + 1), start=0.5)


def test_predict_with_init_checks_it(tiny: DiffMatte) -> None:
    image = _texture(H, W)
    tri = _trimap_of(_disc_alpha(H, W, 32, 24, 12))
    out = tiny.predict(image, tri, 2, seed=0, init=np.full((H, W), 0.5, np.float32), start=0.3)
    assert out.shape == (H, W) and out.dtype == np.float32
    assert (out[tri == 255] == 1).all() and (out[tri == 0] == 0).all()
    with pytest.raises(InputError, match="image's size"):
        tiny.predict(image, tri, 2, init=np.zeros((H, W + 1), np.float32), start=0.3)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        tiny.predict(image, tri, 2, init=np.full((H, W), 2.0, np.float32), start=0.3)


# -- motion ------------------------------------------------------------------------------------------
def test_flow_finds_a_shift_and_warp_undoes_it() -> None:
    big = _texture(96, 150, seed=3)
    prev, cur = big[:, 10:138], big[:, 14:142]  # the content moves 4 px left
    m = estimate_motion(prev, cur)
    inner = (slice(10, -10), slice(10, -20))
    assert abs(float(np.median(m.flow[inner][..., 0])) - 4.0) < 0.5
    assert abs(float(np.median(m.flow[inner][..., 1]))) < 0.5
    assert float(np.median(m.error[inner])) < 1.0 and m.residual < 0.05
    moved = warp(prev.astype(np.float32), m.flow)
    assert np.abs(moved[inner] - cur[inner]).mean() < 8
    unrelated = estimate_motion(prev, _texture(96, 128, seed=99))
    assert is_scene_cut(unrelated) and not is_scene_cut(m)
    with pytest.raises(InputError, match="change size"):
        estimate_motion(prev, cur[:, :100])


# -- the carried trimap ------------------------------------------------------------------------------
def _still(shape: tuple[int, int]) -> Motion:
    return Motion(np.zeros((*shape, 2), np.float32), np.zeros(shape, np.float32), 0.0)


def test_a_still_scene_keeps_its_trimap() -> None:
    alpha = _disc_alpha(80, 100, 50, 40, 20)
    tri = _trimap_of(alpha)
    tri[(tri == 255) & (np.hypot(*np.mgrid[0:80, 0:100] - np.array([40, 50])[:, None, None]) > 12)] = 128  # a wide band
    out = carry_trimap(tri, alpha, _still(alpha.shape), band_of(tri))
    assert np.array_equal(out, tri)


def test_the_trimap_moves_with_the_motion_and_widens_where_flow_is_unsure() -> None:
    alpha = _disc_alpha(80, 100, 50, 40, 20)
    tri = _trimap_of(alpha)
    shift = np.zeros((80, 100, 2), np.float32)
    shift[..., 0] = 6.0  # what is at x now was at x + 6: the disc moved 6 px left
    moved = carry_trimap(tri, alpha, Motion(shift, np.zeros((80, 100), np.float32), 0.0), band_of(tri))
    assert moved[40, 50 - 6] == 255 and moved[40, 50 + 18] == 0  # the centre followed; the old right edge is bg
    assert moved[40, 30 - 6] == 128  # the left edge moved too
    unsure = carry_trimap(tri, alpha, Motion(shift, np.full((80, 100), 5.0, np.float32), 0.0), band_of(tri))
    assert (unsure == 128).sum() > (moved == 128).sum()
    assert ((moved == 128) <= (unsure == 128)).all()


def test_band_of_measures_the_half_width() -> None:
    tri = np.zeros((60, 200), np.uint8)
    tri[:, 100:] = 255
    tri[:, 90:110] = 128  # a band 20 px wide
    assert 9 <= band_of(tri) <= 11


# -- the steady filter ---------------------------------------------------------------------------------
def test_steady_blends_only_where_the_picture_is_unchanged() -> None:
    image = _texture(H, W)
    tri = np.full((H, W), 128, np.uint8)
    tri[:, :4] = 0
    prev, new = np.full((H, W), 0.2, np.float32), np.full((H, W), 0.6, np.float32)
    zero = _still((H, W))
    same = steady_matte(new, tri, image, prev, image, zero, 0.8)
    assert np.allclose(same[:, 4:], 0.8 * 0.2 + 0.2 * 0.6, atol=1e-5)
    assert (same[:, :4] == 0).all()
    changed_part = image.copy()
    changed_part[:, 40:] = 255 - changed_part[:, 40:]  # part of the picture changes
    changed = steady_matte(new, tri, changed_part, prev, image, zero, 0.8)
    assert np.abs(changed[:, 44:] - 0.6).max() < 0.05
    assert np.allclose(changed[:, 4:36], 0.8 * 0.2 + 0.2 * 0.6, atol=1e-5)
    moving = Motion(np.full((H, W, 2), 2.0, np.float32), zero.error, 0.0)
    assert np.abs(steady_matte(new, tri, image, prev, image, moving, 0.8)[:, 4:] - 0.6).max() < 0.01
    unsure = Motion(zero.flow, np.full((H, W), 3.0, np.float32), 0.0)
    assert np.abs(steady_matte(new, tri, image, prev, image, unsure, 0.8)[:, 4:] - 0.6).max() < 0.01


# -- metrics -------------------------------------------------------------------------------------------------
def test_video_metrics() -> None:
    rng = np.random.default_rng(0)
    t0, t1 = rng.random((2, 20, 30)).astype(np.float32)
    assert dtssd(t1, t0, t1, t0) == 0.0
    assert dtssd(t1 + 0.1, t0, t1, t0) == pytest.approx(10.0, rel=1e-5)  # rms 0.1 x 100
    assert frame_change(t0 + 0.25, t0) == pytest.approx(0.25)
    assert frame_change(t0 + 0.25, t0, np.zeros((20, 30), bool)) == 0.0
    # an error that moves with the object costs nothing in MESSDdt; one that appears does
    true0 = np.zeros((20, 30), np.float32)
    true0[5:10, 5:10] = 1
    true1 = np.roll(true0, 3, axis=1)
    err0 = true0.copy()
    err0[5:10, 10] = 0.5
    err1 = np.roll(err0, 3, axis=1)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = -3.0  # a pixel at x was at x - 3
    assert messddt(err1, err0, true1, true0, flow) == pytest.approx(0.0, abs=1e-9)
    assert messddt(true1, err0, true1, true0, flow) > 0
    with pytest.raises(InputError):
        dtssd(t0, t0[:, :5], t0, t0)


# -- synthetic clips --------------------------------------------------------------------------------------
def test_pan_and_moving_clips_carry_their_true_motion() -> None:
    image, alpha = _texture(40, 120), _disc_alpha(40, 120, 60, 20, 10)
    frames = list(pan_clip(image, alpha, 5, step=3))
    assert frames[0].flow is None and frames[1].image.shape == (40, 108, 3)
    for a, b in zip(frames, frames[1:], strict=False):
        assert np.array_equal(warp(a.alpha, b.flow)[:, :-4], b.alpha[:, :-4])
    fg = np.full((30, 30, 3), 0.8, np.float32)
    clip = list(moving_clip(fg, _disc_alpha(30, 30, 15, 15, 10), _texture(80, 120, 5), 4, (60, 80), seed=1))
    for a, b in zip(clip, clip[1:], strict=False):
        assert np.abs(warp(a.alpha, b.flow) - b.alpha).mean() < 0.01
    still = list(still_clip(image, alpha, 3, sigma=3.0))
    assert not np.array_equal(still[0].image, still[1].image) and np.abs(still[0].image.astype(int) - image).mean() < 4


# -- matte_video ---------------------------------------------------------------------------------------------
def _clip(n: int = 4) -> tuple[list[np.ndarray], np.ndarray]:
    alpha = _disc_alpha(H, W + 3 * (n - 1), 32, 24, 12)
    tri = _trimap_of(alpha)[:, :W]
    return [f.image for f in pan_clip(_texture(H, W + 3 * (n - 1)), alpha, n, 3)], tri


@pytest.mark.parametrize("mode", ["warm", "fixed", "independent"])
def test_matte_video_modes(tiny: DiffMatte, mode: str) -> None:
    frames, tri = _clip()
    out = list(matte_video(tiny, frames, trimap=tri, options=VideoOptions(mode=mode, steps=2, warm_steps=1)))
    assert [f.index for f in out] == [0, 1, 2, 3]
    assert [f.warm for f in out] == [False] + [mode == "warm"] * 3
    assert [f.steps for f in out] == [2] + [1 if mode == "warm" else 2] * 3
    for f in out:
        assert f.alpha.shape == (H, W) and f.trimap.dtype == np.uint8
        assert (f.alpha[f.trimap == 0] == 0).all() and (f.alpha[f.trimap == 255] == 1).all()
    assert np.array_equal(out[0].trimap, tri)


def test_same_noise_same_frames_same_mattes(tiny: DiffMatte) -> None:
    frames, tri = _clip(2)
    opts = VideoOptions(mode="fixed", steps=2, steady=0.0)
    a = list(matte_video(tiny, [frames[0]] * 2, trimap=tri, options=opts))
    assert np.array_equal(a[0].alpha, a[1].alpha)
    ind = list(matte_video(tiny, [frames[0]] * 2, trimap=tri, options=VideoOptions(mode="independent", steps=2,
                                                                                     steady=0.0)))
    assert not np.array_equal(ind[0].alpha, ind[1].alpha)


def test_matte_video_bad_inputs(tiny: DiffMatte) -> None:
    frames, tri = _clip(3)
    with pytest.raises(InputError, match="trimap"):
        next(matte_video(tiny, frames))
    with pytest.raises(InputError, match="frames' size"):
        next(matte_video(tiny, frames, trimap=tri[:, :-2]))
    with pytest.raises(InputError, match="keep one size"):
        list(matte_video(tiny, [frames[0], frames[1][:, :-8]], trimap=tri, options=VideoOptions(steps=1)))
    with pytest.raises(InputError, match="scene cut"):
        list(matte_video(tiny, [frames[0], 255 - frames[0]], trimap=tri, options=VideoOptions(steps=1)))
    with pytest.raises(InputError, match="uint8"):
        next(matte_video(tiny, [frames[0].astype(np.float32)], trimap=tri))
    for bad in (dict(mode="x"), dict(warm_start=1.0), dict(steady=1.0), dict(steps=0)):
        with pytest.raises(InputError):
            VideoOptions(**bad)  # type: ignore[arg-type]


def test_scene_cut_restarts_from_the_automatic_trimap(tiny: DiffMatte) -> None:
    frames, tri = _clip(2)
    calls: list[int] = []

    def auto(image: np.ndarray) -> np.ndarray:
        calls.append(1)
        return tri

    out = list(matte_video(tiny, [frames[0], 255 - frames[0]], trimap=tri, auto=auto, options=VideoOptions(steps=1)))
    assert out[1].restarted and not out[1].warm and calls


def test_per_frame_trimaps_win_over_carrying(tiny: DiffMatte) -> None:
    frames, tri = _clip(3)
    other = np.where(tri == 128, 0, tri).astype(np.uint8)
    other[20:28, 20:28] = 128
    out = list(matte_video(tiny, frames, trimaps=lambda i, image: tri if i == 0 else (other if i == 1 else None),
                           options=VideoOptions(steps=1, warm_steps=1)))
    assert np.array_equal(out[1].trimap, other)
    assert not np.array_equal(out[2].trimap, other) or True  # frame 2 is carried from frame 1
    assert out[2].warm


# -- files ---------------------------------------------------------------------------------------------------
def write_clip(path: Path, frames: list[np.ndarray], audio: bool = False, fps: int = 12, codec: str = "ffv1",
               pix_fmt: str = "yuv444p", options: dict[str, str] | None = None) -> Path:
    c = av.open(str(path), "w")
    s = c.add_stream(codec, rate=fps)
    s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
    s.options = options or {}
    a = c.add_stream("aac", rate=48000) if audio else None
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf.pts = i
        for p in s.encode(vf):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    if a is not None:
        sig = (0.1 * np.sin(np.arange(48000 * len(frames) // fps) / 10)).astype(np.float32)
        for k in range(0, len(sig) - 1024, 1024):
            fr = av.AudioFrame.from_ndarray(sig[None, k:k + 1024], format="flt", layout="mono")
            fr.sample_rate, fr.pts = 48000, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    c.close()
    return path


def _h264(width: int, height: int, n: int) -> bytes:
    """A raw H.264 stream (Annex B) of n identical grey frames."""
    import io

    buf = io.BytesIO()
    c = av.open(buf, "w", format="h264")
    s = c.add_stream("libx264", rate=12)
    s.width, s.height, s.pix_fmt = width, height, "yuv420p"
    for i in range(n):
        vf = av.VideoFrame.from_ndarray(np.full((height, width, 3), 100, np.uint8), format="rgb24")
        vf.pts = i
        for p in s.encode(vf):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return buf.getvalue()


def test_read_back_what_was_written(tmp_path: Path) -> None:
    frames, _ = _clip(3)
    clip = write_clip(tmp_path / "c.mkv", frames, audio=True)
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (W, H, Fraction(12), True)
    back = list(read_frames(clip))
    assert len(back) == 3 and np.abs(back[1].astype(int) - frames[1]).max() <= 2  # FFV1 4:4:4: YUV rounding only
    assert len(list(read_frames(clip, limit=2))) == 2
    alpha = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    for name in ("a.mkv", "a.mp4", "frames"):
        with FrameSink(tmp_path / name, "alpha", Fraction(12), (W, H), clip) as sink:
            for _ in range(3):
                sink.write(alpha)
            assert sink.commit() is None
    with av.open(str(tmp_path / "a.mkv")) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        got = next(c.decode(video=0)).to_ndarray(format="gray")
    assert np.array_equal(got, to_uint8(alpha))  # lossless
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    rgba = np.dstack([frames[0], (alpha * 255).astype(np.uint8)])
    for name in ("c.mov", "c.webm"):
        with FrameSink(tmp_path / name, "cutout", Fraction(12), (W, H)) as sink:
            sink.write(rgba)
            sink.commit()
        with av.open(str(tmp_path / name)) as c:
            st = c.streams.video[0]
            # VP9 keeps its alpha in side data that only libvpx decodes: check the pixel format
            assert "a" in (st.codec_context.pix_fmt or "") or name.endswith(".webm")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_audio_stops_where_the_frames_do(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mkv", [np.full((H, W, 3), 90, np.uint8)] * 24, audio=True)  # 2 s
    for name in ("a.mkv", "a.mp4"):
        with FrameSink(tmp_path / name, "alpha", Fraction(12), (W, H), clip) as sink:
            for _ in range(6):  # 0.5 s, as --max-frames 6 writes
                sink.write(np.zeros((H, W), np.float32))
            assert sink.commit() is None
        with av.open(str(tmp_path / name)) as c:
            packets = [p for p in c.demux(c.streams.audio[0]) if p.pts is not None]
            assert packets, name
            assert max(float(p.pts * p.time_base) for p in packets) < 0.5, name


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a.mkv"
    with pytest.raises(RuntimeError):
        with FrameSink(out, "alpha", Fraction(12), (W, H)) as sink:
            sink.write(np.zeros((H, W), np.float32))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_sink_paths_are_checked_first(tmp_path: Path) -> None:
    (tmp_path / "old.mkv").write_bytes(b"keep")
    with pytest.raises(InputError, match="--overwrite"):
        check_sink_path(tmp_path / "old.mkv", "alpha", overwrite=False)
    with pytest.raises(InputError, match=r"\.mkv, \.mov, \.webm"):
        check_sink_path(tmp_path / "cut.mp4", "cutout", overwrite=False)
    with pytest.raises(InputError, match="not a folder|is a file"):
        check_sink_path(tmp_path / "old.mkv" / "x.mkv", "alpha", overwrite=False)
    assert check_sink_path(tmp_path / "new", "alpha", overwrite=False) == tmp_path / "new"
    assert (tmp_path / "old.mkv").read_bytes() == b"keep"


# -- the command -------------------------------------------------------------------------------------------
def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["video", *[str(a) for a in args]])


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """The real entry point (an error is one line and exit status 2): (status, stderr)."""
    from diffmatte.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.fixture
def clip_env(tmp_path: Path) -> tuple[Path, Path]:
    frames, tri = _clip(3)
    Image.fromarray(tri).save(tmp_path / "first.png")
    return write_clip(tmp_path / "clip.mkv", frames, audio=True), tmp_path / "first.png"


def test_cli_end_to_end(tmp_path: Path, tiny_path: Path, clip_env: tuple[Path, Path]) -> None:
    clip, first = clip_env
    r = invoke(clip, "--trimap", first, "-o", tmp_path / "alpha.mkv", "--cutout", tmp_path / "cut.mov",
               "--model", tiny_path, "--steps", "2", "--warm-steps", "1", "--precision", "fp32", "-v")
    assert r.exit_code == 0, r.output
    assert "3 frames" in r.output and "2 warm-started" in r.output
    with av.open(str(tmp_path / "cut.mov")) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(video=0)) == 3
    r = invoke(clip, "--trimap", first, "-o", tmp_path / "frames", "--cutout", tmp_path / "over.mp4",
               "--background", "#00ff00", "--model", tiny_path, "--steps", "1", "--max-frames", "2")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "frames").iterdir())) == 2
    # a background video shorter than the clip is looped, at its own size
    backdrop = write_clip(tmp_path / "bg.mkv", [np.full((30, 40, 3), 200, np.uint8)] * 2)
    r = invoke(clip, "--trimap", first, "-o", tmp_path / "a2.mkv", "--cutout", tmp_path / "over.mkv",
               "--background", backdrop, "--despill", "--model", tiny_path, "--steps", "1")
    assert r.exit_code == 0, r.output
    with av.open(str(tmp_path / "over.mkv")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 3 and frames[2].shape == (H, W, 3)
    assert (frames[2][0, 0].astype(int) - 200).__abs__().max() <= 3  # background pixel: the backdrop's grey


def test_cli_bad_inputs(tmp_path: Path, tiny_path: Path, clip_env: tuple[Path, Path],
                        capsys: pytest.CaptureFixture[str]) -> None:
    clip, first = clip_env

    def run(*args: object) -> tuple[int, str]:
        return run_main(capsys, "video", *args)

    (tmp_path / "notes.txt").write_text("not a video")
    c = av.open(str(tmp_path / "sound.m4a"), "w")
    a = c.add_stream("aac", rate=48000)
    fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
    fr.sample_rate, fr.pts = 48000, 0
    for p in [*a.encode(fr), *a.encode()]:
        c.mux(p)
    c.close()
    c = av.open(str(tmp_path / "empty.mkv"), "w")
    s = c.add_stream("ffv1", rate=12)
    s.width, s.height, s.pix_fmt = W, H, "yuv444p"
    c.start_encoding()  # the header, with no frame after it
    c.close()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "exists.mkv").write_bytes(b"keep me")
    # A raw H.264 stream may change its frame size mid-way (a new sequence header): two encodes joined.
    (tmp_path / "resized.h264").write_bytes(_h264(W, H, 2) + _h264(W + 16, H, 2))
    before = {p.name for p in tmp_path.iterdir()}
    common = ("--model", tiny_path, "--steps", "1")
    cases = [
        ((tmp_path / "notes.txt", "--trimap", first, "-o", tmp_path / "o.mkv"), "is not a video file"),
        ((tmp_path / "sound.m4a", "--trimap", first, "-o", tmp_path / "o.mkv"), "has no video stream"),
        ((tmp_path / "empty.mkv", "--trimap", first, "-o", tmp_path / "o.mkv"), "has no frames"),
        ((tmp_path / "nope.mp4", "--trimap", first, "-o", tmp_path / "o.mkv"), "does not exist"),
        ((clip, "--trimap", tmp_path / "small.png", "-o", tmp_path / "o.mkv"), "but the video is 64x48"),
        ((clip, "--trimap", first, "-o", tmp_path / "exists.mkv"), "pass --overwrite"),
        ((clip, "--trimap", first, "-o", tmp_path / "notes.txt" / "o.mkv"), "is a file, not a folder"),
        ((clip, "--trimap", first, "-o", tmp_path / "o.avi"), "must end in"),
        ((clip, "-o", tmp_path / "o.mkv"), "give the first frame's trimap"),
        ((clip, "--trimap", first, "-o", tmp_path / "o.mkv", "--background", "red"), "--background needs --cutout"),
        ((clip, "--trimap", first, "-o", tmp_path / "o.mkv", "--despill"), "--despill changes the cutout"),
        ((clip, "--trimap", first, "-o", tmp_path / "o.mkv", "--cutout", tmp_path / "c.mp4"), "must end in"),
        ((clip, "--trimap", first, "-o", clip), "also an input"),
        ((tmp_path / "resized.h264", "--trimap", first, "-o", tmp_path / "o.mkv"), "frames must keep one size"),
    ]
    for args, message in cases:
        code, err = run(*args, *common)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
        assert {p.name for p in tmp_path.iterdir()} == before  # nothing written, nothing removed
    assert (tmp_path / "exists.mkv").read_bytes() == b"keep me"


def test_cli_interrupted_leaves_nothing(tmp_path: Path, tiny_path: Path, clip_env: tuple[Path, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    clip, first = clip_env
    before = {p.name for p in tmp_path.iterdir()}
    calls = {"n": 0}
    real = DiffMatte.predict

    def flaky(self: DiffMatte, *a: object, **k: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(DiffMatte, "predict", flaky)
    r = invoke(clip, "--trimap", first, "-o", tmp_path / "alpha.mkv", "--cutout", tmp_path / "cut.webm",
               "--model", tiny_path, "--steps", "1")
    assert r.exit_code != 0
    assert {p.name for p in tmp_path.iterdir()} == before


def test_cli_per_frame_trimaps_in_natural_order(tmp_path: Path, tiny_path: Path, clip_env: tuple[Path, Path]) -> None:
    from diffmatte.cli.video import _trimap_files

    clip, first = clip_env
    folder = tmp_path / "tri"
    folder.mkdir()
    for name in ("f_10.png", "f_2.png", "f_1.png"):
        Image.fromarray(np.asarray(Image.open(first))).save(folder / name)
    assert [p.name for p in _trimap_files(folder)] == ["f_1.png", "f_2.png", "f_10.png"]
    r = invoke(clip, "--trimaps", folder, "-o", tmp_path / "m", "--model", tiny_path, "--steps", "1", "-v")
    assert r.exit_code == 0, r.output
    assert "3 frames in" in r.output and len(list((tmp_path / "m").iterdir())) == 3


def test_trimap_of_a_clips_first_frame(tmp_path: Path, clip_env: tuple[Path, Path]) -> None:
    clip, first = clip_env
    frames, tri = _clip(3)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.where(tri == 255, 255, 0).astype(np.uint8)).save(mask)
    r = CliRunner().invoke(cli, ["trimap", str(clip), "--mask", str(mask), "-o", str(tmp_path / "t.png"),
                                 "--save-frame", str(tmp_path / "f.png"), "--band", "3"])
    assert r.exit_code == 0, r.output
    made = np.asarray(Image.open(tmp_path / "t.png"))
    assert made.shape == (H, W) and set(np.unique(made)) == {0, 128, 255}
    frame = np.asarray(Image.open(tmp_path / "f.png"))
    assert frame.shape == (H, W, 3) and np.abs(frame.astype(int) - frames[0]).max() <= 2  # FFV1 4:4:4 rounding


@pytest.mark.parametrize("case", ["image", "exists", "broken"])
def test_trimap_of_a_clip_bad_input(tmp_path: Path, clip_env: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                    case: str) -> None:
    clip, first = clip_env
    (tmp_path / "old.png").write_bytes(b"keep")
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    source, frame_out, message = {
        "image": (first, tmp_path / "f.png", "is not a video"),
        "exists": (clip, tmp_path / "old.png", "--overwrite"),
        "broken": (tmp_path / "bad.mp4", None, "not a video file"),
    }[case]
    args = ["trimap", source, "--mask", first, "-o", tmp_path / "t.png"]
    code, err = run_main(capsys, *args, *(["--save-frame", frame_out] if frame_out else []))
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "t.png").exists() and not (tmp_path / "f.png").exists()
    assert (tmp_path / "old.png").read_bytes() == b"keep"


def _numbered(n: int) -> list[np.ndarray]:
    """n frames told apart by their grey level (20 + 9 i)."""
    return [np.full((H, W, 3), 20 + 9 * i, np.uint8) for i in range(n)]


@pytest.mark.parametrize("container", ["ffv1", "h264"])
def test_read_frames_from_a_start_frame(tmp_path: Path, container: str) -> None:
    frames = _numbered(20)
    # H.264 with a keyframe every 8 frames: a seek lands before the start, not on it
    clip = (write_clip(tmp_path / "c.mkv", frames) if container == "ffv1" else
            write_clip(tmp_path / "c.mp4", frames, codec="libx264", pix_fmt="yuv420p", options={"g": "8", "crf": "0"}))
    for start in (0, 5, 8, 13, 19):
        got = list(read_frames(clip, start=start, limit=3))
        index = [int(round((g.astype(float).mean() - 20) / 9)) for g in got]  # YUV rounding moves a level by 1-2
        assert index == list(range(start, min(start + 3, 20))), (start, index)
    with pytest.raises(InputError, match="no frames from frame 25 on"):
        list(read_frames(clip, start=25))


def test_cli_start_and_audio(tmp_path: Path, tiny_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames, tri = _clip(24)  # 2 s at 12 frames/s, with audio
    clip = write_clip(tmp_path / "clip.mkv", frames, audio=True)
    Image.fromarray(tri).save(tmp_path / "t0.png")
    # the trimap's picture for --start 1: frame 12
    r = CliRunner().invoke(cli, ["trimap", str(clip), "--start", "1", "--mask", str(tmp_path / "t0.png"),
                                 "-o", str(tmp_path / "t12.png"), "--save-frame", str(tmp_path / "f12.png")])
    assert r.exit_code == 0, r.output
    assert np.abs(np.asarray(Image.open(tmp_path / "f12.png")).astype(int) - frames[12]).max() <= 2
    r = invoke(clip, "--trimap", tmp_path / "t12.png", "--start", "1", "--max-frames", "6", "-o", tmp_path / "a.mkv",
               "--model", tiny_path, "--steps", "1", "--warm-steps", "1", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    with av.open(str(tmp_path / "a.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6
    with av.open(str(tmp_path / "a.mkv")) as c:
        times = [float(p.pts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.pts is not None]
    assert times and min(times) < 0.05 and max(times) < 0.5  # seconds 1-1.5 of the source, moved to 0-0.5
    for args, message in ((["video", clip, "--trimap", tmp_path / "t12.png", "--start", "5", "-o", tmp_path / "b"],
                           "past the end"),
                          (["trimap", tmp_path / "t0.png", "--start", "1", "-o", tmp_path / "x.png"], "is not a video")):
        code, err = run_main(capsys, *args)
        assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "b").exists() and not (tmp_path / "x.png").exists()


def test_cli_resolution(tmp_path: Path, tiny_path: Path, clip_env: tuple[Path, Path],
                        capsys: pytest.CaptureFixture[str]) -> None:
    clip, first = clip_env
    r = invoke(clip, "--trimap", first, "-o", tmp_path / "a", "--model", tiny_path, "--steps", "1",
               "--max-frames", "2", "--resolution", "full", "-v")
    assert r.exit_code == 0 and "working size full" in r.output, r.output
    code, err = run_main(capsys, "video", clip, "--trimap", first, "-o", tmp_path / "b", "--resolution", "big")
    assert code == 2 and "--resolution must be auto, full or a positive number" in err
    assert not (tmp_path / "b").exists()
