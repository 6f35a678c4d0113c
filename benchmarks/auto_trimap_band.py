"""How wide should the automatic trimap's unknown band be? Quality of the packaged default model's
matte with automatic trimaps of several band widths, on the composited validation set (ground truth
known), and the colour of the lemur example's semi-transparent cutout pixels (the green halo).

Automatic trimaps of different widths leave different pixels unknown, so the SAD here is over the
whole image (every pixel, / 1000), not the trimap's unknown region.

    python benchmarks/auto_trimap_band.py --data runs/valset --fractions 0.01,0.02,0.03 \
        --json benchmarks/results/auto_trimap_band.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from diffmatte.io import load_image, read_alpha
from diffmatte.loading import load_model
from diffmatte.trimap import SalientObjectModel, trimap_from_mask

REPO = Path(__file__).resolve().parents[1]


def bands(spec: str, h: int, w: int) -> tuple[int, int, tuple[float, float]]:
    """(outside, inside) widths in px of a band given as "F" or "F/G" (fractions of the longer side),
    and the mask's soft range: "F/G@H" makes values below H (and above 0.05) unknown (default 0.95)."""
    spec, _, high = spec.partition("@")
    outer, _, inner = spec.partition("/")
    soft = (0.05, float(high or 0.95))
    return max(5, round(float(outer) * max(h, w))), max(5, round(float(inner or outer) * max(h, w))), soft


def green_excess(model, salient, spec: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The lemur cutout's green, G - (R + B) / 2 on the 0-255 scale: the mean over its pixels with
    0.05 < alpha < 0.95 ("green_excess"), and the alpha-weighted mean over the hand-drawn
    trimap's unknown region ("edge_tint"), which also sees fur an automatic trimap calls opaque."""
    from diffmatte import cutout

    image = load_image(REPO / "examples" / "lemur.jpg")
    hand_unknown = np.abs(read_alpha(REPO / "examples" / "lemur_trimap.png") - 0.5) < 0.25
    prob = salient.probability(image)
    outer, inner, soft = bands(spec, *image.shape[:2])
    alpha = model.predict(image, trimap_from_mask(prob, outer, inner, soft), 10, 0)
    rgb = cutout(image, alpha)[..., :3] * 255
    green = rgb[..., 1] - (rgb[..., 0] + rgb[..., 2]) / 2
    semi = (alpha > 0.05) & (alpha < 0.95)
    weight = alpha * hand_unknown
    return {"band_px": [outer, inner], "semi_pixels": int(semi.sum()), "mean_rgb": rgb[semi].mean(0).round(1).tolist(),
            "green_excess": round(float(green[semi].mean()), 2),
            "edge_tint": round(float((green * weight).sum() / weight.sum()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/valset"))
    ap.add_argument("--fractions", default="0.01,0.02,0.03",
                    help="band half-widths as fractions of the longer side; F/G: F outside the mask, G inside")
    ap.add_argument("--model", default="default")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    specs = args.fractions.split(",")
    model = load_model(args.model, precision="fp32")
    salient = SalientObjectModel()
    names = sorted(p.stem for p in (args.data / "image").iterdir())
    rows = []
    for name in names:
        image = load_image(next((args.data / "image").glob(f"{name}.*")))
        truth = read_alpha(next((args.data / "alpha").glob(f"{name}.*")))
        prob = salient.probability(image)
        row: dict[str, object] = {"image": name}
        for f in specs:
            outer, inner, soft = bands(f, *image.shape[:2])
            try:
                tri = trimap_from_mask(prob, outer, inner, soft)
            except Exception as e:  # no salient object: the automatic trimap refuses
                row[f] = None
                row["error"] = str(e)
                continue
            t0 = time.perf_counter()
            alpha = model.predict(image, tri, 10, 0)
            row[f] = float(np.abs(alpha - truth).sum() / 1000)
            row[f"{f}_s"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
        print(name, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items() if k != "image"},
              flush=True)
    keys = specs
    solved = [r for r in rows if all(r.get(k) is not None for k in keys)]
    summary = {}
    for k in keys:
        v = [r[k] for r in solved]
        wins = {o: sum(r[k] < r[o] for r in solved) for o in keys if o != k}
        summary[k] = {"mean_sad": round(statistics.mean(v), 2), "median_sad": round(statistics.median(v), 2),
                      "wins_against": wins}
    halo = {k: green_excess(model, salient, k) for k in keys}
    print(f"\n{len(solved)} of {len(rows)} images with an automatic trimap at every width; SAD over the whole image")
    print("| band (fraction of the longer side) | mean SAD | median SAD | wins against the others "
          "| lemur: green excess | lemur: edge tint |")
    print("|---|---:|---:|---|---:|---:|")
    for k in keys:
        s = summary[k]
        w = ", ".join(f"{o}: {n}-{len(solved) - n}" for o, n in s["wins_against"].items())
        print(f"| {k} | {s['mean_sad']} | {s['median_sad']} | {w} | {halo[k]['green_excess']} | {halo[k]['edge_tint']} |")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "rows": rows, "summary": summary,
                                         "lemur_halo": halo}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
