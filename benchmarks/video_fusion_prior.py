"""Does fusion with a memory of the previous frame lower dtSSD on the moving clips?

On the moving clips of benchmarks/video_quality.py the default's matte is mostly the fusion's: its
CG, 1000 iterations where the carried trimap marks both sides, gets near closed-form's converged
answer for that trimap, so warm starts and fixed noise leave dtSSD where independent frames put it
(docs/video.md). Two ways to give the fusion itself a memory, tried here on warm-started frames
(the default `diffmatte video` settings otherwise, steady filter on):

* ``start``: CG starts from the previous final matte moved to this frame (the warm start's
  ``init``, at the working size) instead of the network's matte;
* ``start xN``: the same, with N CG iterations instead of the setting's (the solver's own warm
  start: the previous answer moved, and a few iterations to fit it to this frame);
* ``prior W``: a second data term, W * (alpha - moved previous matte)^2 over the unknown pixels,
  beside the network's (its target and weight are combined into fuse()'s one term).

The library has neither; this wraps ``diffmatte.pipeline.fuse_matte`` to add them.

    PATH=.venv/bin:$PATH python benchmarks/video_fusion_prior.py --json benchmarks/results/video_fusion_prior.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_quality import _moving_clips, _score  # noqa: E402

from diffmatte import load_model, pipeline  # noqa: E402
from diffmatte.fusion import confidence_weights, fuse  # noqa: E402
from diffmatte.pipeline import DiffMatte  # noqa: E402
from diffmatte.runtime import keep_freed_memory  # noqa: E402

_STATE: dict = {"init": None, "variant": "none"}
_predict = DiffMatte.predict


def _remember_init(self, image, trimap, steps=10, **kwargs):  # type: ignore[no-untyped-def]
    _STATE["init"] = kwargs.get("init")
    return _predict(self, image, trimap, steps, **kwargs)


def _fuse_with_memory(image, trimap, alpha, spread, config, system=None):  # type: ignore[no-untyped-def]
    setting = config.for_trimap(trimap)
    weights = confidence_weights(spread, np.shape(alpha), setting)
    previous, variant = _STATE["init"], _STATE["variant"]
    if previous is None or variant == "none":
        return fuse(image, trimap, alpha, weights, setting, system)
    if previous.shape != alpha.shape:  # the warm start's init is at full size; fusion works at the working size
        previous = np.asarray(Image.fromarray(np.asarray(previous, np.float32), mode="F")
                              .resize(alpha.shape[::-1], Image.BILINEAR))
    if variant.startswith("start"):
        if " x" in variant:  # fewer iterations: the previous frame's answer is the better part of the solve
            setting = replace(setting, iterations=int(variant.split(" x")[1]))
        return fuse(image, trimap, alpha, weights, setting, system, start=previous)
    w_prior = float(variant.split()[1])
    w = np.broadcast_to(np.asarray(weights, np.float64), alpha.shape)
    target = (w * alpha + w_prior * previous) / (w + w_prior)
    return fuse(image, trimap, target, w + w_prior, setting, system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="none,start,prior 0.001,prior 0.01")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    DiffMatte.predict = _remember_init  # type: ignore[method-assign]
    pipeline.fuse_matte = _fuse_with_memory  # type: ignore[assignment]
    keep_freed_memory()
    model = load_model()
    clips = _moving_clips(3, args.frames, (720, 1280))
    rows, summary = [], []
    for variant in args.variants.split(","):
        _STATE["variant"] = variant
        sel = []
        for name, clip, trimap in clips:
            row = _score(model, clip, trimap, dict(mode="warm")) | {"clip": name, "variant": variant}
            sel.append(row)
            print(f"{variant:12s} {name:32s} SAD {row['sad']:.3f} dtSSD {row['dtssd']:.3f}", flush=True)
        rows += sel
        summary.append({"variant": variant, "sad": float(np.mean([r["sad"] for r in sel])),
                        "dtssd": float(np.mean([r["dtssd"] for r in sel]))})
    base = {r["clip"]: r["dtssd"] for r in rows if r["variant"] == "none"}
    print("\n| fusion in warm frames | mean SAD | mean dtSSD | clips with lower dtSSD than none |\n|---|---:|---:|---:|")
    for s in summary:
        lower = sum(r["dtssd"] < base.get(r["clip"], -1) for r in rows if r["variant"] == s["variant"])
        s["lower_on"] = lower
        print(f"| {s['variant']} | {s['sad']:.3f} | {s['dtssd']:.3f} | {lower} of {len(clips)} |")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python"] + sys.argv), "rows": rows,
                                         "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
