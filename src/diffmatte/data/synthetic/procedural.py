"""Primitives the synthetic-matte generators share: smooth noise, soft shapes, strokes, photo colours.

Everything is NumPy in and out, float32, and draws only from the ``numpy.random.Generator``
it is given. Alphas are (H, W) in [0, 1] and foreground colours (H, W, 3) in [0, 1].
Edges are anti-aliased analytically (:func:`soft_threshold`) or by drawing at 4x and
box-filtering down (:func:`render_strokes`), so thin structures carry the fractional
alphas a camera would record, not the staircase of a binary mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = [
    "Layer",
    "smooth_noise",
    "fractal_noise",
    "soft_threshold",
    "blob_field",
    "soft_blob",
    "render_strokes",
    "photo_colours",
    "palette_colours",
    "inside_distance",
]

SUPERSAMPLE = 4


@dataclass
class Layer:
    """A generated foreground: colours, alpha, and how a benchmark would draw its trimap.

    ``whole_unknown``: transparent matter, where a benchmark trimap marks the whole object
    unknown (only ``opaque`` parts, if any, may be foreground).
    """

    fg: np.ndarray  # (H, W, 3) float32 in [0, 1]
    alpha: np.ndarray  # (H, W) float32 in [0, 1]
    kind: str
    whole_unknown: bool = False
    opaque: np.ndarray | None = None  # (H, W) bool: parts a trimap may mark foreground
    # Glass as a camera sees it: the background behind shows through displaced by ``refraction``
    # ((H, W, 2) pixels, dy and dx) and multiplied by ``transmission`` ((H, W, 3)); None = straight through.
    refraction: np.ndarray | None = None
    transmission: np.ndarray | None = None


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Zero-mean, unit-range noise smooth at ``cell`` pixels: a random grid upsampled bicubically."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    up = Image.fromarray(grid, mode="F").resize((int(gw * cell), int(gh * cell)), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32)[:h, :w]


def fractal_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 4, gain: float = 0.5) -> np.ndarray:
    """Sum of octaves of :func:`smooth_noise`, each half the cell size and ``gain`` the amplitude."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        if cell < 1.5:
            break
        out += amp * smooth_noise(rng, h, w, cell)
        total += amp
        amp *= gain
        cell /= 2
    return out / max(total, 1e-6)


def soft_threshold(field: np.ndarray, level: float = 0.0) -> np.ndarray:
    """Alpha of the region ``field < level`` with a one-pixel anti-aliased edge.

    The field divided by its gradient's length is a signed distance in pixels near the
    level set, so the edge is one pixel wide whatever the field's scale.
    """
    gy, gx = np.gradient(field)
    dist = (level - field) / np.maximum(np.hypot(gx, gy), 1e-4)
    return np.clip(dist + 0.5, 0.0, 1.0).astype(np.float32)


def blob_field(rng: np.random.Generator, h: int, w: int, cy: float, cx: float, ry: float, rx: float,
               roughness: float = 0.3, angle: float = 0.0) -> np.ndarray:
    """A field below 1 inside a noisy, rotated ellipse centred at (cy, cx)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u, v = (c * dx + s * dy) / max(rx, 1.0), (-s * dx + c * dy) / max(ry, 1.0)
    r = np.sqrt(u * u + v * v)
    if roughness > 0:
        r = r + roughness * fractal_noise(rng, h, w, cell=max(4.0, min(rx, ry) / 1.5), octaves=3)
    return r


def soft_blob(rng: np.random.Generator, h: int, w: int, scale: float = 0.35, roughness: float = 0.3) -> np.ndarray:
    """A random anti-aliased blob of about ``scale`` of the canvas, somewhere near the middle."""
    cy = h * rng.uniform(0.35, 0.65)
    cx = w * rng.uniform(0.35, 0.65)
    ry = min(h, w) * scale * rng.uniform(0.6, 1.2)
    rx = min(h, w) * scale * rng.uniform(0.6, 1.2)
    return soft_threshold(blob_field(rng, h, w, cy, cx, ry, rx, roughness, rng.uniform(0, np.pi)), 1.0)


def render_strokes(h: int, w: int, strokes: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Alpha of polylines drawn at 4x and box-filtered down: widths below a pixel give partial alpha.

    Each stroke is (points (N, 2) as (x, y) in output pixels, width in output pixels,
    opacity in [0, 1]). Overlaps keep the larger value, like strands in front of each other.
    """
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    for points, width, opacity in strokes:
        if len(points) < 2:
            continue
        pts = [(float(x) * s, float(y) * s) for x, y in points]
        draw.line(pts, fill=int(round(255 * opacity)), width=max(1, int(round(width * s))), joint="curve")
    return np.asarray(canvas.reduce(s), dtype=np.float32) / 255.0


def photo_colours(photo: np.ndarray, h: int, w: int, rng: np.random.Generator, blur: float = 0.0) -> np.ndarray:
    """Foreground colours taken from an unrelated photo: a random crop resized to (h, w), float [0, 1].

    ``photo`` is (H, W, 3) uint8. Taking colours from photos that have nothing to do with
    the alpha's shape keeps the network from learning that a shape implies a colour.
    """
    ph, pw = photo.shape[:2]
    frac = rng.uniform(0.3, 1.0)
    ch, cw = max(8, int(ph * frac)), max(8, int(pw * frac))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = Image.fromarray(photo[y : y + ch, x : x + cw]).resize((w, h), Image.BILINEAR)
    out = np.asarray(crop, dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if blur > 0:
        out = ndimage.gaussian_filter(out, sigma=(blur, blur, 0))
    return np.ascontiguousarray(out, dtype=np.float32)


def palette_colours(rng: np.random.Generator, h: int, w: int, base: np.ndarray, variation: float = 0.15) -> np.ndarray:
    """A colour ``base`` (3,) in [0, 1] with smooth brightness and hue variation over the canvas."""
    shade = 1.0 + variation * 2.0 * fractal_noise(rng, h, w, cell=max(h, w) / 6, octaves=3)
    tint = variation * np.stack([smooth_noise(rng, h, w, max(h, w) / 4) for _ in range(3)], axis=-1)
    return np.clip(base[None, None, :] * shade[..., None] + 0.3 * tint, 0.0, 1.0).astype(np.float32)


def inside_distance(mask: np.ndarray) -> np.ndarray:
    """Distance in pixels from each pixel inside ``mask`` to the nearest pixel outside (0 outside)."""
    return ndimage.distance_transform_edt(mask).astype(np.float32)
