"""Peak memory and time against megapixels (issue "Matting as a product", item 5): ViT-S and
Res34 at 0.25, 1, 4 and 8.3 MP (3840x2160), 10 steps by default.

    python benchmarks/memory.py
    python benchmarks/memory.py --presets vits --sizes 2160x3840

Peak RSS is the whole process (model and libraries included). See _measure.py for how.
"""
from __future__ import annotations

import argparse
import os

from _measure import RESULTS, run_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="vits,res34")
    ap.add_argument("--sizes", default="512x512,1024x1024,2048x2048,2160x3840", help="comma list of HxW")
    ap.add_argument("--steps", default="10")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=str(RESULTS / "memory.json"))
    args = ap.parse_args()
    run_grid(args.presets.split(","), args.sizes.split(","), [int(s) for s in args.steps.split(",")], ["ours"],
             args.threads, args.json)


if __name__ == "__main__":
    main()
