"""Seconds and peak RSS of the untuned CLI on a 2 MP photo, 10 steps, fp32, per working resolution.

    python benchmarks/cli_2mp.py --image runs/photo2mp.png --trimap runs/photo2mp_trimap.png \
        --model default --json benchmarks/results/cli_2mp.json

Each setting is a fresh `diffmatte predict` process (start-up, model load, reading, matting,
writing: what a user waits for); wall time and the child's peak RSS (wait4) are recorded,
best of --repeats. Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# (resolution, extra flags); the packaged model fuses with closed-form by default, --no-fusion shows its cost
SETTINGS = (("full", []), ("0.5", []), ("0.5", ["--no-fusion"]), ("1", []), ("0.5", ["--flip-tta"]))


def run_once(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return seconds, usage.ru_maxrss / 1024  # KiB -> MiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True, type=Path)
    ap.add_argument("--trimap", required=True, type=Path)
    ap.add_argument("--model", default="default")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    exe = shutil.which("diffmatte") or "diffmatte"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for resolution, extra in SETTINGS:
            runs = [run_once([exe, "predict", str(args.image), str(args.trimap), "-o", f"{tmp}/a.png", "--overwrite", "-q",
                              "--model", args.model, "--steps", str(args.steps), "--resolution", resolution, *extra])
                    for _ in range(args.repeats)]
            rows.append({"resolution": resolution, "flip_tta": "--flip-tta" in extra, "fusion": "--no-fusion" not in extra,
                         "seconds": [r[0] for r in runs],
                         "peak_rss_mib": [r[1] for r in runs]})
    from PIL import Image

    w, h = Image.open(args.image).size
    print(f"{args.image} ({w}x{h}, {w * h / 1e6:.2f} MP), {args.steps} steps, model {args.model}\n")
    print("| resolution | flip TTA | fusion (if the model has it) | seconds (best) | peak RSS MiB |\n|---|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['resolution']} | {'yes' if r['flip_tta'] else 'no'} | {'yes' if r['fusion'] else 'no'} "
              f"| {min(r['seconds']):.2f} | {max(r['peak_rss_mib']):.0f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"image": str(args.image), "size": [w, h], "steps": args.steps, "model": args.model,
                "host": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
