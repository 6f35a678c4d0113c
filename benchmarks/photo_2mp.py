"""Seconds for a 2 MP photo at 10 steps, the way a user meets them: in one process (a second
``predict`` after a first) and from the command line (a fresh `diffmatte predict` each time).

    python benchmarks/photo_2mp.py --image runs/photo2mp.png --trimap runs/photo2mp_trimap.png \
        --model default --model runs/phase5.safetensors --json benchmarks/results/photo_2mp.json

runs/photo2mp.png is alphamatting GT04 enlarged to 1920x1080 (bicubic) and its Trimap2
(nearest), see docs/performance.md. For every model, rows at precision auto (the default) and
fp32, with the model's own fusion and without it; medians of --repeats runs, alternating the
settings so drift hits them alike. Run it on a quiet machine: the figures are wall time; peak
memory of the CLI is benchmarks/cli_2mp.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cli_2mp import run_once  # a sibling script, as the others import _measure


def _settings(models: list[str]) -> list[dict]:
    out = []
    for model in models:
        for precision in ("auto", "fp32"):
            for fusion in (None, False):  # None: the model's own setting
                out.append({"model": model, "precision": precision, "fusion": fusion})
    return out


def _cli_once(exe: str, args: argparse.Namespace, s: dict, out: str) -> float:
    """Seconds of one fresh `diffmatte predict` (cli_2mp's timer). Its peak RSS is not kept: the
    child's count starts from this process's pages at the fork, and this process holds the models."""
    cmd = [exe, "predict", str(args.image), str(args.trimap), "-o", out, "--overwrite", "-q", "--model", s["model"],
           "--steps", str(args.steps), "--precision", s["precision"]]
    if s["fusion"] is False:
        cmd.append("--no-fusion")
    return run_once(cmd)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True, type=Path)
    ap.add_argument("--trimap", required=True, type=Path)
    ap.add_argument("--model", action="append", default=None, help="repeatable; default: the packaged default")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from diffmatte import load_model
    from diffmatte.io import load_pair
    from diffmatte.runtime import cpu_has_fast_bf16, keep_freed_memory

    keep_freed_memory()  # as the command line does
    settings = _settings(args.model or ["default"])
    image, trimap = load_pair(args.image, args.trimap)
    loaded = {}
    for s in settings:
        key = (s["model"], s["precision"])
        if key not in loaded:
            loaded[key] = load_model(s["model"], precision=s["precision"])
            loaded[key].predict(image, trimap, args.steps, 0, fusion=s["fusion"])  # the first call pays set-up
        s["chosen_precision"] = loaded[key].precision
        s["in_process_s"], s["cli_s"] = [], []
    # a model without fusion needs no "off" row
    settings = [s for s in settings if s["fusion"] is None or loaded[(s["model"], s["precision"])].config.fusion]
    # the console script beside this interpreter (a venv need not be on PATH), as a user runs it
    beside = Path(sys.executable).parent / "diffmatte"
    exe = str(beside) if beside.exists() else shutil.which("diffmatte") or "diffmatte"
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for s in settings:
                model = loaded[(s["model"], s["precision"])]
                t0 = time.perf_counter()
                model.predict(image, trimap, args.steps, 0, fusion=s["fusion"])
                s["in_process_s"].append(time.perf_counter() - t0)
                s["cli_s"].append(_cli_once(exe, args, s, f"{tmp}/a.png"))
    h, w = trimap.shape
    print(f"{args.image} ({w}x{h}), {args.steps} steps, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, native bf16: {cpu_has_fast_bf16()}\n")
    print("| model | --precision (ran as) | fusion | in one process, s (median) | CLI end to end, s (median) |")
    print("|---|---|---|---:|---:|")
    for s in settings:
        fusion = "model's own" if s["fusion"] is None else "off"
        print(f"| {s['model']} | {s['precision']} ({s['chosen_precision']}) | {fusion} "
              f"| {statistics.median(s['in_process_s']):.2f} | {statistics.median(s['cli_s']):.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"image": str(args.image), "size": [w, h], "steps": args.steps, "cpus": os.cpu_count(),
                "native_bf16": cpu_has_fast_bf16(), "host": platform.processor() or platform.machine()}
        args.json.write_text(json.dumps({"meta": meta, "rows": settings}, indent=1))


if __name__ == "__main__":
    main()
