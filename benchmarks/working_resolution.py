"""Quality and seconds of matting at full resolution against a lower working resolution + guided upsampling.

    python benchmarks/working_resolution.py --data runs/valset --model default --steps 10 \
        --megapixels 0,0.5,1 --json benchmarks/results/working_resolution_valset.json

``--data`` is a folder with image/, alpha/ and trimap/ (the composited validation set made by
``make valset``, or alphamatting_training_lowres with --trimap-set). Prints a Markdown table (mean
SAD, MSE x1e3, Grad, Conn and seconds per image for each working size; 0 = full resolution) and
writes the per-image rows to JSON. Time it on a quiet machine (nothing else running).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from diffmatte import load_model
from diffmatte.evaluation.metrics import compute_all
from diffmatte.io import read_alpha_u8, read_trimap_levels
from diffmatte.runtime import keep_freed_memory
from diffmatte.selection import select_names, split_patterns


def _pairs(data: Path, trimap_set: str, names: str) -> list[tuple[str, Path, Path, Path]]:
    if (data / "image").is_dir():
        img_dir, alpha_dir, tri_dir = data / "image", data / "alpha", data / "trimap"
    else:  # alphamatting layout
        img_dir, alpha_dir = data / "input_training_lowres", data / "gt_training_lowres"
        tri_dir = data / "trimap_training_lowres" / trimap_set
    stems = sorted(p.stem for p in img_dir.glob("*.png"))
    if names:
        stems, problems = select_names(stems, split_patterns(names))
        if problems:
            raise SystemExit("; ".join(problems))
    return [(s, img_dir / f"{s}.png", alpha_dir / f"{s}.png", tri_dir / f"{s}.png") for s in stems]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model", default="default")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--megapixels", default="0,0.5,1")
    ap.add_argument("--flip-tta", default="0", help="0, 1 or 0,1: without / with flip test-time augmentation")
    ap.add_argument("--trimap-set", default="Trimap1")
    ap.add_argument("--images", default="", help="names, globs or ranges, e.g. GT19-GT27 or 'transparent_*'")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    keep_freed_memory()  # as the CLI does
    model = load_model(args.model)
    sizes = [float(x) for x in args.megapixels.split(",")]
    ttas = [bool(int(x)) for x in args.flip_tta.split(",")]
    settings = [(mp, tta) for mp in sizes for tta in ttas]
    rows = []
    for name, image, alpha, trimap in _pairs(args.data, args.trimap_set, args.images):
        gt, tri = read_alpha_u8(alpha), read_trimap_levels(trimap)  # as `evaluate` reads them
        for mp, tta in settings:
            t0 = time.perf_counter()
            pred = model.predict(image, trimap, steps=args.steps, seed=0, working_megapixels=mp, flip_tta=tta)
            seconds = time.perf_counter() - t0
            p8 = np.clip(np.rint(pred * 255), 0, 255).astype(np.uint8)
            rows.append({"image": name, "megapixels": mp, "flip_tta": tta, "seconds": seconds,
                         "size": list(gt.shape[::-1]), **compute_all(p8, gt, tri)})
            print(f"{name} {mp:g} MP{' tta' if tta else ''}: SAD {rows[-1]['sad']:.2f} in {seconds:.2f} s", flush=True)
    print("\n| working MP | flip TTA | images | SAD | MSE x1e3 | Grad | Conn | s/image |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for mp, tta in settings:
        r = [x for x in rows if x["megapixels"] == mp and x["flip_tta"] == tta]
        mean = {k: float(np.mean([x[k] for x in r])) for k in ("sad", "mse", "grad", "conn", "seconds")}
        label = "full" if mp == 0 else f"{mp:g}"
        print(f"| {label} | {'yes' if tta else 'no'} | {len(r)} | {mean['sad']:.2f} | {mean['mse']:.2f} | {mean['grad']:.2f} | {mean['conn']:.2f} | {mean['seconds']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
