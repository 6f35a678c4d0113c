"""Peak memory and time against image size (megapixels), ViT-S and Res34 by default.

    python benchmarks/memory.py                         # 0.25, 1, 4 and 8.3 MP (3840x2160), 10 steps
    python benchmarks/memory.py --presets vits --sizes 2880x1920 --steps 1

One fresh subprocess per (preset, size): its peak RSS is the whole process (model included).
Prints a Markdown table and writes JSON (--json).
"""
from __future__ import annotations

import argparse
import os

from _measure import HERE, print_row, run_child, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="vits,res34")
    ap.add_argument("--sizes", default="512x512,1024x1024,2048x2048,2160x3840", help="comma list of HxW")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=str(HERE / "results" / "memory.json"))
    args = ap.parse_args()

    print_row(["preset", "size (HxW)", "MP", f"{args.steps} steps s", "peak RSS MiB"])
    print("|---|---|---|---|---|")
    rows = []
    for preset in args.presets.split(","):
        for size in args.sizes.split(","):
            row = run_child(preset, size, str(args.steps), 1, args.threads, breakdown=False)
            rows.append(row)
            if "error" in row:
                print_row([preset, size, "", row["error"], ""])
            else:
                print_row([preset, size, f"{row['megapixels']:.2f}", f"{row[f'total_{args.steps}_s']:.1f}",
                           f"{row['peak_rss_mib']:.0f}"])
    write_json(args.json, args.threads, rows)


if __name__ == "__main__":
    main()
