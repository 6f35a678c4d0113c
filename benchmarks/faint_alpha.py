"""Snap faint alpha in the unknown region: below L to 0, above H to 1, after fusion and upsampling.

The default model's final matte leaves a haze of alpha a few levels above 0 over background in
the unknown band (and a little below 1 inside the subject). This scores the packaged setting with
and without snapping it, per image, on the rebuilt validation set. The network mattes come from
fusion_sweep.py's cache (seed 0, 10 steps, working size; run that first). Fusion is the shipped
anchored setting, then the guided upsampler, then the snap, then 8 bits and SAD the DIM way.

    python benchmarks/faint_alpha.py --data runs/valset --model runs/phase6_packaged.safetensors \
        --json benchmarks/results/faint_alpha_valset.json

Prints mean, median, images better / worse than no snap, and the median per subset. The default
ships 0.02 / 0.98 (docs/results.md, "Faint alpha snapped"). With ``--upsampler`` the rows are the
guided upsampler's window radius and regulariser instead (``R/eps``, the snap at 0.02 / 0.98;
the pipeline's are 2 / 1e-4).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from diffmatte.evaluation.metrics import sad
from diffmatte.fusion import FusionConfig, fuse_matte
from diffmatte.hashing import sha256_file
from diffmatte.io import read_alpha_u8, read_image, read_trimap_levels, trimap_from_array
from diffmatte.registry import resolve_model_path
from diffmatte.upsample import GuidedUpsampler, downscale_image, downscale_trimap, working_shape

SHIPPED = FusionConfig(strength=1e-6, floor=1e-6, iterations=1000, unanchored_strength=1e-4, unanchored_iterations=400)
SNAPS = ((0.0, 1.0), (0.01, 1.0), (0.02, 1.0), (0.03, 1.0), (0.0, 0.98), (0.01, 0.99), (0.02, 0.99), (0.02, 0.98),
         (0.03, 0.97))


UPSAMPLERS = ((2, 1e-4), (1, 1e-4), (3, 1e-4), (4, 1e-4), (2, 1e-5), (2, 1e-3), (2, 1e-2), (3, 1e-3), (1, 1e-3))


def snapped(alpha: np.ndarray, trimap: np.ndarray, low: float, high: float) -> np.ndarray:
    unknown = trimap == 0.5
    out = np.where(unknown & (alpha < low), 0.0, alpha)
    return np.where(unknown & (out > high), 1.0, out)


def score(alpha: np.ndarray, tri8: np.ndarray, truth: np.ndarray, low: float, high: float) -> float:
    """SAD the DIM way of ``alpha`` with the trimap's known pixels written and the snap applied."""
    tri = trimap_from_array(tri8)
    alpha = np.where(tri == 0.5, alpha, tri)
    return sad(np.clip(np.rint(snapped(alpha, tri, low, high) * 255), 0, 255).astype(np.uint8), truth, tri8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/valset"))
    ap.add_argument("--model", default="runs/phase6_packaged.safetensors", help="whose cached network mattes to use")
    ap.add_argument("--cache", type=Path, default=Path("runs/fusion_cache"))
    ap.add_argument("--upsampler", action="store_true", help="sweep the guided upsampler instead of the snap")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tag = f"{sha256_file(resolve_model_path(args.model))[:16]}-10"
    subsets = {m["name"]: m["subset"] for m in json.loads((args.data / "manifest.json").read_text())["images"]}
    rows: dict[str, dict[str, float]] = {}
    for name in sorted(subsets):
        image = read_image(args.data / "image" / f"{name}.png")
        truth = read_alpha_u8(args.data / "alpha" / f"{name}.png")
        tri8 = read_trimap_levels(args.data / "trimap" / f"{name}.png")
        tri = trimap_from_array(tri8)
        low = working_shape(*tri.shape, 0.5)
        img_low, tri_low = (downscale_image(image, low), downscale_trimap(tri, low)) if low != tri.shape else (image, tri)
        cache = args.cache / f"{args.data.name}-own" / f"{name}-{tag}.npz"
        if not cache.is_file():
            raise SystemExit(f"{cache}: no cached network matte; run benchmarks/fusion_sweep.py with this model first")
        fused = fuse_matte(img_low, tri_low, np.load(cache)["mattes"][0], None, SHIPPED)

        if args.upsampler:
            rows[name] = {f"{r}/{eps:g}": score(GuidedUpsampler(img_low, image, r, eps)(fused) if low != tri.shape else fused,
                                                tri8, truth, 0.02, 0.98) for r, eps in UPSAMPLERS}
        else:
            full = GuidedUpsampler(img_low, image)(fused) if low != tri.shape else fused
            rows[name] = {f"{lo:g}/{hi:g}": score(full, tri8, truth, lo, hi) for lo, hi in SNAPS}
        print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
    print(f"\n| {'radius / eps' if args.upsampler else 'snap low / high'} | mean SAD | median SAD | better / worse than none (of {len(rows)}) | "
          + " | ".join(sorted(set(subsets.values()))) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(set(subsets.values())))
    summary = {}
    for key in rows[next(iter(rows))]:
        v = [r[key] for r in rows.values()]
        base = [r["2/0.0001" if args.upsampler else "0/1"] for r in rows.values()]
        medians = {s: statistics.median(rows[n][key] for n in rows if subsets[n] == s) for s in sorted(set(subsets.values()))}
        summary[key] = {"mean": statistics.mean(v), "median": statistics.median(v),
                        "better": sum(a < b - 1e-9 for a, b in zip(v, base, strict=True)), "worse": sum(a > b + 1e-9 for a, b in zip(v, base, strict=True)),
                        "subset_medians": medians}
        s = summary[key]
        print(f"| {key} | {s['mean']:.2f} | {s['median']:.2f} | {s['better']} / {s['worse']} | "
              + " | ".join(f"{m:.2f}" for m in medians.values()) + " |")
    if args.json:
        command = (f"python benchmarks/faint_alpha.py --data {args.data} --model {args.model}"
                   f"{' --upsampler' if args.upsampler else ''} --json {args.json}")
        args.json.write_text(json.dumps({"command": command, "rows": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
