"""Does the seeds' spread say where the matte is wrong? Calibration of `--uncertainty`, per image.

    python benchmarks/uncertainty.py --data ../shared/data/alphamatting_training_lowres --trimap-set Trimap2 \
        --images GT19-GT27 --json benchmarks/results/uncertainty_gt_trimap2.json
    python benchmarks/uncertainty.py --data runs/valset --images '*' --seeds '' \
        --json benchmarks/results/uncertainty_valset.json       # a folder of `diffmatte data valset`

For every image: the command line as a user runs it, ``diffmatte predict IMG TRIMAP -o a.png --seeds 4
--uncertainty u.png`` (a fresh process, default settings), and the calibration is read from the
written PNGs: over the trimap's unknown pixels, the Spearman correlation between u and the matte's
error |alpha - truth|, and the AUROC of u for finding the worst 10% of error pixels (ties
averaged). Also checked: u is 0 on every known pixel, and the seeds' mean is scored against one
seed (``--seeds 1``, seed 0) by SAD the DIM way. Then, in one process, seeds 1, 2, 4 and 8: SAD of the
mean and seconds. Prints tables; --json keeps every image's numbers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (Mann-Whitney, ties averaged)."""
    ranks = rankdata(score)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration(u: np.ndarray, alpha: np.ndarray, truth: np.ndarray, unknown: np.ndarray) -> dict[str, float]:
    err = np.abs(alpha - truth)[unknown]
    spread = u[unknown]
    worst = err >= np.quantile(err, 0.9)
    if worst.all() or np.ptp(spread) == 0 or np.ptp(err) == 0:  # nothing to rank
        return {"spearman": float("nan"), "auroc_worst10": float("nan")}
    return {"spearman": float(spearmanr(spread, err).statistic), "auroc_worst10": auroc(spread, worst)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="alphamatting.com layout, or a valset folder (image/, trimap/, alpha/)")
    ap.add_argument("--trimap-set", default="Trimap2")
    ap.add_argument("--images", default="GT19-GT27")
    ap.add_argument("--model", default="default")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seeds", default="1,2,4,8", help="seed counts for the in-process table ('' skips it)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from _layouts import LabelledSet

    from diffmatte import load_model
    from diffmatte.evaluation.metrics import sad
    from diffmatte.io import read_alpha_u8, read_trimap_levels
    from diffmatte.selection import select_names

    data = LabelledSet(args.data, args.trimap_set)
    valset, files = data.valset, data.files
    names, _ = select_names(data.names(), args.images.split(","))
    per_image: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            image, trimap, truth = files(name)
            truth8 = read_alpha_u8(truth)
            tri8 = read_trimap_levels(trimap)
            base = [sys.executable, "-m", "diffmatte", "predict", str(image), str(trimap), "--model", args.model,
                    "--steps", str(args.steps), "--overwrite", "-q"]
            subprocess.run([*base, "-o", f"{tmp}/one.png"], check=True)
            subprocess.run([*base, "-o", f"{tmp}/mean.png", "--seeds", "4", "--uncertainty", f"{tmp}/u.png"], check=True)
            one, mean, u = (read_alpha_u8(f"{tmp}/{n}.png") for n in ("one", "mean", "u"))
            unknown = tri8 == 128
            row = calibration(u / 255.0, mean / 255.0, truth8 / 255.0, unknown)
            row |= {"sad_seed0": sad(one, truth8, tri8), "sad_mean4": sad(mean, truth8, tri8),
                    "u_max_on_known": int(u[~unknown].max())}
            per_image[name] = row
            print(f"{name}: Spearman {row['spearman']:.3f}  AUROC {row['auroc_worst10']:.3f}  "
                  f"SAD seed 0 {row['sad_seed0']:.2f}  mean of 4 {row['sad_mean4']:.2f}", flush=True)
        model = load_model(args.model)
        from diffmatte.io import load_pair

        counts = [int(k) for k in args.seeds.split(",") if k]
        sweep: dict[int, dict[str, list[float]]] = {k: {"sad": [], "seconds": []} for k in counts}
        for name in names:
            if not counts:
                break
            image, trimap, truth = files(name)
            img, tri = load_pair(image, trimap)
            truth8, tri8 = read_alpha_u8(truth), read_trimap_levels(trimap)
            for k in counts:
                t0 = time.perf_counter()
                alpha = model.predict(img, tri, args.steps, 0, seeds=k)
                sweep[k]["seconds"].append(time.perf_counter() - t0)
                sweep[k]["sad"].append(sad(np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8), truth8, tri8))
    rows = list(per_image.values())
    summary = {
        "spearman_mean": float(np.nanmean([r["spearman"] for r in rows])),
        "auroc_mean": float(np.nanmean([r["auroc_worst10"] for r in rows])),
        "spearman_median": float(np.nanmedian([r["spearman"] for r in rows])),
        "auroc_median": float(np.nanmedian([r["auroc_worst10"] for r in rows])),
        "sad_seed0_mean": statistics.mean(r["sad_seed0"] for r in rows),
        "sad_mean4_mean": statistics.mean(r["sad_mean4"] for r in rows),
        "u_max_on_known": max(r["u_max_on_known"] for r in rows),
    }
    print(f"\n{len(rows)} images, {'their own trimaps' if valset else args.trimap_set}, {args.steps} steps, model {args.model}, default precision "
          f"({model.precision} here)")
    print(f"mean Spearman {summary['spearman_mean']:.3f} (median {summary['spearman_median']:.3f}), mean AUROC "
          f"(worst 10%) {summary['auroc_mean']:.3f} (median {summary['auroc_median']:.3f}), "
          f"largest u on a known pixel {summary['u_max_on_known']}; SAD seed 0 {summary['sad_seed0_mean']:.3f}, "
          f"mean of 4 seeds {summary['sad_mean4_mean']:.3f}\n")
    print("| seeds | mean SAD | median SAD | s / image (in one process) |\n|---:|---:|---:|---:|")
    for k in counts:
        print(f"| {k} | {statistics.mean(sweep[k]['sad']):.3f} | {statistics.median(sweep[k]['sad']):.3f} "
              f"| {statistics.mean(sweep[k]['seconds']):.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "summary": summary, "per_image": per_image,
                                         "seeds": {str(k): v for k, v in sweep.items()},
                                         "precision": model.precision}, indent=1))


if __name__ == "__main__":
    main()
