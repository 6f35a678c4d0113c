"""Closed-form matting on large unknown regions, solved with an algebraic-multigrid preconditioner.

    pip install pyamg   # benchmark only; diffmatte does not depend on it
    python benchmarks/cf_amg.py --data runs/valset --check runs/eval-valset/cache/cf \
        --json benchmarks/results/cf_valset.json
    # on 2 cores, two shards side by side, then one table:
    python benchmarks/cf_amg.py --data runs/valset --images 'GT*,hair*' --json runs/cf1.json &
    python benchmarks/cf_amg.py --data runs/valset --images 'structure*,transparent*' --json runs/cf2.json
    python benchmarks/cf_amg.py --merge runs/cf1.json runs/cf2.json --json benchmarks/results/cf_valset.json

`diffmatte evaluate --method cf` runs pymatting's ``estimate_alpha_cf`` (Levin et al.'s linear
system on the unknown pixels, CG to rtol 1e-7 with an incomplete-Cholesky preconditioner, at most
10000 iterations). On the composited validation set's 1-2 MP images with 17-100% unknown, one
image took over 50 CPU-minutes. This runs the same function on the same inputs (read as
`evaluate` reads them: the image as float RGB, the trimap as {0, 0.5, 1}, the result written back
into the known region and quantised to 8 bits) with only the preconditioner changed to pyamg's
smoothed aggregation (`diffmatte evaluate --method cf-amg` runs the same solver): the same linear
system solved to the same tolerance. ``--check`` compares
with the predictions `evaluate` already made the incomplete-Cholesky way (its cache folder).
Prints a Markdown table (per image and the mean SAD, MSE, Grad, Conn) and writes JSON.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import time
from pathlib import Path

import numpy as np

from diffmatte.evaluation.metrics import compute_all
from diffmatte.io import read_alpha_u8, read_image, read_trimap_levels, trimap_from_array


def closed_form(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """diffmatte.evaluation.baselines.estimate_alpha("cf", ...) with only the preconditioner changed: method "cf-amg"."""
    from diffmatte.evaluation.baselines import estimate_alpha

    return estimate_alpha("cf-amg", image, trimap)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="folder with image/, alpha/, trimap/")
    ap.add_argument("--images", default="*", help="comma-separated globs of image names")
    ap.add_argument("--merge", nargs="+", type=Path, help="only print and write the table of these JSON files")
    ap.add_argument("--check", type=Path, help="evaluate's cache folder of cf predictions (NAME-<digest>.png)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.merge:
        rows = [r for path in args.merge for r in json.loads(path.read_text())["rows"]]
        _table(sorted(rows, key=lambda r: r["image"]), args.json, vars(args))
        return
    rows = []
    print("| image | MP | unknown % | SAD | MSE x1e3 | Grad | Conn | s | vs incomplete-Cholesky (max abs diff / SAD there) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    patterns = args.images.split(",")
    for image_path in sorted((args.data / "image").glob("*.png")):
        name = image_path.stem
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        gt = read_alpha_u8(args.data / "alpha" / f"{name}.png")
        tri8 = read_trimap_levels(args.data / "trimap" / f"{name}.png")
        t0 = time.perf_counter()
        try:
            alpha = closed_form(read_image(image_path), trimap_from_array(tri8))
        except ValueError as e:  # pymatting's CG gives up after 10000 iterations
            print(f"| {name} | no solution: {e} |", flush=True)
            rows.append({"image": name, "error": str(e), "seconds": time.perf_counter() - t0})
            continue
        seconds = time.perf_counter() - t0
        pred = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
        row = {"image": name, "seconds": seconds, "megapixels": gt.size / 1e6,
               "unknown": float((tri8 == 128).mean()), **compute_all(pred, gt, tri8)}
        cached = sorted(args.check.glob(f"{name}-*.png")) if args.check else []
        if cached:
            from PIL import Image

            other = np.asarray(Image.open(cached[0]).convert("L"))
            row["ichol_max_abs_diff_u8"] = int(np.abs(other.astype(int) - pred.astype(int)).max())
            row["ichol_sad"] = compute_all(other, gt, tri8)["sad"]
        rows.append(row)
        _print_row(row)
    _table(rows, args.json, vars(args), print_rows=False)


def _print_row(row: dict) -> None:
    if "error" in row:
        print(f"| {row['image']} | no solution: {row['error']} |")
        return
    check = f"{row['ichol_max_abs_diff_u8']} / {row['ichol_sad']:.2f}" if "ichol_sad" in row else "-"
    print(f"| {row['image']} | {row['megapixels']:.2f} | {100 * row['unknown']:.0f} | {row['sad']:.2f} | {row['mse']:.2f} "
          f"| {row['grad']:.2f} | {row['conn']:.2f} | {row['seconds']:.0f} | {check} |", flush=True)


def _table(rows: list[dict], out: Path | None, args: dict, print_rows: bool = True) -> None:
    if print_rows:
        print("| image | MP | unknown % | SAD | MSE x1e3 | Grad | Conn | s | vs incomplete-Cholesky (max abs diff / SAD there) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for row in rows:
            _print_row(row)
    solved = [r for r in rows if "error" not in r]
    mean = {k: float(np.mean([r[k] for r in solved])) for k in ("sad", "mse", "grad", "conn")}
    print(f"| mean of {len(solved)} solved | | | {mean['sad']:.2f} | {mean['mse']:.2f} | {mean['grad']:.2f} | {mean['conn']:.2f} | | |")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"args": {k: str(v) for k, v in args.items()}, "mean": mean, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
