"""Weights interpolated between two checkpoints of one run's lineage (WiSE-FT, Wortsman et al. 2022).

Phase 6 (the shipped default) is phase 5 fine-tuned 500 steps with refractive glass in the data.
Interpolating a fine-tuned network's weights back toward the ones it started from often keeps
the fine-tuning's gains and recovers robustness off the fine-tuning's distribution (here: real
photographs). This writes ``alpha * new + (1 - alpha) * old`` for each alpha, with the new
file's packaged configuration (working size, fusion, snap), for `diffmatte evaluate --model`.

    python benchmarks/weight_soup.py --new src/diffmatte/weights/default.safetensors \\
        --old runs/phase5.safetensors --alphas 0.5,0.75 --out runs/soup
"""
from __future__ import annotations

import argparse
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", type=Path, required=True)
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--alphas", default="0.5,0.75")
    ap.add_argument("--out", type=Path, default=Path("runs/soup"))
    args = ap.parse_args()
    with safe_open(str(args.new), "pt") as f:
        metadata = f.metadata()
        new = {k: f.get_tensor(k) for k in f.keys()}
    with safe_open(str(args.old), "pt") as f:
        old = {k: f.get_tensor(k) for k in f.keys()}
    if new.keys() != old.keys() or any(new[k].shape != old[k].shape for k in new):
        raise SystemExit("the two checkpoints hold different tensors: not one architecture")
    args.out.mkdir(parents=True, exist_ok=True)
    for alpha in (float(a) for a in args.alphas.split(",")):
        soup = {k: (alpha * v.float() + (1 - alpha) * old[k].float()).to(v.dtype) if v.is_floating_point() else v
                for k, v in new.items()}
        path = args.out / f"soup_{alpha:g}.safetensors"
        save_file({k: t.contiguous() for k, t in soup.items()}, str(path), metadata=metadata)
        diff = max(float((soup[k].float() - new[k].float()).abs().max()) for k in new if new[k].is_floating_point())
        print(f"{path}: alpha {alpha:g}, largest change from --new {diff:.4g}")


if __name__ == "__main__":
    main()
