"""Do the suggested windows help a user most? A simulated user corrects the trimap, five rounds.

    python benchmarks/simulated_user.py --data ../shared/data/alphamatting_training_lowres --trimap-set Trimap2 \
        --images GT19-GT27 --json benchmarks/results/simulated_user_gt_trimap2.json --plot docs/simulated_user.png
    python benchmarks/simulated_user.py --data runs/valset --images GT19-GT23,hair_* \
        --json benchmarks/results/simulated_user_valset.json --plot docs/simulated_user_valset.png

``--data`` is the alphamatting.com layout (input_training_lowres/, gt_training_lowres/,
trimap_training_lowres/SET/) or the composited validation set's (image/, alpha/, trimap/:
`make valset`).

As interactive-matting papers measure it: each round the user corrects one window of --size px
(inside it, every pixel the ground truth calls definite, alpha 0 or 1, is painted background or
foreground; the rest stays unknown) and the image is matted again. The window is chosen
  - suggested: the first of ``diffmatte.suggest.suggest_windows`` on the matte's uncertainty
    (``predict(..., seeds=4, uncertainty=True)``),
  - largest unknown: the window holding the most unknown pixels,
  - random: centred on a random unknown pixel (seeded).
Every strategy mattes the same way (default settings, 4 seeds, their mean), so only the choice of
window differs. SAD (DIM, 8-bit) per round, per image; prints the mean per round and writes JSON
(and a plot with --plot).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np


def correct(trimap: np.ndarray, truth8: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The trimap with the window's definite ground-truth pixels painted in."""
    left, top, right, bottom = box
    out = trimap.copy()
    win = (slice(top, bottom), slice(left, right))
    gt = truth8[win]
    out[win] = np.where(gt == 0, 0.0, np.where(gt == 255, 1.0, out[win]))
    return out


def window_at(cy: int, cx: int, size: int, h: int, w: int) -> tuple[int, int, int, int]:
    top, left = min(max(cy - size // 2, 0), max(h - size, 0)), min(max(cx - size // 2, 0), max(w - size, 0))
    return left, top, min(left + size, w), min(top + size, h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="alphamatting.com or validation-set layout")
    ap.add_argument("--trimap-set", default="Trimap2")
    ap.add_argument("--images", default="GT19-GT27")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    from diffmatte import load_model
    from diffmatte.evaluation.metrics import sad
    from diffmatte.io import load_pair, read_alpha_u8
    from diffmatte.selection import select_names
    from diffmatte.suggest import suggest_windows
    from diffmatte.writers import to_uint8

    model = load_model("default")
    root = args.data
    from _layouts import LabelledSet

    data = LabelledSet(root, args.trimap_set)
    valset, files = data.valset, data.files
    names, _ = select_names(data.names(), args.images.split(","))

    strategies = ("suggested", "largest unknown", "random")
    curves: dict[str, dict[str, list[float]]] = {s: {} for s in strategies}
    for name in names:
        image_file, trimap_file, alpha_file = files(name)
        image, trimap0 = load_pair(image_file, trimap_file)
        truth8 = read_alpha_u8(alpha_file)
        h, w = trimap0.shape
        rng = np.random.default_rng(0)

        # scored over the original trimap's unknown region, so every round counts the same pixels
        scored = np.select([trimap0 == 0, trimap0 == 1], [0, 255], 128).astype(np.uint8)

        def matte(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
            alpha, u = model.predict(image, tri, 10, 0, seeds=args.seeds, uncertainty=True)
            return alpha, u, sad(to_uint8(alpha), truth8, scored)

        first = matte(trimap0)
        for strategy in strategies:
            tri, (alpha, u, score) = trimap0.copy(), first
            curve = [score]
            for _ in range(args.rounds):
                if strategy == "suggested":
                    found = suggest_windows(u, args.size, 1)
                    if not found:
                        curve.append(curve[-1])
                        continue
                    s = found[0]
                    box = (s.left, s.top, s.right, s.bottom)
                elif strategy == "largest unknown":
                    unknown = (tri == 0.5).astype(np.float64)
                    found = suggest_windows(unknown, args.size, 1)
                    box = (found[0].left, found[0].top, found[0].right, found[0].bottom)
                else:
                    ys, xs = np.nonzero(tri == 0.5)
                    k = int(rng.integers(len(ys)))
                    box = window_at(int(ys[k]), int(xs[k]), args.size, h, w)
                tri = correct(tri, truth8, box)
                alpha, u, score = matte(tri)
                curve.append(score)
            curves[strategy][name] = curve
            print(f"{name} {strategy}: " + " ".join(f"{v:.2f}" for v in curve), flush=True)
    means = {s: [statistics.mean(curves[s][n][r] for n in names) for r in range(args.rounds + 1)] for s in strategies}
    print(f"\n{len(names)} images, {'validation set' if valset else args.trimap_set}, windows of {args.size} px, {args.seeds} seeds, "
          f"model default ({model.precision}); mean SAD after each correction")
    print("| strategy | " + " | ".join(str(r) for r in range(args.rounds + 1)) + " |")
    print("|---|" + "---:|" * (args.rounds + 1))
    for s in strategies:
        print(f"| {s} | " + " | ".join(f"{v:.3f}" for v in means[s]) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "precision": model.precision,
                                         "mean_sad_per_round": means, "per_image": curves}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
        for s in strategies:
            ax.plot(range(args.rounds + 1), means[s], marker="o", label=s)
        ax.set_xlabel(f"corrections ({args.size} px windows)")
        ax.set_ylabel("mean SAD")
        ax.set_title(f"simulated user, {args.images} {'(validation set)' if valset else args.trimap_set}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)


if __name__ == "__main__":
    main()
