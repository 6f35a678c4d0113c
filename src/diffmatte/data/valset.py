"""The fixed validation set that chooses checkpoints: composites at 1-2 MP over held-out backgrounds.

It is built once, deterministically, from:

* ``GT19``-``GT27`` of alphamatting.com's training set: their foregrounds (colours
  estimated from the real photo and ground truth with :mod:`diffmatte.foreground`) scaled
  to 1-2 MP and laid over a held-out background, with a benchmark trimap;
* held-out procedural mattes from the data engine (``transparent_*`` is the transparent
  subset; ``hair_*``, ``structure_*``), drawn from seeds no training sample uses, at 1-2 MP.

Backgrounds come from the manifest's ``val`` split only, which shares no picture with the
``train`` split (diffmatte.data.backgrounds). The real photos of GT19-GT27 are then an
independent report set: checkpoints are never chosen on them.

The folder has ``image/``, ``alpha/``, ``trimap/``, ``fg/`` and ``manifest.json``; ``diffmatte
evaluate --data DIR`` and the trainer's ``val.*`` keys read it like any other dataset.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..foreground import estimate_foreground
from ..io import trimap_from_array
from ..writers import atomic_write, save_alpha, save_rgb, save_trimap, to_uint8
from .backgrounds import backgrounds_for
from .engine import load_background, synthetic_composite
from .files import load_alpha, load_rgb
from .trimaps import band_width, benchmark_trimap

__all__ = ["VALSET_SEED", "PROCEDURAL", "build_valset"]

log = logging.getLogger(__name__)

VALSET_SEED = 2_000_000_007  # training draws from (seed, key) with small seeds: never this one
# generator -> how many held-out procedural mattes
PROCEDURAL = {"transparent": 8, "hair": 5, "structure": 5, "refractive": 5}
MEGAPIXELS = (1.0, 2.0)


def _size_for(rng: np.random.Generator, aspect: float) -> tuple[int, int]:
    """(h, w) of the given aspect (h / w) with an area drawn from 1-2 MP."""
    area = rng.uniform(*MEGAPIXELS) * 1e6
    w = int(np.sqrt(area / aspect))
    return int(w * aspect), w


def _save(folder: Path, kind: str, name: str, array: np.ndarray) -> None:
    """An 8-bit image, alpha or trimap to ``folder/kind/name.png`` through diffmatte's atomic writers."""
    (folder / kind).mkdir(parents=True, exist_ok=True)
    path = folder / kind / f"{name}.png"
    if kind == "trimap":
        save_trimap(trimap_from_array(array), path)
    elif array.ndim == 3:
        save_rgb(array / 255.0, path)
    else:
        save_alpha(array / 255.0, path)


def build_valset(out_dir: str | os.PathLike[str], manifest: str | os.PathLike[str], gt_root: str | os.PathLike[str],
                 gt_names: tuple[str, ...] = tuple(f"GT{i}" for i in range(19, 28)),
                 procedural: dict[str, int] | None = None) -> list[dict[str, object]]:
    """Write the validation set to ``out_dir``; ``gt_root`` is alphamatting_training_lowres. Returns the manifest."""
    out = Path(out_dir)
    backgrounds = backgrounds_for(manifest, "val")
    entries: list[dict[str, object]] = []
    gt_root = Path(gt_root)
    for k, name in enumerate(gt_names):
        rng = np.random.default_rng([VALSET_SEED, 0, k])
        photo = load_rgb(gt_root / "input_training_lowres" / f"{name}.png")
        alpha = load_alpha(gt_root / "gt_training_lowres" / f"{name}.png")
        fg = estimate_foreground(photo.astype(np.float32) / 255.0, alpha.astype(np.float32) / 255.0)
        h, w = _size_for(rng, alpha.shape[0] / alpha.shape[1])
        fg_big = np.asarray(Image.fromarray(to_uint8(fg)).resize((w, h), Image.LANCZOS), np.float32) / 255
        a_big = np.asarray(Image.fromarray(alpha).resize((w, h), Image.BILINEAR), np.float32) / 255
        bg_path = backgrounds[int(rng.integers(len(backgrounds)))]
        bg = load_background(bg_path, h, w, rng).astype(np.float32) / 255
        image = to_uint8(a_big[..., None] * fg_big + (1 - a_big[..., None]) * bg)
        alpha8 = to_uint8(a_big)
        trimap = benchmark_trimap(alpha8, band_width(rng, h, w))
        _save(out, "image", name, image)
        _save(out, "alpha", name, alpha8)
        _save(out, "trimap", name, trimap)
        _save(out, "fg", name, to_uint8(fg_big))
        entries.append({"name": name, "kind": "alphamatting", "subset": "real_fg", "size": [w, h],
                        "background": str(bg_path), "unknown": float((trimap == 128).mean())})
        log.info("valset %s: %dx%d over %s", name, w, h, bg_path.name)
    for g, (generator, count) in enumerate((procedural or PROCEDURAL).items()):
        for k in range(count):
            rng = np.random.default_rng([VALSET_SEED, 1 + g, k])
            h, w = _size_for(rng, rng.uniform(0.6, 1.0) if rng.random() < 0.5 else 1 / rng.uniform(0.6, 1.0))
            c = synthetic_composite(rng, h, w, backgrounds, (1, 1, 1, 0), benchmark_prob=1.0, generator=generator)
            name = f"{generator}_{k + 1:02d}"
            for kind, array in (("image", c.image), ("alpha", c.alpha), ("trimap", c.trimap), ("fg", c.fg)):
                _save(out, kind, name, array)
            entries.append({"name": name, "kind": c.kind, "subset": generator, "size": [w, h],
                            "unknown": float((c.trimap == 128).mean())})
            log.info("valset %s (%s): %dx%d", name, c.kind, w, h)
    atomic_write(out / "manifest.json", lambda tmp: tmp.write_text(json.dumps({"seed": VALSET_SEED, "images": entries}, indent=1)))
    return entries
