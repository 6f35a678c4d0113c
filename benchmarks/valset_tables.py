"""Per-subset tables of the validation set from fusion_sweep.py JSONs (and evaluate's per_image.csv).

    python benchmarks/valset_tables.py --data runs/valset \
        --sweep "phase 5=benchmarks/results/fusion_valset.json:net" \
        --sweep "phase 5 + fusion=benchmarks/results/fusion_valset_iterations2.json:uniform 0.0001 x400" \
        --sweep "phase 6=benchmarks/results/fusion_valset_phase6.json:net" \
        --sweep "phase 6 + fusion=benchmarks/results/fusion_valset_phase6.json:uniform 0.0001 x400" \
        --evaluate "closed-form=runs/eval-valset/per_image.csv:cf-amg" --json benchmarks/results/valset_tables.json

Prints, per subset (from the set's manifest.json) and overall, each method's images, mean and
median SAD, and the wins-losses of every method against the last one given (the baseline) over
the images both have, also over the images whose trimap marks some foreground.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from diffmatte.io import read_trimap_levels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sweep", action="append", default=[], help="LABEL=JSON:VARIANT")
    ap.add_argument("--evaluate", action="append", default=[], help="LABEL=per_image.csv:METHOD")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    subsets = {r["name"]: r["subset"] for r in json.loads((args.data / "manifest.json").read_text())["images"]}
    has_fg = {n: bool((read_trimap_levels(args.data / "trimap" / f"{n}.png") == 255).any()) for n in subsets}
    methods: dict[str, dict[str, float]] = {}
    for spec in args.sweep:
        label, rest = spec.split("=", 1)
        path, variant = rest.split(":", 1)
        methods[label] = {n: v[variant] for n, v in json.loads(Path(path).read_text())["per_image"].items()}
    for spec in args.evaluate:
        label, rest = spec.split("=", 1)
        path, method = rest.split(":", 1)
        with open(path, newline="") as f:
            methods[label] = {r["image"]: float(r["sad"]) for r in csv.DictReader(f) if r["method"] == method}
    base = list(methods)[-1]
    rows = []
    print(f"| subset | method | images | mean SAD | median SAD | vs {base} | vs {base}, trimaps with foreground |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for group in ["all", *sorted(set(subsets.values()))]:
        names = [n for n in subsets if group == "all" or subsets[n] == group]
        for label, sad in methods.items():
            have = [n for n in names if n in sad]
            if not have:
                continue
            vals = np.array([sad[n] for n in have])
            both = [n for n in have if n in methods[base]]
            wins = sum(sad[n] < methods[base][n] for n in both)
            losses = sum(sad[n] > methods[base][n] for n in both)
            fg = [n for n in both if has_fg[n]]
            wins_fg = sum(sad[n] < methods[base][n] for n in fg)
            row = {"subset": group, "method": label, "n": len(have), "mean": float(vals.mean()),
                   "median": float(np.median(vals)), "wins": wins, "losses": losses, "n_fg": len(fg), "wins_fg": wins_fg,
                   "mean_fg": float(np.mean([sad[n] for n in fg])) if fg else None}
            rows.append(row)
            vs = "-" if label == base else f"{wins}-{losses} of {len(both)}"
            vs_fg = "-" if label == base else f"{wins_fg} of {len(fg)} (mean {row['mean_fg']:.2f})" if fg else "n/a"
            print(f"| {group} | {label} | {len(have)} | {vals.mean():.2f} | {np.median(vals):.2f} | {vs} | {vs_fg} |")
    if args.json:
        args.json.write_text(json.dumps({"command": vars(args) | {"data": str(args.data), "json": str(args.json)},
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
