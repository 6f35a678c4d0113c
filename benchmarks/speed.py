"""Inference speed per preset (issue "Core"): for each preset at 512^2 and 1024^2 and 1, 3 and
10 steps, seconds of the encoder alone, one decoder step and the whole predict, and peak RSS.

    python benchmarks/speed.py                                  # all six presets, 512 and 1024
    python benchmarks/speed.py --presets vits,res34 --modes ours,naive

Weights are random (speed does not depend on their values). See _measure.py for how.
"""
from __future__ import annotations

import argparse
import os

from _measure import RESULTS, run_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="vits,vitb,vits_1024,res34,swin_t,lite0")
    ap.add_argument("--sizes", default="512x512,1024x1024", help="comma list of HxW")
    ap.add_argument("--steps", default="1,3,10")
    ap.add_argument("--modes", default="ours", help="comma list of ours, naive, naive-kept")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=str(RESULTS / "speed.json"))
    args = ap.parse_args()
    run_grid(args.presets.split(","), args.sizes.split(","), [int(s) for s in args.steps.split(",")],
             args.modes.split(","), args.threads, args.json)


if __name__ == "__main__":
    main()
