"""Should the number of steps adapt to the image? Quality against decoder steps on the validation set.

    python benchmarks/steps_auto.py --data runs/valset --json benchmarks/results/steps_auto_valset.json

For every image the network runs at the model's working size with a fixed schedule of N steps
(N in --schedules) and keeps every step's x0 estimate (known regions written). A fixed count is
the last estimate of its schedule; an adaptive rule runs a schedule and stops after the first step
k >= --min-steps whose estimate moved less than a tolerance from the one before (mean absolute
change over the unknown pixels), keeping that estimate. Every result then goes through what
``predict`` does after sampling (the model's fusion, the guided upsampler, known regions at full
size) and is scored at full size the DIM way. Prints mean and median SAD and the mean number of
decoder steps (the part of the time that the rule changes); --json keeps every image's numbers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def first_settled(frames: np.ndarray, unknown: np.ndarray, tolerance: float, min_steps: int) -> int:
    """Index of the estimate an adaptive rule stops at: the first k >= min_steps - 1 whose change is below tolerance."""
    for k in range(max(min_steps - 1, 1), len(frames)):
        if float(np.abs(frames[k] - frames[k - 1])[unknown].mean()) < tolerance:
            return k
    return len(frames) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a folder written by `diffmatte data valset`")
    ap.add_argument("--model", default="default")
    ap.add_argument("--schedules", default="3,5,10,20")
    ap.add_argument("--tolerances", default="0.002,0.001,0.0005,0.00025")
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--images", default="")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from diffmatte import load_model
    from diffmatte.evaluation.metrics import sad
    from diffmatte.fusion import fuse_matte
    from diffmatte.io import read_alpha_u8, read_image, read_trimap_levels, trimap_from_array
    from diffmatte.pipeline import snap_faint_alpha
    from diffmatte.selection import select_names
    from diffmatte.upsample import GuidedUpsampler, downscale_image, downscale_trimap, working_shape

    model = load_model(args.model)
    schedules = [int(n) for n in args.schedules.split(",")]
    tolerances = [float(t) for t in args.tolerances.split(",")]
    names = sorted(p.stem for p in (args.data / "image").glob("*.png"))
    if args.images:
        names, _ = select_names(names, args.images.split(","))
    fusion = model.fusion_config()
    per_image: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        image = read_image(args.data / "image" / f"{name}.png")
        tri8 = read_trimap_levels(args.data / "trimap" / f"{name}.png")
        gt = read_alpha_u8(args.data / "alpha" / f"{name}.png")
        tri = trimap_from_array(tri8)
        low = working_shape(*tri.shape, model.config.working_megapixels)
        img_low, tri_low = (downscale_image(image, low), downscale_trimap(tri, low)) if low != tri.shape else (image, tri)
        upsample = GuidedUpsampler(img_low, image) if low != tri.shape else None
        unknown = tri_low == 0.5

        def score(frame: np.ndarray) -> float:
            a = fuse_matte(img_low, tri_low, frame, None, fusion) if fusion is not None else frame
            full = upsample(a) if upsample is not None else a
            full = snap_faint_alpha(np.where(tri == 0.5, full, tri), tri, model.config.snap)
            return sad(np.clip(np.rint(full * 255), 0, 255).astype(np.uint8), gt, tri8)

        rows: dict[str, dict[str, float]] = {}
        for n in schedules:
            t0 = time.perf_counter()
            frames = model.predict(img_low, tri_low, n, 0, trajectory=True, working_megapixels=0, fusion=False)
            seconds = time.perf_counter() - t0
            rows[f"fixed {n}"] = {"sad": score(frames[-1]), "steps": n, "seconds": seconds}
            for tol in tolerances:
                k = first_settled(frames, unknown, tol, args.min_steps)
                if k == n - 1 and n != max(schedules):
                    continue  # the same as fixed n; only the longest schedule shows the never-settled case
                rows[f"auto {n} tol {tol:g}"] = {"sad": score(frames[k]), "steps": k + 1,
                                                 "seconds": seconds * (k + 1) / n}
        per_image[name] = rows
        print(f"{name}: " + "  ".join(f"{k} {v['sad']:.1f}/{v['steps']}" for k, v in rows.items()), flush=True)
    keys = [f"fixed {n}" for n in schedules] + [f"auto {n} tol {t:g}" for n in schedules for t in tolerances]
    table = []
    for key in keys:
        # a rule that never stopped early on an image equals the fixed schedule there
        vals = [per_image[i].get(key) or per_image[i][f"fixed {key.split()[1]}"] for i in names]
        table.append({"setting": key, "mean_sad": statistics.mean(v["sad"] for v in vals),
                      "median_sad": statistics.median(v["sad"] for v in vals),
                      "mean_steps": statistics.mean(v["steps"] for v in vals)})
    print(f"\n{len(names)} images, model {args.model} ({model.precision}), min steps {args.min_steps}")
    print("| setting | mean SAD | median SAD | mean decoder steps |\n|---|---:|---:|---:|")
    for r in table:
        print(f"| {r['setting']} | {r['mean_sad']:.2f} | {r['median_sad']:.2f} | {r['mean_steps']:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "precision": model.precision,
                                         "table": table, "per_image": per_image}, indent=1))


if __name__ == "__main__":
    main()
