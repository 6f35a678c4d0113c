"""Seconds to build fusion's Laplacian rows (diffmatte.laplacian.unknown_system) at the working size.

    python benchmarks/laplacian_build.py --image runs/photo2mp.png --trimap runs/photo2mp_trimap.png \
        --json benchmarks/results/laplacian_build.json

The 2 MP photo and its trimap are resized to --megapixels (0.5: the packaged model's working
size). Each allocator setting runs in its own fresh process: "kept" is what the CLI does
(diffmatte.runtime.keep_freed_memory: glibc reuses freed blocks), "default" is a Python program
that just calls predict (glibc hands blocks above 32 MB back to the system, and each new one
costs page faults). First call and the median of the next --repeats; peak RSS of the process.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _measure import child_json  # a sibling script


def measure(image: Path, trimap: Path, megapixels: float, repeats: int) -> dict:
    from PIL import Image

    from diffmatte.io import load_image, read_alpha
    from diffmatte.laplacian import unknown_system
    from diffmatte.writers import to_uint8

    img, tri = load_image(image), read_alpha(trimap)
    f = (megapixels * 1e6 / (img.shape[0] * img.shape[1])) ** 0.5
    h, w = round(img.shape[0] * f), round(img.shape[1] * f)
    im = np.asarray(Image.fromarray(to_uint8(img)).resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255
    tr = np.asarray(Image.fromarray(to_uint8(tri)).resize((w, h), Image.Resampling.NEAREST), np.float32) / 255
    tr = np.where(np.abs(tr - 0.5) < 0.1, 0.5, np.round(tr))
    seconds = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        unknown_system(im, tr)
        seconds.append(time.perf_counter() - t)
    return {"size": [w, h], "unknown": float((tr == 0.5).mean()), "first_s": round(seconds[0], 3),
            "median_s": round(statistics.median(seconds[1:]), 3),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--trimap", type=Path, required=True)
    ap.add_argument("--megapixels", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["kept", "default"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child == "kept":
            from diffmatte.runtime import keep_freed_memory

            keep_freed_memory()
        print(json.dumps(measure(args.image, args.trimap, args.megapixels, args.repeats)))
        return
    rows = []
    for setting in ("kept", "default"):
        out = child_json([sys.executable, __file__, "--image", str(args.image), "--trimap", str(args.trimap),
                          "--megapixels", str(args.megapixels), "--repeats", str(args.repeats), "--child", setting])
        if "error" in out:
            raise SystemExit(f"{setting}: {out['error']}")
        rows.append({"allocator": setting} | out)
    print(f"{args.image} at {args.megapixels} MP ({rows[0]['size'][0]}x{rows[0]['size'][1]}, "
          f"{rows[0]['unknown']:.0%} unknown)\n")
    print("| allocator | first call (s) | median of the next (s) | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['allocator']} | {r['first_s']} | {r['median_s']} | {r['peak_rss_mib']} |")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
