"""Cutout colours without the old background: foreground estimators against the true foreground.

    python benchmarks/foreground_colours.py --data runs/valset --photo runs/photo2mp.png \
        --json benchmarks/results/foreground_colours_valset.json

On every image of the composited validation set (its fg/ folder holds the foreground colours it
was composited with), each estimator gets the image and the true alpha and is scored the way
foreground-estimation papers report it: over the trimap's unknown pixels, the alpha-weighted mean
squared error of the colour, sum(alpha |F - F_true|^2) / (3 sum(alpha)), x1000. Estimators:
the image itself (no estimation: what a naive RGBA cutout shows), diffmatte's multi-level
estimator (the shipped one), pymatting's `estimate_foreground_ml` (the same method, numba) and
blur fusion run twice (Forte and Pitie 2021), and the shipped estimator followed by the optional
despill (`--despill`, ``diffmatte.foreground.remove_spill``). The real_fg subset's foregrounds were themselves
estimated by diffmatte's multi-level estimator when the set was built, so that subset is shown
apart and left out of the overall figures. Seconds are for a 2 MP image (--photo, with the
packaged model's matte), the best of 3.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np


def _methods() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    import pymatting

    from diffmatte.foreground import (
        estimate_foreground,
        estimate_foreground_background,
        estimate_foreground_blur_fusion,
        remove_spill,
    )

    return {
        "image (none)": lambda img, a: img,
        "multi-level (diffmatte, shipped)": estimate_foreground,
        "multi-level (pymatting)": lambda img, a: pymatting.estimate_foreground_ml(
            img.astype(np.float64), a.astype(np.float64)).astype(np.float32),
        "blur fusion x2": estimate_foreground_blur_fusion,
        "multi-level + despill (--despill)": lambda img, a: remove_spill(*estimate_foreground_background(img, a), a),
    }


def error(fg: np.ndarray, truth: np.ndarray, alpha: np.ndarray, unknown: np.ndarray) -> float:
    a = alpha[unknown][:, None]
    return float((a * (fg[unknown] - truth[unknown]) ** 2).sum() / (3 * a.sum()) * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--photo", type=Path, help="a 2 MP image for the timing")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from diffmatte.io import read_alpha_u8, read_image, read_trimap_levels

    methods = _methods()
    manifest = json.loads((args.data / "manifest.json").read_text())
    subsets = {m["name"]: m.get("subset", m.get("kind", "")) for m in manifest["images"]}
    per_image: dict[str, dict[str, float]] = {}
    for name in sorted(subsets):
        img = read_image(args.data / "image" / f"{name}.png")
        truth = read_image(args.data / "fg" / f"{name}.png")
        alpha = read_alpha_u8(args.data / "alpha" / f"{name}.png").astype(np.float32) / 255.0
        unknown = (read_trimap_levels(args.data / "trimap" / f"{name}.png") == 128) & (alpha > 0)
        if not unknown.any():
            continue
        per_image[name] = {k: error(f(img, alpha), truth, alpha, unknown) for k, f in methods.items()}
        print(f"{name} ({subsets[name]}): " + "  ".join(f"{k} {v:.2f}" for k, v in per_image[name].items()), flush=True)
    seconds: dict[str, float] = {}
    if args.photo:
        from diffmatte import load_model

        photo = read_image(args.photo)
        h, w = photo.shape[:2]
        tri = np.full((h, w), 0.5, np.float32)
        tri[: h // 8], tri[-h // 8:] = 0.0, 1.0  # any matte will do for timing: a sampled one
        alpha = load_model("default").predict(photo, tri, 3, 0)
        for k, f in methods.items():
            f(photo[:64, :64], alpha[:64, :64])  # compile / warm up
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                f(photo, alpha)
                runs.append(time.perf_counter() - t0)
            seconds[k] = min(runs)
    groups = {"all but real_fg": [n for n in per_image if subsets[n] != "real_fg"],
              **{s: [n for n in per_image if subsets[n] == s] for s in sorted(set(subsets.values()))}}
    rows = []
    for group, names in groups.items():
        if not names:
            continue
        for k in methods:
            vals = [per_image[n][k] for n in names]
            best = sum(per_image[n][k] <= min(per_image[n].values()) for n in names)
            rows.append({"group": group, "method": k, "images": len(names), "mean": statistics.mean(vals),
                         "median": statistics.median(vals), "best_on": best})
    print("\n| images | estimator | n | mean | median | best on | s (2 MP) |\n|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        s = f"{seconds[r['method']]:.2f}" if r["method"] in seconds else ""
        print(f"| {r['group']} | {r['method']} | {r['images']} | {r['mean']:.3f} | {r['median']:.3f} | {r['best_on']} | {s} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "per_image": per_image, "seconds_2mp": seconds,
                                         "subsets": subsets}, indent=1))


if __name__ == "__main__":
    main()
