"""Train a DiffMatte model: one file that reads in the order it runs.

The configuration (presets, TOML, ``--set``) is in :mod:`diffmatte.training.config`. Here:
distributed setup from torchrun's environment, data, model and optimiser, then the loop: draw times and noise, run the stage's passes,
losses, step, log, validate, checkpoint. The objective is SPEC §6 (diffusion/losses.py),
the data pipeline SPEC §7 (diffmatte.data).

    $ diffmatte train tiny_vit --set data.fg_dir=fg --set data.bg_dir=bg
    $ torchrun --standalone --nproc_per_node=4 -m diffmatte train vits --set data.root=/data/dim
    $ diffmatte train --resume runs/tiny_vit-20261125-083000

A run folder holds ``config.toml`` (the full config), ``train.log``, ``metrics.jsonl`` and
TensorBoard event files, and the checkpoints ``last/`` and ``best/``: ``model.safetensors``
(loads with ``DiffMatte.from_checkpoint``), ``ema.safetensors`` with EMA on, and
``state.pt`` (optimizer, step, best score, config).

Reproducibility: every random draw of step ``k`` on rank ``r`` comes from a seed derived
from (seed, r, k), and the data order and augmentation from (seed, epoch, index)
(diffmatte.data.datasets). The step number is therefore the whole random state, and a run
resumed from a checkpoint repeats the uninterrupted one exactly (on the same device).
"""
from __future__ import annotations

import bisect
import copy
import inspect
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .._version import __version__
from ..checkpoint import load_into, read_state_dict, save_safetensors
from ..data import (
    EpochSampler,
    ScanReport,
    ValidationSet,
    build_train_dataset,
    scan_triplets,
    seed_worker,
    steps_per_epoch,
)
from ..diffusion.losses import STAGES, Stage, draw_times, matting_losses
from ..diffusion.sampler import GaussianDiffusion
from ..errors import CheckpointError, InputError
from ..io import trimap_from_array
from ..models.configuration import DiffMatteConfig, get_preset
from ..models.evidence import widen_decoder_input
from ..models.modeling_diffmatte import DiffMatteNet
from ..models.objective import DiffusionObjective
from ..runtime import autocast
from ..sharding import launched_world
from .config import (
    OptimConfig,
    TrainConfig,
    ValConfig,
    config_to_toml,
    get_train_preset,
    list_train_presets,
    load_config,
)
from .runlog import truncate_metrics

__all__ = [
    "OptimConfig",
    "ValConfig",
    "TrainConfig",
    "TrainResult",
    "list_train_presets",
    "get_train_preset",
    "load_config",
    "config_to_toml",
    "lr_factor",
    "stage_at",
    "param_groups",
    "save_checkpoint",
    "find_checkpoint",
    "main",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# distributed setup (torchrun sets RANK, LOCAL_RANK, WORLD_SIZE)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dist:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str) -> _Dist:
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise InputError("device = 'cuda' but no CUDA device is available")
    if "RANK" not in os.environ:
        return _Dist(0, 0, 1, torch.device("cuda" if use_cuda else "cpu"))
    rank, world = launched_world()  # torchrun's environment, read and checked in one place
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, local_rank, world, torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"))


def _step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1)


@torch.no_grad()
def _sync_buffers(net: nn.Module, ema: "_EMA | None", world_size: int) -> None:
    """Average BatchNorm running statistics over ranks, so every rank (and the checkpoint) holds the same model.

    DDP keeps parameters identical; buffers are left per rank (``broadcast_buffers=False``,
    as detectron2 trains) and drift apart with each rank's data.
    """
    if world_size == 1:
        return
    modules = [net] if ema is None else [net, ema.model]
    for module in modules:
        for buf in module.buffers():
            if buf.is_floating_point():
                torch_dist.all_reduce(buf, op=torch_dist.ReduceOp.SUM)
                buf.div_(world_size)


# ---------------------------------------------------------------------------------------------
# optimizer, schedule, stages, EMA
# ---------------------------------------------------------------------------------------------


def _vit_layer_id(name: str, depth: int) -> int:
    """0 for the embeddings, i + 1 for ``blocks.i`` (not its conv ``residual``), depth + 1 for the rest."""
    if name.startswith(("backbone.pos_embed", "backbone.patch_embed")):
        return 0
    if name.startswith("backbone.blocks.") and ".residual." not in name:
        return int(name.split(".")[2]) + 1
    return depth + 1


