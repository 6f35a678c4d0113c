"""Does taking the old background's hue out of the cutout's edge colours ("despill") help?

The lemur's automatic-trimap cutout keeps a green tint in fur the matte calls opaque, where no
foreground estimator can act (alpha 1 means the colour is the image's). Keying tools answer
that with a despill: near the matte's edge, remove the part of the foreground's chroma that
points along the local background's chroma. This measures it where the truth is known: every
image of the composited validation set, the packaged model's matte (its trimap, 10 steps,
seed 0), the multi-level estimator's F and B, then F with the despill; each composited over
mid-grey and compared with the true foreground over the same grey (sum over pixels of the mean
|difference| over RGB, / 1000, like SAD).

    python benchmarks/despill.py --data runs/valset --json benchmarks/results/despill_valset.json

Variants: reach R (the despill fades out R px inside the opaque region, as a fraction of the
longer side) and cap C (at most C times the background's own chroma is removed), through
``diffmatte.foreground.remove_spill`` (`--despill`, off by default, is R 5%, C 0.5); "relative"
variants remove only the chroma beyond the opaque interior's (``relative_despill`` here).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from scipy import ndimage

from diffmatte.foreground import estimate_foreground_background, remove_spill
from diffmatte.io import load_image, read_alpha
from diffmatte.loading import load_model

VARIANTS = {"none": None, "R 2%, C 0.3": (0.02, 0.3), "R 3%, C 0.3": (0.03, 0.3), "R 3%, C 1": (0.03, 1.0),
            "R 5%, C 0.5": (0.05, 0.5), "relative R 3%": ("relative", 0.03), "relative R 6%": ("relative", 0.06)}


def relative_despill(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, reach: float) -> np.ndarray:
    """Only the chroma along the background's hue in excess of the object's own: within ``reach``
    px of the matte's edge, a colour whose chroma points further toward the local background's hue
    than the opaque interior's nearby (its colours averaged over ``reach``) loses that excess. A
    foreground that shares the background's hue has it inside too, so it keeps its colour."""
    def chroma(x: np.ndarray) -> np.ndarray:
        return x - x.mean(-1, keepdims=True)

    opaque = alpha >= 0.98
    depth = ndimage.distance_transform_edt(opaque)
    interior = (depth > reach).astype(np.float64)
    c_fg = chroma(fg)
    num = np.stack([ndimage.gaussian_filter(c_fg[..., c] * interior, reach) for c in range(3)], -1)
    inside = num / np.maximum(ndimage.gaussian_filter(interior, reach), 1e-6)[..., None]
    bg_chroma = chroma(bg)
    hue = bg_chroma / np.maximum(np.linalg.norm(bg_chroma, axis=-1, keepdims=True), 1e-6)
    excess = np.maximum(((c_fg - inside) * hue).sum(-1, keepdims=True), 0)
    near = ((depth <= reach) & (alpha > 0))[..., None]
    return np.clip(fg - near * excess * hue, 0, 1)


def lemur_tint(model, variants: dict) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The lemur example's "edge tint" for each variant (benchmarks/auto_trimap_band.py's measure):
    G - (R + B) / 2 of the cutout's colour on the 0-255 scale, alpha-weighted over the hand-drawn
    trimap's unknown region, from the automatic trimap's matte (the app's default path)."""
    from diffmatte.trimap import auto_trimap

    repo = Path(__file__).resolve().parents[1]
    image = load_image(repo / "examples" / "lemur.jpg")
    hand_unknown = np.abs(read_alpha(repo / "examples" / "lemur_trimap.png") - 0.5) < 0.25
    alpha = model.predict(image, auto_trimap(image), 10, 0)
    fg, bg = estimate_foreground_background(image, alpha)
    weight = alpha * hand_unknown
    out = {}
    for variant, v in variants.items():
        f = _apply(variant, v, fg, bg, alpha) * 255
        green = f[..., 1] - (f[..., 0] + f[..., 2]) / 2
        out[variant] = round(float((green * weight).sum() / weight.sum()), 2)
    return out


def _apply(variant: str, v: tuple | None, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    if v is None:
        return fg
    if v[0] == "relative":
        return relative_despill(fg, bg, alpha, v[1] * max(alpha.shape))
    return remove_spill(fg, bg, alpha, v[0] * max(alpha.shape), v[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/valset"))
    ap.add_argument("--cache", type=Path, default=Path("runs/despill_alpha"), help="the model's mattes (.npy), made if missing")
    ap.add_argument("--auto-trimap", action="store_true",
                    help="matte from the automatic trimap (the app's default path) instead of the set's trimap; "
                         "images without a salient object are left out")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    manifest = {m["name"]: m["subset"] for m in json.loads((args.data / "manifest.json").read_text())["images"]}
    model = None
    rows = []
    for name in sorted(manifest):
        image = load_image(next((args.data / "image").glob(f"{name}.*")))
        cached = args.cache / f"{name}{'-auto' if args.auto_trimap else ''}.npy"
        if not cached.exists():
            model = model or load_model("default")
            if args.auto_trimap:
                from diffmatte.errors import InputError
                from diffmatte.trimap import auto_trimap

                try:
                    trimap = auto_trimap(image)
                except InputError as e:
                    print(name, f"left out: {e}", flush=True)
                    continue
            else:
                trimap = read_alpha(next((args.data / "trimap").glob(f"{name}.*")))
            np.save(cached, model.predict(image, trimap, 10, 0))
        alpha = np.load(cached)
        truth = read_alpha(next((args.data / "alpha").glob(f"{name}.*")))[..., None]
        true_fg = load_image(next((args.data / "fg").glob(f"{name}.*")))
        fg, bg = estimate_foreground_background(image, alpha)
        target = truth * true_fg + (1 - truth) * 0.5
        row: dict[str, object] = {"image": name, "subset": manifest[name]}
        for variant, v in VARIANTS.items():
            f = _apply(variant, v, fg, bg, alpha)
            shown = alpha[..., None] * f + (1 - alpha[..., None]) * 0.5
            row[variant] = float(np.abs(shown - target).mean(-1).sum() / 1000)
        rows.append(row)
        print(name, {k: round(x, 3) for k, x in row.items() if isinstance(x, float)}, flush=True)
    tint = lemur_tint(model or load_model("default"), VARIANTS)
    print("\n| variant | mean | median | better / worse than none (of %d) | lemur edge tint |" % len(rows))
    print("|---|---:|---:|---:|---:|")
    summary = {}
    for variant in VARIANTS:
        v = [float(r[variant]) for r in rows]  # type: ignore[arg-type]
        base = [float(r["none"]) for r in rows]  # type: ignore[arg-type]
        better = sum(x < b - 1e-6 for x, b in zip(v, base, strict=True))
        worse = sum(x > b + 1e-6 for x, b in zip(v, base, strict=True))
        summary[variant] = {"mean": round(statistics.mean(v), 3), "median": round(statistics.median(v), 3),
                            "better": better, "worse": worse, "lemur_edge_tint": tint[variant]}
        print(f"| {variant} | {summary[variant]['mean']} | {summary[variant]['median']} | {better} / {worse} "
              f"| {tint[variant]} |")
    if args.json:
        command = f"python benchmarks/despill.py --data {args.data}{' --auto-trimap' if args.auto_trimap else ''} --json {args.json}"
        args.json.write_text(json.dumps({"command": command, "rows": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
