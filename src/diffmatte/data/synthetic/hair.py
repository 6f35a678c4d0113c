"""Hair and fur: many anti-aliased strands of sub-pixel to few-pixel width, in clumps, with flyaways.

A body (an opaque blob: a head, an animal, a fur ball) grows strands from its outline.
Strands of one clump share a direction and a curl and fan out slightly; a few long thin
flyaways wander off on their own. Strands are drawn at 4x and box-filtered down, so a
0.3 px strand leaves alpha ~0.3 along its path, as a real camera would record it.

Colours come either from a hair palette with smooth variation or from an unrelated photo,
so the network cannot read alpha off a colour.
"""
from __future__ import annotations

import numpy as np

from .procedural import Layer, blob_field, palette_colours, photo_colours, render_strokes, soft_threshold

__all__ = ["HAIR_COLOURS", "make_hair"]

# black, dark brown, brown, auburn, blond, grey, white (linear-ish sRGB in [0, 1])
HAIR_COLOURS = np.array(
    [[0.06, 0.05, 0.05], [0.2, 0.12, 0.08], [0.4, 0.26, 0.15], [0.55, 0.25, 0.12],
     [0.85, 0.7, 0.45], [0.6, 0.6, 0.6], [0.95, 0.93, 0.9]],
    dtype=np.float32,
)


def make_hair(rng: np.random.Generator, h: int, w: int, photo: np.ndarray) -> Layer:
    """One hairy or furry foreground on an (h, w) canvas."""
    m = min(h, w)
    cy, cx = h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65)
    ry, rx = m * rng.uniform(0.12, 0.3), m * rng.uniform(0.12, 0.3)
    body = soft_threshold(blob_field(rng, h, w, cy, cx, ry, rx, roughness=0.15, angle=rng.uniform(0, np.pi)), 1.0)

    style = rng.choice(["fur", "long", "curly"])
    length = {"fur": (0.03, 0.12), "long": (0.15, 0.5), "curly": (0.05, 0.2)}[style]
    curl = {"fur": 0.03, "long": 0.02, "curly": 0.25}[style]
    gravity = rng.uniform(0.0, 0.06) if style == "long" else rng.uniform(-0.01, 0.02)
    width_range = (0.2, 1.2) if style != "fur" else (0.3, 2.0)

    strokes: list[tuple[np.ndarray, float, float]] = []
    for _ in range(int(rng.integers(15, 60))):  # clumps
        theta0 = rng.uniform(0, 2 * np.pi)
        # the root on the body's outline, the clump leaving along the outward direction
        root = np.array([cx + rx * 0.95 * np.cos(theta0), cy + ry * 0.95 * np.sin(theta0)])
        direction = theta0 + rng.normal(0, 0.3)
        clump_len = rng.uniform(*length) * m
        clump_curl = rng.normal(0, curl)
        for _ in range(int(rng.integers(5, 30))):
            start = root + rng.normal(0, 0.02 * m, 2)
            strokes.append(_strand(rng, start, direction + rng.normal(0, 0.12), clump_len * rng.uniform(0.6, 1.2),
                                   clump_curl + rng.normal(0, curl / 3 + 0.005), gravity, width_range))
    for _ in range(int(rng.integers(3, 25))):  # flyaways: long, thin, on their own
        theta0 = rng.uniform(0, 2 * np.pi)
        start = np.array([cx + rx * np.cos(theta0), cy + ry * np.sin(theta0)])
        strokes.append(_strand(rng, start, theta0 + rng.normal(0, 0.6), rng.uniform(0.1, 0.5) * m,
                               rng.normal(0, 0.08), gravity, (0.15, 0.6)))
    strands = render_strokes(h, w, strokes)
    alpha = np.maximum(body, strands)

    if rng.random() < 0.6:
        base = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))] * rng.uniform(0.8, 1.2)
        fg = palette_colours(rng, h, w, np.clip(base, 0, 1), variation=0.2)
    else:
        fg = photo_colours(photo, h, w, rng, blur=1.5)
    return Layer(fg, alpha.astype(np.float32), f"hair_{style}", opaque=body > 0.99)


def _strand(rng: np.random.Generator, start: np.ndarray, direction: float, length: float, curl: float,
            gravity: float, width_range: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """A strand as a polyline: it turns by ``curl`` a segment, bends down by ``gravity``, and jitters."""
    n = max(3, int(length / 3))
    step = length / n
    angles = direction + np.cumsum(curl + rng.normal(0, 0.04, n))
    dx, dy = np.cos(angles) * step, np.sin(angles) * step
    dy = dy + gravity * step * np.arange(n)  # long hair falls
    points = start + np.cumsum(np.stack([dx, dy], axis=1), axis=0)
    points = np.vstack([start[None], points])
    width = float(np.exp(rng.uniform(np.log(width_range[0]), np.log(width_range[1]))))
    return points, width, float(rng.uniform(0.7, 1.0))
