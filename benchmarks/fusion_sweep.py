"""Fusion of closed-form's colour model with the network's matte: a sweep of its settings, per image.

    python benchmarks/fusion_sweep.py --data runs/valset --json benchmarks/results/fusion_valset.json
    python benchmarks/fusion_sweep.py --data ../shared/data/alphamatting_training_lowres --trimap-set Trimap1 \
        --images GT19-GT27 --json benchmarks/results/fusion_gt_trimap1.json

The network runs once per image and seed, at the model's working size, exactly as
``DiffMatte.predict`` does (same downscaling, seeds 0..K-1, 10 steps); its low-resolution mattes
are cached in ``--cache``, keyed by the weights' sha256. Every variant then fuses (diffmatte.fusion) at that size, is brought
back with the guided upsampler and scored at full size the DIM way (8-bit, SAD over the unknown
region). Variants: the plain network (seed 0), the seeds' mean, uniform weights, and weights
from the seeds' spread. Prints a table (mean, median, wins against the plain network) and
writes JSON with every image's SAD, so a setting is chosen on the validation set only and then
reported, unchanged, elsewhere.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from diffmatte import load_model
from diffmatte.evaluation.metrics import sad
from diffmatte.fusion import FusionConfig, fuse, fuse_matte, matting_system
from diffmatte.hashing import sha256_file
from diffmatte.io import read_alpha_u8, read_image, read_trimap_levels, trimap_from_array
from diffmatte.registry import resolve_model_path
from diffmatte.selection import select_names
from diffmatte.upsample import GuidedUpsampler, downscale_image, downscale_trimap, working_shape


def _variants() -> dict[str, tuple[str, FusionConfig | None, bool]]:
    """name -> (base matte "seed0" | "mean", fusion config or None, weights from the spread)."""
    out: dict[str, tuple[str, FusionConfig | None, bool]] = {"net": ("seed0", None, False), "mean": ("mean", None, False)}
    for lam in (1e-5, 1e-4, 1e-3, 1e-2):
        out[f"uniform {lam:g}"] = ("seed0", FusionConfig(strength=lam, floor=lam), False)
    for hi in (1e-2, 1e-3):
        for lo in (1e-5, 1e-6):
            for scale in (0.02, 0.05):
                cfg = FusionConfig(strength=hi, floor=lo, spread_scale=scale)
                out[f"spread {hi:g}/{lo:g}/{scale:g}"] = ("seed0", cfg, True)
    out["mean+spread 0.001/1e-05/0.05"] = ("mean", FusionConfig(strength=1e-3, floor=1e-5, spread_scale=0.05), True)
    for iterations in (20, 100, 200, 400, 1000):
        out[f"uniform 1e-05 x{iterations}"] = ("seed0", FusionConfig(strength=1e-5, floor=1e-5, iterations=iterations), False)
    for lam in (1e-4, 1e-3, 1e-2):
        for iterations in (400, 1000):
            out[f"uniform {lam:g} x{iterations}"] = ("seed0", FusionConfig(strength=lam, floor=lam, iterations=iterations),
                                                     False)
    for lam in (1e-5, 3e-6, 1e-6):
        for iterations in (2000, 4000):
            out[f"uniform {lam:g} x{iterations}"] = ("seed0", FusionConfig(strength=lam, floor=lam, iterations=iterations),
                                                     False)
    out["uniform 1e-06 x1000"] = ("seed0", FusionConfig(strength=1e-6, floor=1e-6, iterations=1000), False)
    # anchored (sure foreground and background in the trimap) / unanchored
    for iterations in (400, 600, 1000):
        out[f"anchored 1e-06 x{iterations} / 0.0001 x400"] = ("seed0", FusionConfig(
            strength=1e-6, floor=1e-6, iterations=iterations, unanchored_strength=1e-4, unanchored_iterations=400), False)
    # coarse to fine (coarse_to_fine below): the setting's iterations at 1/c of the size, then F at full size
    for coarse, fine, runs in ((2, 0, (500, 1000)), (2, 50, (500, 1000)), (2, 100, (500, 1000)), (2, 200, (500, 1000, 2000)),
                               (2, 400, (1000,)), (3, 100, (500, 1000))):
        for iterations in runs:
            out[f"anchored 1e-06 x{iterations} / 0.0001 x400 coarse {coarse} fine {fine}"] = ("seed0", FusionConfig(
                strength=1e-6, floor=1e-6, iterations=iterations, unanchored_strength=1e-4, unanchored_iterations=400),
                False)
    out["uniform 0.0001 ichol"] = ("seed0", FusionConfig(strength=1e-4, floor=1e-4, iterations=400,
                                                         preconditioner="ichol", tolerance=1e-6), False)
    out["mean uniform 1e-05"] = ("mean", FusionConfig(strength=1e-5, floor=1e-5), False)
    # the shipped setting with KNN matting's nonlocal Laplacian added (with_knn below), mu times
    shipped = out["anchored 1e-06 x1000 / 0.0001 x400"][1]
    for mu in (0.1, 0.3, 1.0, 3.0):
        out[f"anchored 1e-06 x1000 / 0.0001 x400 knn {mu:g}"] = ("seed0", shipped, False)
    return out


def with_knn(image: np.ndarray, trimap: np.ndarray, alpha: np.ndarray, config: FusionConfig, mu: float,
             system: tuple, knn: sp.csr_matrix) -> np.ndarray:
    """The fused matte with ``mu`` times KNN matting's Laplacian (pymatting's ``knn_laplacian``
    of the image, RGB and position features, 20 and 10 neighbours) added to closed-form's: a
    nonlocal colour model that pulls a pixel towards the alpha of far pixels of its colour (the
    wide-band real photos where KNN matting beats closed-form), same weights and CG budget."""
    unknown = (trimap == 0.5).ravel()
    rows = knn[unknown]
    l_uu, known_part = system
    combined = (l_uu + mu * rows[:, unknown], known_part + mu * (rows[:, ~unknown] @ trimap.ravel()[~unknown]))
    return fuse_matte(image, trimap, alpha, None, config, combined)


def coarse_to_fine(image: np.ndarray, trimap: np.ndarray, alpha: np.ndarray, config: FusionConfig, coarse: int,
                   fine: int, system: tuple | None = None) -> np.ndarray:
    """Fusion solved first at 1/coarse of the size (a quarter of the pixels at 2, and each CG
    iteration reaches twice as far), its change to the network's matte brought back to full size
    (bilinear), then ``fine`` CG iterations at full size from there to restore the detail.
    Measured as a way to make fusion cheaper (docs/results.md); not in the library."""
    from PIL import Image

    setting = config.for_trimap(trimap)
    h, w = trimap.shape
    low = (h // coarse, w // coarse)

    def resize(x: np.ndarray, shape: tuple[int, int], how: int) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(x, np.float32), mode="F").resize(shape[::-1], how))

    tri_low = downscale_trimap(trimap, low)
    alpha_low = np.where(tri_low == 0.5, resize(alpha, low, Image.BOX), tri_low)
    fused_low = fuse(downscale_image(image, low), tri_low, alpha_low, setting.strength, setting)
    start = np.clip(alpha + resize(fused_low - alpha_low, (h, w), Image.BILINEAR), 0, 1)
    if fine == 0:
        return np.where(trimap == 0.5, start, trimap).astype(np.float32)
    return fuse(image, trimap, alpha, setting.strength, replace(setting, iterations=fine), system, start)


def _samples(args: argparse.Namespace) -> list[tuple[str, Path, Path, Path]]:
    if args.trimap_set:
        root = args.data
        images = sorted((root / "input_training_lowres").glob("*.png"))
        names, _ = select_names([p.stem for p in images], args.images.split(",") if args.images else [])
        return [(n, root / "input_training_lowres" / f"{n}.png", root / "gt_training_lowres" / f"{n}.png",
                 root / "trimap_training_lowres" / args.trimap_set / f"{n}.png") for n in names]
    names = sorted(p.stem for p in (args.data / "image").glob("*.png"))
    if args.images:
        names, _ = select_names(names, args.images.split(","))
    return [(n, args.data / "image" / f"{n}.png", args.data / "alpha" / f"{n}.png", args.data / "trimap" / f"{n}.png")
            for n in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--trimap-set", default="", help="alphamatting layout: Trimap1 or Trimap2")
    ap.add_argument("--images", default="")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--model", default="default", help="its fusion setting is ignored: the network alone runs")
    ap.add_argument("--cache", type=Path, default=Path("runs/fusion_cache"))
    ap.add_argument("--variants", default="", help="comma-separated globs of variant names (default: all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = load_model(args.model)
    megapixels = model.config.working_megapixels
    variants = _variants()
    if args.variants:
        wanted = args.variants.split(",")
        variants = {k: v for k, v in variants.items() if k == "net" or any(fnmatch.fnmatchcase(k, w) for w in wanted)}
    per_image: dict[str, dict[str, float]] = {}
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    # keyed by the weights' hash, not the name: "default" names other weights after a repackaging
    tag = f"{sha256_file(resolve_model_path(args.model))[:16]}-{args.steps}"
    for name, image_path, alpha_path, trimap_path in _samples(args):
        image, gt = read_image(image_path), read_alpha_u8(alpha_path)
        tri8 = read_trimap_levels(trimap_path)
        tri = trimap_from_array(tri8)
        low = working_shape(*tri.shape, megapixels)
        img_low, tri_low = (downscale_image(image, low), downscale_trimap(tri, low)) if low != tri.shape else (image, tri)
        cache = args.cache / f"{args.data.name}-{args.trimap_set or 'own'}" / f"{name}-{tag}.npz"
        cached = np.load(cache)["mattes"] if cache.is_file() else np.empty((0,))
        if len(cached) >= args.seeds:
            mattes = cached[: args.seeds]
        else:
            mattes = np.stack([model.predict(img_low, tri_low, steps=args.steps, seed=s, working_megapixels=0, fusion=False)
                               for s in range(args.seeds)])
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(cache, mattes=mattes)
        upsample = GuidedUpsampler(img_low, image) if low != tri.shape else None
        spread = mattes.std(axis=0)
        system = matting_system(img_low, tri_low) if (tri_low == 0.5).any() else None
        knn = None
        if system is not None and any(" knn " in k for k in variants):
            import pymatting

            knn = pymatting.knn_laplacian(img_low.astype(np.float64)).tocsr()
        per_image[name] = {}
        for key, (base, cfg, use_spread) in variants.items():
            t0 = time.perf_counter()
            a = mattes[0] if base == "seed0" else mattes.mean(axis=0)
            if " coarse " in key:
                coarse, fine = (int(v) for v in key.split(" coarse ")[1].split(" fine "))
                a = coarse_to_fine(img_low, tri_low, a, cfg, coarse, fine, system)
            elif " knn " in key and system is not None:
                a = with_knn(img_low, tri_low, a, cfg, float(key.split(" knn ")[1]), system, knn)
            elif cfg is not None:
                a = fuse_matte(img_low, tri_low, a, spread if use_spread else None, cfg, system)
            full = upsample(a) if upsample is not None else a
            full = np.where(tri == 0.5, full, tri)
            seconds[key].append(time.perf_counter() - t0)
            per_image[name][key] = sad(np.clip(np.rint(full * 255), 0, 255).astype(np.uint8), gt, tri8)
        print(f"{name}: " + "  ".join(f"{k} {v:.2f}" for k, v in per_image[name].items()), flush=True)
    names = list(per_image)
    rows = []
    for key in variants:
        vals = np.array([per_image[n][key] for n in names])
        net = np.array([per_image[n]["net"] for n in names])
        rows.append({"variant": key, "mean_sad": float(vals.mean()), "median_sad": float(np.median(vals)),
                     "wins_vs_net": int((vals < net).sum()), "losses_vs_net": int((vals > net).sum()),
                     "seconds_after_network": float(np.mean(seconds[key]))})
    print(f"\n{len(names)} images of {args.data} {args.trimap_set}")
    print("| variant | mean SAD | median SAD | wins-losses vs net | s / image after the network |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['mean_sad']:.2f} | {r['median_sad']:.2f} | {r['wins_vs_net']}-{r['losses_vs_net']} "
              f"| {r['seconds_after_network']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": vars(args) | {"data": str(args.data), "cache": str(args.cache),
                                                                  "json": str(args.json)},
                                         "rows": rows, "per_image": per_image}, indent=1))


if __name__ == "__main__":
    main()
