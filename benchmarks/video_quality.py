"""Video matting against ground truth: independent frames, fixed noise, warm start, and the steady filter.

Three kinds of clip, every frame's true matte known (diffmatte.data.clips):

* still: alphamatting GT04 with fresh Gaussian sensor noise (3 grey levels) in each of 24
  frames, matted with its Trimap2; the flicker is the mean |alpha_t - alpha_{t-1}| over the
  trimap's unknown region (the truth does not move);
* pan: a 3 px-per-frame camera pan over GT04 (24 frames) given only frame 0's trimap
  (Trimap2 cropped); SAD per frame against frame 0's;
* moving: alphamatting foregrounds (GT01-GT18; colours estimated from photo and truth)
  moving with smooth random affine motion over a panning background from the manifest's
  validation split, at 1280x720; frame 0's trimap is a benchmark band around the truth.
  The default model trained on GT01-GT18's photos, so these score time, not the matte.

Configurations: ``independent`` (fresh noise, full steps), ``fixed`` (the clip's noise, full
steps), ``warm`` (fixed noise, frames after the first warm-started), each with the steady
filter off, ``warm+steady`` (the default of `diffmatte video`), and ``no fusion`` (the default
without the colour-model fusion: ``--no-fusion``). Metrics per clip: mean SAD and MSE over all
frames (whole frame), dtSSD and MESSDdt (diffmatte.video.metrics), and seconds per frame; the
table is the mean over clips of each kind.

    PATH=.venv/bin:$PATH python benchmarks/video_quality.py --json benchmarks/results/video_quality.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffmatte import load_model
from diffmatte.data.backgrounds import backgrounds_for
from diffmatte.data.clips import moving_clip, pan_clip, still_clip
from diffmatte.data.trimaps import benchmark_trimap
from diffmatte.foreground import estimate_foreground
from diffmatte.runtime import keep_freed_memory
from diffmatte.video import VideoOptions, matte_video
from diffmatte.video.metrics import dtssd, frame_change, messddt

AM = Path("../shared/data/alphamatting_training_lowres")
CONFIGS = {
    "independent": dict(mode="independent", steady=0.0),
    "fixed": dict(mode="fixed", steady=0.0),
    "warm": dict(mode="warm", steady=0.0),
    "warm+steady": dict(mode="warm"),
    "no fusion": dict(mode="warm", fusion=False),
}


def _photo(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = np.asarray(Image.open(AM / "input_training_lowres" / f"{name}.png").convert("RGB"))
    gt = np.asarray(Image.open(AM / "gt_training_lowres" / f"{name}.png").convert("L")).astype(np.float32) / 255.0
    tri = np.asarray(Image.open(AM / "trimap_training_lowres" / "Trimap2" / f"{name}.png").convert("L"))
    return img, gt, tri


def _score(model, clip, trimap, config, region=None) -> dict:
    opts = VideoOptions(**config)
    started = time.perf_counter()
    out = list(matte_video(model, (c.image for c in clip), trimap=trimap, options=opts))
    seconds = (time.perf_counter() - started) / len(clip)
    sads = [float(np.abs(f.alpha - c.alpha).sum() / 1000.0) for f, c in zip(out, clip, strict=True)]
    mses = [float(((f.alpha - c.alpha) ** 2).mean() * 1000.0) for f, c in zip(out, clip, strict=True)]
    pairs = list(zip(out, out[1:], clip, clip[1:], strict=False))
    row = {
        "frames": len(clip),
        "sad": float(np.mean(sads)),
        "sad_first": sads[0],
        "sad_last": sads[-1],
        "mse": float(np.mean(mses)),
        "dtssd": float(np.mean([dtssd(b.alpha, a.alpha, cb.alpha, ca.alpha) for a, b, ca, cb in pairs])),
        "messddt": float(np.mean([messddt(b.alpha, a.alpha, cb.alpha, ca.alpha, cb.flow) for a, b, ca, cb in pairs])),
        "seconds_per_frame": seconds,
        "steps_per_frame": float(np.mean([f.steps for f in out])),
    }
    if region is not None:
        row["flicker"] = float(np.mean([frame_change(b.alpha, a.alpha, region) for a, b, _, _ in pairs]))
    return row


def _moving_clips(count: int, frames: int, size: tuple[int, int]) -> list[tuple[str, list, np.ndarray]]:
    bgs = backgrounds_for("data/backgrounds.csv", "val")
    names = [f"GT{i:02d}" for i in range(1, 19)]
    rng = np.random.default_rng(2026)
    picks = rng.choice(len(names), count, replace=False)
    clips = []
    for k, i in enumerate(picks):
        img, gt, _ = _photo(names[i])
        fg = estimate_foreground(img.astype(np.float32) / 255.0, gt)
        bg = np.asarray(Image.open(bgs[(k * 7) % len(bgs)]).convert("RGB"))
        clip = list(moving_clip(fg, gt, bg, frames, size, seed=int(i)))
        a0 = np.rint(clip[0].alpha * 255).astype(np.uint8)
        clips.append((f"{names[i]} over {Path(bgs[(k * 7) % len(bgs)]).name}", clip,
                      benchmark_trimap(a0, 0.01 * max(size))))
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/video_quality.json"))
    ap.add_argument("--clips", type=int, default=3, help="moving clips")
    ap.add_argument("--frames", type=int, default=48, help="frames of a moving clip (24 frames/s)")
    ap.add_argument("--short", type=int, default=24, help="frames of the still and pan clips")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    ap.add_argument("--note", default="", help="recorded in the JSON (e.g. what else ran)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    model = load_model()
    img, gt, tri = _photo("GT04")
    kinds: dict[str, list[tuple[str, list, np.ndarray, np.ndarray | None]]] = {
        "still": [("GT04 + noise", list(still_clip(img, gt, args.short, sigma=3.0, seed=1)), tri, tri == 128)],
        "pan": [],
        "moving": [],
    }
    pan = list(pan_clip(img, gt, args.short, 3))
    kinds["pan"].append(("GT04 pan 3 px", pan, np.ascontiguousarray(tri[:, : pan[0].alpha.shape[1]]), None))
    kinds["moving"] = [(n, c, t, None) for n, c, t in _moving_clips(args.clips, args.frames, (720, 1280))]
    results: dict = {"settings": vars(args) | {"json": str(args.json)}, "machine": platform.processor() or platform.machine(),
                     "torch": torch.__version__, "precision": model.precision, "threads": torch.get_num_threads(),
                     "kinds": {}}
    configs = [c for c in args.configs.split(",") if c]
    for kind, clips in kinds.items():
        per_config = {}
        for name in configs:
            rows = []
            for clip_name, clip, trimap, region in clips:
                row = _score(model, clip, trimap, CONFIGS[name], region)
                row["clip"] = clip_name
                rows.append(row)
                print(f"{kind:7s} {name:12s} {clip_name:40s} " + " ".join(
                    f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float)), flush=True)
            keys = [k for k, v in rows[0].items() if isinstance(v, float)]
            per_config[name] = {"clips": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}}
        results["kinds"][kind] = per_config
    print()
    print(f"{'kind':8s} {'config':12s} {'SAD':>8s} {'SAD f0':>7s} {'MSE':>7s} {'dtSSD':>7s} {'MESSDdt':>8s} "
          f"{'flicker':>8s} {'steps':>6s} {'s/frame':>8s}")
    for kind, per_config in results["kinds"].items():
        for name, r in per_config.items():
            m = r["mean"]
            print(f"{kind:8s} {name:12s} {m['sad']:8.2f} {m['sad_first']:7.2f} {m['mse']:7.3f} {m['dtssd']:7.3f} "
                  f"{m['messddt']:8.3f} {m.get('flicker', float('nan')):8.4f} {m['steps_per_frame']:6.2f} "
                  f"{m['seconds_per_frame']:8.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
