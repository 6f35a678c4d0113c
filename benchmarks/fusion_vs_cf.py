"""Fusion settings against closed-form, per image: issue 22's bars from fusion_sweep.py's JSONs.

    python benchmarks/fusion_vs_cf.py benchmarks/results/fusion_valset_phase6_sweep1.json \
        benchmarks/results/fusion_valset_phase6_sweep2.json benchmarks/results/fusion_valset_anchored.json
    python benchmarks/fusion_vs_cf.py benchmarks/results/eval_valset_anchored.csv   # diffmatte evaluate's rows

Closed-form's SAD per image (full resolution, multigrid preconditioner) and whether the trimap
marks foreground come from --cf (an evaluate per_image.csv). For every variant: wins against
closed-form over the images whose trimap marks foreground and that closed-form solves, the mean
over those beside closed-form's, the median over all images, and the median per subset beside
closed-form's. The sweeps chose nothing by themselves: the figures are the choice's evidence.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", type=Path, nargs="+", help="fusion_sweep.py JSONs or evaluate per_image CSVs")
    ap.add_argument("--cf", type=Path, default=Path("benchmarks/results/eval_valset_cf_amg_phase6.csv"))
    ap.add_argument("--baseline", default="cf-amg", help="the method of --cf's rows to compare with (e.g. knn-amg)")
    args = ap.parse_args()
    cf: dict[str, float | None] = {}
    has_fg: dict[str, bool] = {}
    subset: dict[str, str] = {}
    for r in csv.DictReader(args.cf.open()):
        if r["method"] == args.baseline:
            value = float(r["sad"]) if r["sad"] else math.nan
            cf[r["image"]] = None if math.isnan(value) else value
            has_fg[r["image"]], subset[r["image"]] = r["fg_constraint"] == "1", r["subset"]
    variants: dict[str, dict[str, float]] = {}
    for path in args.sweeps:
        if path.suffix == ".csv":  # diffmatte evaluate: one variant per model
            for r in csv.DictReader(path.open()):
                if r["method"] == "diffmatte":
                    variants.setdefault(f"{r['model']} (evaluate)", {})[r["image"]] = float(r["sad"])
            continue
        for image, row in json.loads(path.read_text())["per_image"].items():
            for name, value in row.items():
                variants.setdefault(name, {})[image] = value
    anchored = sorted(n for n in cf if has_fg[n] and cf[n] is not None)
    groups: dict[str, list[str]] = {}
    for n in sorted(cf):
        groups.setdefault(subset[n], []).append(n)
    cf_mean = statistics.mean(cf[n] for n in anchored)  # type: ignore[misc]
    solved = [v for v in cf.values() if v is not None]
    print(f"{len(anchored)} images whose trimap marks foreground and {args.baseline} solves; {args.baseline} mean "
          f"{cf_mean:.2f}, median over all {statistics.median(solved):.2f}\n")
    print(f"| variant | wins vs {args.baseline} | mean (those) | median (all) | " + " | ".join(groups) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(groups))
    for name, sads in variants.items():
        if set(sads) != set(cf):
            continue
        wins = sum(sads[n] < cf[n] for n in anchored)  # type: ignore[operator]
        cells = [f"{statistics.median(sads[n] for n in ns):.2f} / "
                 f"{statistics.median(cf[n] for n in ns if cf[n] is not None):.2f}" for ns in groups.values()]  # type: ignore[misc]
        print(f"| {name} | {wins} of {len(anchored)} | {statistics.mean(sads[n] for n in anchored):.2f} | "
              f"{statistics.median(sads.values()):.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
