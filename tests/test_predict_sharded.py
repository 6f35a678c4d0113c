"""`predict --images` under torchrun: disjoint shards, outputs byte-identical to one process,
one summary line, and a killed rank leaves nothing half-written that a re-run does not finish."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import diffmatte
from diffmatte import DiffMatte
from diffmatte.sharding import World

SRC = Path(diffmatte.__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _folder(root: Path, n: int, size: int) -> tuple[Path, Path, Path]:
    torch.manual_seed(0)
    model = root / "tiny.safetensors"
    DiffMatte.from_config("tiny_vit").save(model)
    images, trimaps = root / "images", root / "trimaps"
    images.mkdir()
    trimaps.mkdir()
    for i in range(n):
        rng = np.random.default_rng(i)
        h, w = size + 8 * (i % 3), size
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / f"im{i:02d}.png")
        tri = np.full((h, w), 128, np.uint8)
        tri[:, : w // 3] = 0
        tri[:, -w // 3 :] = 255
        Image.fromarray(tri).save(trimaps / f"im{i:02d}.png")
    return model, images, trimaps


def _predict(processes: int, *args: object) -> list[str]:
    """The command of one process (python -m diffmatte) or of ``processes`` under torchrun."""
    if processes == 1:
        return [sys.executable, "-m", "diffmatte", "predict", *map(str, args)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return [*launcher, "-m", "diffmatte", "predict", *map(str, args)]


def _summaries(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " matted, " in line]


def test_shards_are_disjoint_deterministic_and_complete() -> None:
    items = list(range(11))
    shards = [World(r, 3).shard(items) for r in range(3)]
    assert sorted(x for s in shards for x in s) == items
    assert shards == [World(r, 3).shard(items) for r in range(3)]
    assert World().shard(items) == items


@pytest.mark.slow
def test_two_processes_write_what_one_process_writes(tmp_path: Path) -> None:
    model, images, trimaps = _folder(tmp_path, 5, 48)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(images / "orphan.png")  # no trimap: one failure
    outs = {}
    for n in (1, 2):
        out, cut = tmp_path / f"alpha{n}", tmp_path / f"cut{n}"
        args = ["--images", images, "--trimaps", trimaps, "-o", out, "--cutout", cut, "--model", model, "--steps", 3]
        proc = subprocess.run(_predict(n, *args), env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, proc.stderr  # the orphan failed, the rest were matted
        # one summary line (rank 0's), counting every rank's files once
        assert _summaries(proc.stderr) == [
            "5 matted, 0 skipped (outputs exist; --overwrite redoes them), 1 failed; "
            f"written to {out}/, {cut}/"  # every rank's folders, once
        ]
        assert proc.stderr.count("failed: orphan.png: no trimap") == 1
        outs[n] = {f"{d.name[:-1]}/{p.name}": p.read_bytes() for d in (out, cut) for p in sorted(d.iterdir())}
    assert len(outs[1]) == 10
    assert outs[2] == outs[1]  # byte for byte


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks' processes through /proc")
@pytest.mark.slow
def test_a_killed_rank_leaves_no_partial_output_and_a_rerun_completes_the_set(tmp_path: Path) -> None:
    n = 10
    model, images, trimaps = _folder(tmp_path, n, 96)
    common = ["--images", images, "--trimaps", trimaps, "--model", model, "--steps", 12]
    ref = tmp_path / "reference"
    subprocess.run(_predict(1, *common, "-o", ref), env=_env(), capture_output=True, timeout=600, check=True)
    out = tmp_path / "out"
    run = subprocess.Popen(_predict(2, *common, "-o", out), env=_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before any output appeared"
        time.sleep(0.02)
    workers = _children(run.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)  # one rank dies, torchrun then stops the other
    _, stderr = run.communicate(timeout=120)
    assert run.returncode != 0
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert 0 < len(written) < n, "the kill came too late to interrupt the run"
    for name in written:  # every visible output is whole: the one a full run writes
        assert (out / name).read_bytes() == (ref / name).read_bytes()
    rerun = subprocess.run(_predict(2, *common, "-o", out), env=_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert _summaries(rerun.stderr) == [
        f"{n - len(written)} matted, {len(written)} skipped (outputs exist; --overwrite redoes them), 0 failed; "
        f"written to {out}/"
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())  # no temporary files left
    for p in ref.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes()