def param_groups(net: DiffMatteNet, weight_decay: float, layer_decay: float) -> list[dict[str, Any]]:
    """AdamW groups as the official optimiser builds them (SPEC §6).

    No weight decay on BatchNorm/LayerNorm parameters and ``pos_embed`` (biases do decay,
    as in detectron2). For a ViT encoder, layer-wise LR decay: ``lr_scale = layer_decay **
    (depth + 1 - layer_id)``.
    """
    norm_params = {
        id(p)
        for m in net.modules()
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm))
        for p in m.parameters(recurse=False)
    }
    depth = getattr(net.config.encoder_config, "depth", 0) if net.config.encoder == "vit" else 0
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in net.named_parameters():
        if not p.requires_grad:  # e.g. Res34's spectral-norm u, v: state, not weights
            continue
        decay = 0.0 if id(p) in norm_params or name.endswith("pos_embed") else weight_decay
        scale = layer_decay ** (depth + 1 - _vit_layer_id(name, depth)) if depth else 1.0
        groups.setdefault((decay, scale), []).append(p)
    return [{"params": ps, "weight_decay": d, "lr_scale": s} for (d, s), ps in groups.items()]


def lr_factor(step: int, optim: OptimConfig) -> float:
    """Multiplier of the base LR at ``step``: multi-step values, times a linear warm-up (detectron2's)."""
    factor = optim.factors[bisect.bisect_right(optim.milestones, step)]
    if step < optim.warmup_steps:
        alpha = step / optim.warmup_steps
        factor *= optim.warmup_factor * (1 - alpha) + alpha
    return factor


def stage_at(step: int, cfg: TrainConfig) -> Stage:
    if 0 <= cfg.stage1_step <= step:
        return "self_align_1"
    if 0 <= cfg.stage2_step <= step:
        return "self_align_2"
    return "normal"


