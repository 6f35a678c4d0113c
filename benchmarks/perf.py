"""Performance against image size and steps (issue "Performance"): seconds of the encoder,
one decoder step and whole predicts, peak RSS, and achieved GFLOP/s against this machine's
measured matmul throughput; a table, JSON and a plot.

    python benchmarks/perf.py                                       # ViT-S, Res34; 512^2 .. 2880x1920
    python benchmarks/perf.py --modes ours,naive --sizes 1024x1024  # against the official-style execution
    python benchmarks/perf.py --plot-only benchmarks/results/speed.json benchmarks/results/perf.json

See _measure.py for the modes and how the step totals are timed.
"""
from __future__ import annotations

import argparse
import json
import os

from _measure import RESULTS, run_grid


def plot(rows: list[dict], steps_list: list[int], path: str) -> None:
    """Time against megapixels (one line per step count) and against steps (largest size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    # One colour per (preset, mode), one line style per step count: 20+ lines stay readable.
    keys = sorted({(r["preset"], r["mode"]) for r in ok})
    colours = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    dashes = ["-", "--", ":", "-."]
    for i, key in enumerate(keys):
        rs = sorted((r for r in ok if (r["preset"], r["mode"]) == key), key=lambda r: r["megapixels"])
        colour = colours(i)
        for j, k in enumerate(steps_list):
            ax1.plot([r["megapixels"] for r in rs], [r[f"total_{k}_s"] for r in rs], dashes[j % len(dashes)],
                     color=colour, marker="o", label=f"{key[0]} {key[1]}" if j == len(steps_list) - 1 else None)
        biggest = rs[-1]
        ax2.plot(steps_list, [biggest[f"total_{k}_s"] for k in steps_list], "-", color=colour, marker="o",
                 label=f"{key[0]} {key[1]}, {biggest['height']}x{biggest['width']}")
    for j, k in enumerate(steps_list):
        ax1.plot([], [], dashes[j % len(dashes)], color="grey", label=f"{k} steps")
    ax1.set(xlabel="megapixels", ylabel="seconds", title="predict time against image size")
    ax2.set(xlabel="sampling steps", ylabel="seconds", title="predict time against steps (largest size)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="vits,res34")
    ap.add_argument("--sizes", default="512x512,1024x1024,2048x2048,1920x2880", help="comma list of HxW")
    ap.add_argument("--steps", default="1,3,10")
    ap.add_argument("--modes", default="ours", help="comma list of ours, naive, naive-kept")
    ap.add_argument("--naive-max-mp", type=float, default=1.1, help="run 'naive' only up to this size")
    ap.add_argument("--direct-mp", type=float, default=1.1, help="time each step count separately up to this size")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=str(RESULTS / "perf.json"))
    ap.add_argument("--plot", default=str(RESULTS / "perf.png"))
    ap.add_argument("--plot-only", nargs="+", metavar="JSON", help="only plot these result files together")
    args = ap.parse_args()
    steps_list = [int(s) for s in args.steps.split(",")]
    if args.plot_only:
        rows = [r for p in args.plot_only for r in json.loads(open(p).read())["rows"]]
    else:
        rows = run_grid(args.presets.split(","), args.sizes.split(","), steps_list, args.modes.split(","),
                        args.threads, args.json, args.direct_mp, args.naive_max_mp)
    if args.plot:
        try:
            plot(rows, steps_list, args.plot)
        except ImportError:
            print("matplotlib is not installed: no plot")


if __name__ == "__main__":
    main()
