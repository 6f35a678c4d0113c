"""Inference speed and peak memory per preset, image size and step count.

    python benchmarks/speed.py                                  # all official presets, 512 and 1024
    python benchmarks/speed.py --presets vits,res34 --sizes 512x512,2048x2048 --steps 1,3,10

Each (preset, size) runs in a fresh subprocess so that its peak RSS is its own. Reported:
the encoder alone, one decoder step, and the whole `DiffMatte.sample` call per step count
(seconds, best of --repeats), plus the process's peak RSS. Weights are random (speed does
not depend on their values). Prints a Markdown table and writes JSON (--json).
"""
from __future__ import annotations

import argparse
import os

from _measure import HERE, print_row, run_child, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="vits,vitb,vits_1024,res34,swin_t")
    ap.add_argument("--sizes", default="512x512,1024x1024", help="comma list of HxW")
    ap.add_argument("--steps", default="1,3,10")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=str(HERE / "results" / "speed.json"))
    args = ap.parse_args()
    steps_list = args.steps.split(",")

    header = ["preset", "size", "encoder s", "decoder step s"] + [f"{s} steps s" for s in steps_list] + ["peak RSS MiB"]
    print_row(header)
    print("|" + "---|" * len(header))
    rows = []
    for preset in args.presets.split(","):
        for size in args.sizes.split(","):
            row = run_child(preset, size, args.steps, args.repeats, args.threads, breakdown=True)
            rows.append(row)
            if "error" in row:
                print_row([preset, size, row["error"]])
                continue
            cells = [preset, size, f"{row['encoder_s']:.2f}", f"{row['decoder_step_s']:.2f}"]
            cells += [f"{row[f'total_{s}_s']:.2f}" for s in steps_list] + [f"{row['peak_rss_mib']:.0f}"]
            print_row(cells)
    write_json(args.json, args.threads, rows)


if __name__ == "__main__":
    main()