class _EMA:
    """Exponential moving average of the trainable weights; other state (BN statistics) is copied."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay = decay
        self.trainable = {n for n, p in net.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        own = self.model.state_dict()
        for name, value in net.state_dict().items():
            if name in self.trainable:
                own[name].lerp_(value, 1.0 - self.decay)
            else:
                own[name].copy_(value)


# ---------------------------------------------------------------------------------------------
# checkpoints: a folder written aside, then swapped in by renames
# ---------------------------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(dest: Path, files: Mapping[str, Any], net: DiffMatteNet, ema: _EMA | None) -> None:
    """Write checkpoint folder ``dest`` so that a kill at any moment leaves a complete one.

    Everything goes to ``.NAME.tmp`` first; then ``dest`` is renamed to ``.NAME.old``,
    the new folder to ``dest``, and the old one deleted. A kill between the two renames
    leaves only ``.NAME.old``, which find_checkpoint falls back to.
    """
    tmp, old = dest.with_name(f".{dest.name}.tmp"), dest.with_name(f".{dest.name}.old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_safetensors(net, net.config, tmp / "model.safetensors")
    if ema is not None:
        save_safetensors(ema.model, net.config, tmp / "ema.safetensors")
    torch.save(dict(files), tmp / "state.pt")
    for p in (*tmp.iterdir(), tmp):
        _fsync(p)
    if dest.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(dest, old)
    os.rename(tmp, dest)
    _fsync(dest.parent)
    if old.exists():
        shutil.rmtree(old)


def find_checkpoint(run_dir: Path, name: str = "last") -> Path | None:
    """The complete checkpoint folder ``name`` of a run (or its copy from an interrupted swap)."""
    for candidate in (run_dir / name, run_dir / f".{name}.old"):
        if (candidate / "state.pt").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# logging and validation
# ---------------------------------------------------------------------------------------------


class _RunLog:
    """metrics.jsonl always; TensorBoard event files when the tensorboard package is installed."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        truncate_metrics(run_dir / "metrics.jsonl", start_step)  # a resumed run logs its steps again
        self.jsonl = open(run_dir / "metrics.jsonl", "a", buffering=1)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides what a killed run logged after its last checkpoint
            self.tb = SummaryWriter(str(run_dir), purge_step=start_step or None)
        except ImportError:
            log.warning("tensorboard is not installed: no event files (pip install tensorboard); metrics.jsonl only")

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def image(self, step: int, tag: str, chw: Tensor) -> None:
        if self.tb is not None:
            self.tb.add_image(tag, chw, step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


def _image_grid(image: Tensor, trimap: Tensor, pred: Tensor, alpha: Tensor, rows: int = 4) -> Tensor:
    """(3, rows * H, 4 * W) in [0, 1]: per sample input | trimap | prediction | ground truth."""
    n = min(rows, image.shape[0])
    to3 = lambda x: x[:n].float().expand(-1, 3, -1, -1)  # noqa: E731  (B, 1, H, W) -> (B, 3, H, W)
    cols = [image[:n].float(), to3(trimap), to3((pred.detach() + 1) / 2), to3(alpha)]
    row = torch.cat(cols, dim=3)  # (n, 3, H, 4W)
    return torch.cat(list(row), dim=1).clamp(0, 1).cpu()  # (3, nH, 4W)


@torch.no_grad()
def _validate(net: DiffMatteNet, val_set: ValidationSet, val: ValConfig, device: torch.device) -> dict[str, float]:
    """Mean SAD, MSE, Grad and Conn (paper units) over the validation images."""
    from ..evaluation.metrics import compute_all
    from ..pipeline import DiffMatte

    model = DiffMatte(net)  # samples in eval mode, then gives the network its modes back
    generator = torch.Generator().manual_seed(val.seed)
    totals: dict[str, float] = {}
    count = len(val_set) if not val.limit else min(val.limit, len(val_set))
    for i in range(count):
        image, alpha, trimap, _ = val_set[i]
        tri = torch.from_numpy(trimap_from_array(trimap, "validation trimap"))
        tri = tri[None, None]
        noise = torch.randn(tri.shape, generator=generator)
        out = model.sample(image[None].to(device), tri.to(device), val.steps, noise=noise.to(device))
        pred = np.clip(np.rint(out.alpha[0, 0].float().cpu().numpy() * 255), 0, 255).astype(np.uint8)
        for k, v in compute_all(pred, alpha, trimap).items():
            totals[k] = totals.get(k, 0.0) + v
    return {k: v / count for k, v in totals.items()}


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    net: DiffMatteNet  # the trained network (this rank's copy)
    step: int
    run_dir: Path
    best: float | None  # best validation score, if validated
    skipped_files: int


def main(
    cfg: TrainConfig, *, resume: str | os.PathLike[str] | None = None, skip_bad: bool = False, stop_after: int | None = None
) -> TrainResult:
    """Train per ``cfg``; ``resume`` continues the run in that folder from its last checkpoint.

    ``stop_after`` ends this call after that many steps (with a checkpoint), as if the
    job had been cut short; the schedule still runs to ``cfg.max_steps``.
    """
    dist = _setup_distributed(cfg.device)
    try:
        return _train(cfg, dist, Path(resume) if resume is not None else None, skip_bad, stop_after)
    finally:
        if dist.world_size > 1:
            torch_dist.destroy_process_group()


def _train(cfg: TrainConfig, dist: _Dist, resume: Path | None, skip_bad: bool, stop_after: int | None) -> TrainResult:
    device = dist.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # -- run folder and logging (rank 0 writes; every rank reads a resumed run) -----------------
    if resume is not None:
        run_dir = resume
        checkpoint = find_checkpoint(run_dir)
        if checkpoint is None:
            log.warning("%s has no complete checkpoint yet; starting it from step 0", run_dir)
    else:
        run_dir = Path(cfg.out_dir) / (cfg.run_name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        checkpoint = None
        if find_checkpoint(run_dir) is not None:
            raise InputError(f"run folder {run_dir} already holds a run; continue it with --resume {run_dir}")
    package_log, file_handler = logging.getLogger("diffmatte"), None
    old_level = package_log.level
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(config_to_toml(cfg))
        # train.log gets INFO and up, whatever the caller configured, for the time of the run
        file_handler = logging.FileHandler(run_dir / "train.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package_log.addHandler(file_handler)
        if package_log.getEffectiveLevel() > logging.INFO:
            package_log.setLevel(logging.INFO)
    try:
        return _run(cfg, dist, device, run_dir, checkpoint, skip_bad, stop_after)
    finally:
        if file_handler is not None:
            package_log.removeHandler(file_handler)
            package_log.setLevel(old_level)
            file_handler.close()


def _run(
    cfg: TrainConfig, dist: _Dist, device: torch.device, run_dir: Path, checkpoint: Path | None,
    skip_bad: bool, stop_after: int | None,
) -> TrainResult:
    log.info("diffmatte %s, torch %s, %d process(es) on %s, run folder %s", __version__, torch.__version__,
             dist.world_size, device, run_dir)

    train_set, report, val_set, sampler, per_epoch, loader = _data(cfg, dist, device, skip_bad)
    m = _model(cfg, dist, device, checkpoint)
    net, optimizer, ema, model, step, best = m.net, m.optimizer, m.ema, m.model, m.step, m.best
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    log.info("model %s: %.2f M trainable parameters; %d samples, %d steps per epoch", cfg.model, n_params / 1e6,
             len(train_set), per_epoch)

    # -- the loop -------------------------------------------------------------------------------
    run_log = _RunLog(run_dir, step) if dist.main else None
    from tqdm import tqdm

    bar = tqdm(total=cfg.max_steps, initial=step, disable=not (dist.main and cfg.progress), dynamic_ncols=True,
               desc=cfg.name)
    global_batch = cfg.batch_size * dist.world_size
    generator = torch.Generator(device=device)
    batches = _batches(loader, sampler, step, per_epoch, cfg.batch_size)
    sums: dict[str, Tensor] = {}
    interval_steps, interval_start = 0, time.perf_counter()
    end = cfg.max_steps if stop_after is None else min(cfg.max_steps, step + stop_after)
    started = last_checkpoint = time.monotonic()
    while step < end:
        batch = next(batches)
        image, alpha, trimap = (batch[k].to(device, non_blocking=True) for k in ("image", "alpha", "trimap"))
        x0 = alpha * 2 - 1

        # 1. this step's randomness: times, noise, and anything the network draws (drop-path)
        stage = stage_at(step, cfg)
        seed = _step_seed(cfg.seed, dist.rank, step)
        torch.manual_seed(seed)
        generator.manual_seed(seed)
        times, first_times = draw_times(stage, x0.shape[0], generator, device)
        noise = torch.randn(x0.shape, generator=generator, device=device)

        # 2. forward, losses, backward, update
        factor = lr_factor(step, cfg.optim)
        for group in optimizer.param_groups:
            group["lr"] = cfg.optim.lr * group["lr_scale"] * factor
        with autocast(device.type, cfg.precision):
            pred = model(image, trimap, x0, noise, times, first_times, stage)
        losses = matting_losses(pred, x0, trimap, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        grad_norm = None
        if cfg.optim.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(net)
        step += 1
        interval_steps += 1
        bar.update(1)
        for k, v in {"total": losses.total, **losses.terms}.items():
            sums[k] = sums.get(k, 0.0) + v.detach()
        if grad_norm is not None:
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.detach()

        if cfg.time_budget_s and _agreed(time.monotonic() - started >= cfg.time_budget_s, dist):
            end = step  # out of time: this step is the last (validated, checkpointed)

        # 3. log: interval means averaged over ranks
        if step % cfg.log_every == 0 or step == end:
            names = sorted(sums)
            values = torch.stack([torch.as_tensor(sums[k], device=device, dtype=torch.float32) for k in names])
            values /= interval_steps
            if dist.world_size > 1:
                torch_dist.all_reduce(values)
                values /= dist.world_size
            means = dict(zip(names, values.tolist(), strict=True))
            if not math.isfinite(means["total"]):
                raise FloatingPointError(f"loss is not finite at step {step}: {means}")
            rate = interval_steps * global_batch / (time.perf_counter() - interval_start)
            if run_log is not None:
                scalars = {f"loss/{k}": v for k, v in means.items() if k != "grad_norm"}
                if "grad_norm" in means:
                    scalars["train/grad_norm"] = means["grad_norm"]
                scalars.update({"train/lr": cfg.optim.lr * factor, "train/samples_per_s": rate,
                                "train/stage": float(STAGES.index(stage))})
                run_log.scalars(step, scalars)
            bar.set_postfix(loss=f"{means['total']:.4f}", samples_s=f"{rate:.1f}", stage=stage)
            log.info("step %d/%d loss %.4f (%s) lr %.3g %.1f samples/s %s", step, cfg.max_steps, means["total"],
                     ", ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "total"), cfg.optim.lr * factor,
                     rate, stage)
            sums, interval_steps, interval_start = {}, 0, time.perf_counter()
        if run_log is not None and cfg.image_every and step % cfg.image_every == 0:
            run_log.image(step, "train/input_trimap_pred_gt", _image_grid(image, trimap, pred, alpha))

        # 4. validate on rank 0 (the others wait at the next all-reduce), keep the best
        last_step = step == end
        validate = bool(cfg.val.image_dir) and ((cfg.val_every and step % cfg.val_every == 0) or step == cfg.max_steps
                                                or (last_step and end < cfg.max_steps and bool(cfg.time_budget_s)))
        if validate:
            _sync_buffers(net, ema, dist.world_size)  # `best` gets the same statistics as `last`
        if validate and val_set is not None:
            scores = _validate(ema.model if ema is not None else net, val_set, cfg.val, device)
            assert run_log is not None
            run_log.scalars(step, {f"val/{k}": v for k, v in scores.items()})
            log.info("step %d validation: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            if best is None or scores[cfg.val.metric] < best:
                best = scores[cfg.val.metric]
                save_checkpoint(run_dir / "best", _state(cfg, step, best, optimizer, dist), net, ema)
                log.info("new best %s %.4f at step %d", cfg.val.metric, best, step)
            interval_start = time.perf_counter()

        # 5. checkpoint `last`
        timed = bool(cfg.checkpoint_every_s) and _agreed(time.monotonic() - last_checkpoint >= cfg.checkpoint_every_s, dist)
        if step % cfg.checkpoint_every == 0 or last_step or timed:
            last_checkpoint = time.monotonic()
            _sync_buffers(net, ema, dist.world_size)
            if dist.main:
                save_checkpoint(run_dir / "last", _state(cfg, step, best, optimizer, dist), net, ema)
            interval_start = time.perf_counter()

    bar.close()
    if run_log is not None:
        run_log.close()
    del batches  # stops the workers
    if report.skipped:
        log.warning("%d bad files were skipped (listed above)", len(report.skipped))
    log.info("done: step %d of %d, run folder %s", step, cfg.max_steps, run_dir)
    return TrainResult(net, step, run_dir, best, len(report.skipped))


def _data(
    cfg: TrainConfig, dist: _Dist, device: torch.device, skip_bad: bool
) -> tuple[Any, ScanReport, ValidationSet | None, EpochSampler, int, DataLoader]:
    """Step 1: the data, every file checked before anything trains; the validation set on rank 0."""
    train_set, report = build_train_dataset(cfg.data, cfg.seed, skip_bad)
    val_set = None
    if cfg.val.image_dir and dist.main:
        val_set = ValidationSet(
            scan_triplets(cfg.val.image_dir, cfg.val.alpha_dir, cfg.val.trimap_dir, report, skip_bad, names=cfg.val.names),
            cfg.val.max_side, cfg.data.erosion_range,
        )
    sampler = EpochSampler(train_set, dist.world_size, dist.rank, cfg.seed)
    per_epoch = steps_per_epoch(sampler, cfg.batch_size)
    if per_epoch < 1:
        raise InputError(
            f"{len(train_set)} training samples give no full batch of {cfg.batch_size} per process "
            f"over {dist.world_size} process(es); lower batch_size"
        )
    workers = cfg.data.num_workers
    loader = DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=True, num_workers=workers,
        worker_init_fn=seed_worker, persistent_workers=workers > 0, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return train_set, report, val_set, sampler, per_epoch, loader


@dataclass
class _Model:
    net: DiffMatteNet
    optimizer: torch.optim.Optimizer
    ema: "_EMA | None"
    model: nn.Module  # what a step calls: the objective, wrapped in DDP over several processes
    step: int
    best: float | None


def _model(cfg: TrainConfig, dist: _Dist, device: torch.device, checkpoint: Path | None) -> _Model:
    """Step 2: the network (initialised, or resumed with its optimiser and EMA), the objective."""
    torch.manual_seed(cfg.seed)
    model_config: DiffMatteConfig = get_preset(cfg.model)
    net = DiffMatteNet(model_config)
    if checkpoint is None:
        _init_weights(net, cfg)
    net.to(device).train()
    groups = param_groups(net, cfg.optim.weight_decay, cfg.optim.layer_decay)
    optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas)
    ema = _EMA(net, cfg.optim.ema_decay) if cfg.optim.ema_decay else None
    step, best = 0, None
    if checkpoint is not None:
        step, best, saved_world = _load_checkpoint(checkpoint, net, ema, optimizer, device)
        log.info("resumed from %s at step %d", checkpoint, step)
        if saved_world != dist.world_size:
            log.warning("the run had %d process(es), now %d: the data order from here on differs from an "
                        "uninterrupted run", saved_world, dist.world_size)
    objective = DiffusionObjective(net, GaussianDiffusion(model_config.diffusion))
    model: nn.Module = objective
    if dist.world_size > 1:
        # Buffers (BatchNorm statistics) stay per rank during training, as detectron2 trains;
        # _sync_buffers averages them before validation and checkpoints. torch 2.13 renamed the flag.
        ddp_params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
        no_buffer_sync = {"forward_sync_buffers" if "forward_sync_buffers" in ddp_params else "broadcast_buffers": False}
        model = nn.parallel.DistributedDataParallel(
            objective, device_ids=[dist.local_rank] if device.type == "cuda" else None, **no_buffer_sync
        )
    return _Model(net, optimizer, ema, model, step, best)


def _agreed(flag: bool, dist: _Dist) -> bool:
    """True on every rank if it is true on rank 0 (clocks differ between processes)."""
    if dist.world_size == 1:
        return flag
    t = torch.tensor([float(flag)], device=dist.device)
    torch_dist.broadcast(t, 0)
    return bool(t.item())


def _batches(loader: DataLoader, sampler: EpochSampler, step: int, per_epoch: int, batch_size: int) -> Any:
    """Batches from ``step`` on, epoch after epoch; a resumed run starts mid-epoch where it stopped."""
    epoch, k = divmod(step, per_epoch)
    while True:
        sampler.set_position(epoch, k * batch_size)
        yield from loader
        epoch, k = epoch + 1, 0


def _state(cfg: TrainConfig, step: int, best: float | None, optimizer: torch.optim.Optimizer,
           dist: _Dist) -> dict[str, Any]:
    return {
        "step": step,
        "best": best,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "world_size": dist.world_size,
        "config": asdict(cfg),
        "versions": {"diffmatte": __version__, "torch": str(torch.__version__)},
    }


def _load_checkpoint(
    folder: Path, net: DiffMatteNet, ema: _EMA | None, optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> tuple[int, float | None, int]:
    sd, _ = read_state_dict(folder / "model.safetensors")
    load_into(net, sd, net.config.name)
    if ema is not None:
        ema_file = folder / "ema.safetensors"
        ema_sd, _ = read_state_dict(ema_file) if ema_file.is_file() else (sd, None)
        load_into(ema.model, ema_sd, net.config.name)
        ema.model.to(device)
    try:
        state = torch.load(folder / "state.pt", map_location=device, weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt file
        raise CheckpointError(f"{folder / 'state.pt'}: cannot be read ({type(e).__name__}: {e})") from e
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["step"]), state["best"], int(state["world_size"])


def _init_weights(net: DiffMatteNet, cfg: TrainConfig) -> None:
    """Start from a whole trained model (fine-tuning) and/or pretrained encoder weights."""
    if cfg.init_checkpoint:
        sd, _ = read_state_dict(cfg.init_checkpoint)
        if net.config.evidence:
            # a model without evidence starts an evidence model with the new inputs at zero
            sd = widen_decoder_input(sd, net.state_dict())
        load_into(net, sd, cfg.model)
        log.info("initialised the whole model from %s", cfg.init_checkpoint)
    if cfg.init_encoder == "imagenet":
        _load_imagenet_encoder(net)
    elif cfg.init_encoder:
        sd, _ = read_state_dict(cfg.init_encoder)
        sd = {k.removeprefix("backbone."): v for k, v in sd.items()}
        missing, unexpected = net.backbone.load_state_dict(sd, strict=False)
        if unexpected or len(missing) == len(net.backbone.state_dict()):
            raise CheckpointError(
                f"{cfg.init_encoder} does not fit the {cfg.model} encoder: {len(unexpected)} unexpected keys "
                f"(first: {', '.join(unexpected[:3])}), {len(missing)} missing"
            )
        if missing:
            log.warning("encoder weights %s leave %d tensors at random init (first: %s)", cfg.init_encoder,
                        len(missing), ", ".join(missing[:3]))
        log.info("initialised the encoder from %s", cfg.init_encoder)
    if not (cfg.init_checkpoint or cfg.init_encoder):
        log.warning("no pretrained weights (init_checkpoint / init_encoder): training %s from scratch", cfg.model)


def _load_imagenet_encoder(net: DiffMatteNet) -> None:
    # Only EfficientNet-Lite0 has ImageNet weights that install from a package (never downloaded).
    if net.config.encoder != "efficientnet_lite0":
        raise InputError(
            f"init_encoder = 'imagenet' exists only for the efficientnet_lite0 encoder (model lite0); "
            f"for {net.config.encoder!r} give a weights file"
        )
    from ..encoders.efficientnet_lite import load_imagenet_weights

    load_imagenet_weights(net.backbone)

