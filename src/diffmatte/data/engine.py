"""The data engine: one synthetic composite from a chosen generator, a background and a trimap.

:func:`synthetic_composite` is the whole recipe, NumPy in and out, so the training dataset
(:class:`diffmatte.data.datasets.SyntheticDataset`, small canvases then a crop) and the fixed
validation set (:mod:`diffmatte.data.valset`, 1-2 MP) make their images the same way:

1. a generator draws a foreground layer (colours, alpha, how its trimap is drawn):
   ``transparent`` (glass, plastic, smoke, water, veils), ``hair`` (strands, clumps,
   flyaways), ``structure`` (motion/defocus blur, nets, lace, sieves) or ``recolour`` (a
   real matte's shape with colours from an unrelated photo);
2. a background photo is cropped and resized to the canvas; colours for the foreground
   come from a different photo;
3. the composite is ``alpha * F + (1 - alpha) * B`` in 8-bit, as a camera file would be;
4. the trimap is the benchmark's (a band up to 5% of the long side, whole-object unknown
   for transparent matter) or, with probability ``1 - benchmark_prob``, the official
   pipeline's random erosion.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from ..writers import to_uint8
from . import augment as A
from .files import read_background
from .synthetic.hair import make_hair
from .synthetic.procedural import Layer
from .synthetic.recolour import recolour
from .synthetic.structures import make_structure
from .synthetic.transparent import make_transparent
from .trimaps import band_width, benchmark_trimap, whole_object_trimap

__all__ = ["GENERATORS", "Composite", "make_layer", "load_background", "seen_through", "synthetic_composite"]

GENERATORS = ("transparent", "hair", "structure", "recolour")


@dataclass
class Composite:
    image: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray  # (H, W) uint8
    trimap: np.ndarray  # (H, W) uint8 0 / 128 / 255
    fg: np.ndarray  # (H, W, 3) uint8, the true foreground colours
    kind: str


def make_layer(rng: np.random.Generator, generator: str, h: int, w: int, photo: np.ndarray,
               alpha_source: Callable[[], np.ndarray] | None = None) -> Layer:
    """One foreground layer from ``generator`` (see GENERATORS); ``alpha_source`` gives real shapes for ``recolour``."""
    if generator == "transparent":
        return make_transparent(rng, h, w, photo)
    if generator == "refractive":  # one kind of transparent matter; its own subset in the valset
        return make_transparent(rng, h, w, photo, "refractive")
    if generator == "hair":
        return make_hair(rng, h, w, photo)
    if generator == "structure":
        return make_structure(rng, h, w, photo)
    if generator == "recolour":
        if alpha_source is None:
            raise ValueError("the recolour generator needs real alpha shapes (alpha_source)")
        return recolour(rng, h, w, alpha_source(), photo)
    raise ValueError(f"unknown generator {generator!r}; known: {', '.join(GENERATORS)}")


def load_background(path: Path, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop (30-100% of the picture) of ``path`` resized to (h, w), uint8."""
    photo = read_background(path, draft_size=(w, h))
    ph, pw = photo.shape[:2]
    frac = rng.uniform(0.3, 1.0)
    ch = min(ph, max(8, int(min(ph, pw * h / w) * frac)))
    cw = min(pw, max(8, int(ch * w / h)))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = photo[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((w, h), A.random_filter(rng)))


def seen_through(bg: np.ndarray, refraction: np.ndarray, transmission: np.ndarray | None) -> np.ndarray:
    """The background ``bg`` (H, W, 3) float as seen through glass: displaced, then tinted and attenuated."""
    h, w = bg.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = (np.clip(yy + refraction[..., 0], 0, h - 1), np.clip(xx + refraction[..., 1], 0, w - 1))
    warped = np.stack([ndimage.map_coordinates(bg[..., c], coords, order=1, mode="nearest") for c in range(3)], axis=-1)
    return warped * transmission if transmission is not None else warped


def synthetic_composite(rng: np.random.Generator, h: int, w: int, backgrounds: Sequence[Path],
                        weights: Sequence[float], benchmark_prob: float = 0.5, band_max: float = 0.05,
                        alpha_source: Callable[[], np.ndarray] | None = None,
                        generator: str | None = None, erosion_size: int = 320,
                        erosion_range: tuple[int, int] = (1, 15)) -> Composite:
    """One composite of size (h, w); ``generator`` forces a generator, else drawn with ``weights``."""
    if len(backgrounds) < 2:
        raise ValueError("the data engine needs at least two background photos (one for colours, one behind)")
    if generator is None:
        p = np.asarray(weights, dtype=np.float64)
        generator = GENERATORS[int(rng.choice(len(GENERATORS), p=p / p.sum()))]
    i, j = rng.choice(len(backgrounds), size=2, replace=False)
    photo = read_background(backgrounds[int(j)], draft_size=(512, 512))
    layer = make_layer(rng, generator, h, w, photo, alpha_source)
    bg = load_background(backgrounds[int(i)], h, w, rng).astype(np.float32) / 255.0
    a = np.clip(layer.alpha, 0.0, 1.0)
    if layer.refraction is not None:
        bg = seen_through(bg, layer.refraction, layer.transmission)
    image = a[..., None] * layer.fg + (1.0 - a[..., None]) * bg
    alpha = to_uint8(a)
    radius = band_width(rng, h, w, band_max)
    if layer.whole_unknown:
        trimap = whole_object_trimap(alpha, layer.opaque, min(radius, 0.02 * max(h, w) + 1))
    elif rng.random() < benchmark_prob:
        trimap = benchmark_trimap(alpha, radius)
    else:
        trimap = A.generate_trimap(alpha, rng, erosion_size, erosion_range)
    return Composite(to_uint8(image), alpha, trimap, to_uint8(layer.fg), layer.kind)
