"""Transparent and semi-transparent matter: glass, plastic, smoke, water, veils.

What a matting network gets wrong on a glass bulb is that almost nothing of the object is
opaque: most of its area has alpha 0.05-0.4, and what makes it visible is a thin rim, a few
highlights and refraction-like bands. Shape priors then say "object, alpha 1", and only the
colours say otherwise. These generators make exactly such mattes, with the whole object
unknown in the trimap, as benchmarks mark transparent objects:

* ``glass``: a vessel or bulb outline, low smooth alpha inside, a bright rim that fades
  inwards, refraction bands parallel to the outline, specular highlights, sometimes an
  opaque cap or base (the only trimap foreground);
* ``plastic``: the same with a saturated tint and a higher, uneven body alpha;
* ``smoke``: fractal density with no hard edge at all;
* ``water``: splashes and drops, low alpha with bright streaks;
* ``veil``: a thin fabric, alpha 0.2-0.7 with folds and opaque hems;
* ``refractive``: glass as a camera sees it. The background seen through the object is the
  same background, displaced (a lens: strongest at the rim, sometimes magnified or inverted
  inside), attenuated and tinted, so busy scene shapes appear inside the outline; the true
  alpha stays near 0 there apart from the rim, highlights and an optional filament or cap.
  This is the external glass-bulb failure (scene shapes seen through glass taken as opaque).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .procedural import (
    Layer,
    blob_field,
    fractal_noise,
    inside_distance,
    palette_colours,
    photo_colours,
    render_strokes,
    smooth_noise,
    soft_threshold,
)

__all__ = ["KINDS", "make_transparent"]

KINDS = ("glass", "plastic", "smoke", "water", "veil", "refractive")
_KIND_P = (0.25, 0.15, 0.12, 0.08, 0.15, 0.25)


def make_transparent(rng: np.random.Generator, h: int, w: int, photo: np.ndarray, kind: str | None = None) -> Layer:
    """One transparent foreground on an (h, w) canvas; ``photo`` gives colours for opaque parts."""
    kind = kind or str(rng.choice(KINDS, p=_KIND_P))
    if kind in ("glass", "plastic"):
        return _vessel(rng, h, w, photo, tinted=kind == "plastic")
    if kind == "smoke":
        return _smoke(rng, h, w)
    if kind == "water":
        return _water(rng, h, w)
    if kind == "veil":
        return _veil(rng, h, w, photo)
    if kind == "refractive":
        return _refractive(rng, h, w, photo)
    raise ValueError(f"unknown transparent kind {kind!r}; known: {', '.join(KINDS)}")


def _outline(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Soft mask of a bulb, a glass or a bottle-like blob, and the mask of an opaque cap (or None)."""
    m = min(h, w)
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shape = rng.choice(["bulb", "vessel", "blob"])
    cap = None
    if shape == "bulb":
        r = m * rng.uniform(0.2, 0.33)
        body = np.hypot(yy - cy, xx - cx) / r
        neck_w, neck_h = r * rng.uniform(0.35, 0.55), r * rng.uniform(0.6, 1.1)
        neck_y = cy + r * 0.8 + neck_h / 2
        neck = np.maximum(np.abs(xx - cx) / neck_w, np.abs(yy - neck_y) / (neck_h / 2 + r * 0.3))
        field = np.minimum(body, neck)
        if rng.random() < 0.7:  # a metal base below the neck: opaque, the trimap's only foreground
            cap_h = neck_h * rng.uniform(0.4, 0.8)
            cap_y = neck_y + neck_h / 2 + cap_h / 2
            cap = soft_threshold(np.maximum(np.abs(xx - cx) / (neck_w * 1.05), np.abs(yy - cap_y) / (cap_h / 2)), 1.0)
    elif shape == "vessel":
        half_w, half_h = m * rng.uniform(0.15, 0.3), m * rng.uniform(0.25, 0.4)
        taper = rng.uniform(-0.3, 0.3)
        local_w = half_w * (1 + taper * (yy - cy) / half_h)
        p = rng.uniform(3, 8)  # superellipse: rounded-rectangle glasses and jars
        field = (np.abs(xx - cx) / np.maximum(local_w, 1)) ** p + (np.abs(yy - cy) / half_h) ** p
        field = field ** (1 / p)
    else:
        field = blob_field(rng, h, w, cy, cx, m * rng.uniform(0.18, 0.35), m * rng.uniform(0.18, 0.35),
                           roughness=0.12, angle=rng.uniform(0, np.pi))
    return soft_threshold(field, 1.0), cap


def _vessel(rng: np.random.Generator, h: int, w: int, photo: np.ndarray, tinted: bool) -> Layer:
    mask, cap = _outline(rng, h, w)
    inside = inside_distance(mask > 0.5)
    m = min(h, w)
    # body: low, smooth alpha; plastic is denser and less even
    lo, hi = (0.15, 0.55) if tinted else (0.02, 0.3)
    body = rng.uniform(lo, hi) * (1 + 0.5 * fractal_noise(rng, h, w, cell=m / 4, octaves=3))
    # rim: dense at the outline, fading inwards over a few pixels
    rim_w = rng.uniform(1.0, 0.02 * m + 1.5)
    rim = rng.uniform(0.35, 0.95) * np.exp(-inside / rim_w)
    # refraction-like bands: thin lines at a fixed distance inside the outline
    bands = np.zeros_like(inside)
    for _ in range(int(rng.integers(0, 4))):
        d = rng.uniform(0.03, 0.25) * m
        width = rng.uniform(0.5, 3.0)
        bands = np.maximum(bands, rng.uniform(0.2, 0.8) * np.clip(1 - np.abs(inside - d) / width, 0, 1))
    alpha = np.clip(np.maximum(np.maximum(body, rim), bands), 0, 1) * mask
    # colours: glass reflects the room (greys, faint tints), plastic carries its own colour
    base = rng.uniform(0.1, 1.0, 3) if tinted else np.full(3, rng.uniform(0.6, 1.0)) * (1 + rng.uniform(-0.1, 0.1, 3))
    fg = palette_colours(rng, h, w, np.clip(base, 0, 1), variation=0.2)
    dark_rim = rng.random() < 0.5  # thick glass edges often look dark, not bright
    if dark_rim:
        edge = np.exp(-inside / rim_w)[..., None]
        fg = fg * (1 - 0.7 * edge)
    fg, alpha = _highlights(rng, h, w, mask, fg, alpha, min_width=0.005)
    fg, alpha, opaque = _with_cap(rng, h, w, photo, cap, fg, alpha)
    return Layer(np.clip(fg, 0, 1).astype(np.float32), alpha.astype(np.float32), "plastic" if tinted else "glass",
                 whole_unknown=True, opaque=opaque)


def _highlights(rng: np.random.Generator, h: int, w: int, mask: np.ndarray, fg: np.ndarray, alpha: np.ndarray,
                min_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Specular highlights: 1-4 small elongated near-opaque white spots inside ``mask``."""
    m = min(h, w)
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        spot = soft_threshold(blob_field(rng, h, w, cy, cx, rng.uniform(0.01, 0.06) * m, rng.uniform(min_width, 0.02) * m,
                                         roughness=0.1, angle=rng.uniform(0, np.pi)), 1.0) * mask
        alpha = np.maximum(alpha, rng.uniform(0.6, 1.0) * spot)
        fg = fg * (1 - spot[..., None]) + spot[..., None] * rng.uniform(0.9, 1.0)
    return fg, alpha


def _with_cap(rng: np.random.Generator, h: int, w: int, photo: np.ndarray, cap: np.ndarray | None, fg: np.ndarray,
              alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """An opaque cap or base with a photo's colours over the glass; its solid part is the trimap's foreground."""
    if cap is None:
        return fg, alpha, None
    cap_fg = photo_colours(photo, h, w, rng, blur=1.0) * rng.uniform(0.4, 1.0)
    return fg * (1 - cap[..., None]) + cap_fg * cap[..., None], np.maximum(alpha, cap), cap > 0.99


def _smoke(rng: np.random.Generator, h: int, w: int) -> Layer:
    m = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # a plume rising from a point, widening upwards, with fractal density
    x0, y0 = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.75, 0.95)
    spread = rng.uniform(0.1, 0.35) * m + (y0 - yy).clip(0) * rng.uniform(0.2, 0.6)
    sway = 0.15 * m * smooth_noise(rng, h, w, m / 2)
    envelope = np.exp(-(((xx - x0 - sway) / np.maximum(spread, 1)) ** 2)) * (yy < y0) * np.exp(-(y0 - yy).clip(0) / (h * 1.2))
    density = np.clip(0.5 + 0.9 * fractal_noise(rng, h, w, cell=m / 5, octaves=5, gain=0.55), 0, 1) ** rng.uniform(1, 2.5)
    alpha = np.clip(rng.uniform(0.3, 0.9) * envelope * density, 0, 1)
    shade = rng.uniform(0.55, 1.0)
    fg = palette_colours(rng, h, w, np.full(3, shade), variation=0.1)
    return Layer(fg, alpha.astype(np.float32), "smoke", whole_unknown=True)


def _water(rng: np.random.Generator, h: int, w: int) -> Layer:
    m = min(h, w)
    # a splash: a soft low-alpha body, drops, and bright streaks
    body = soft_threshold(blob_field(rng, h, w, h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6),
                                     m * rng.uniform(0.12, 0.3), m * rng.uniform(0.2, 0.4), roughness=0.35), 1.0)
    alpha = body * rng.uniform(0.05, 0.3) * (1 + 0.6 * fractal_noise(rng, h, w, cell=m / 8))
    strokes = []
    for _ in range(int(rng.integers(10, 60))):
        x, y = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.15) * m
        bend = rng.uniform(-0.5, 0.5)
        t = np.linspace(0, 1, 12)[:, None]
        pts = np.concatenate([x + length * t * np.cos(angle + bend * t), y + length * t * np.sin(angle + bend * t)], axis=1)
        strokes.append((pts, rng.uniform(0.3, 3.0), rng.uniform(0.3, 0.9)))
    streaks = render_strokes(h, w, strokes)
    drops = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(5, 40))):
        r = rng.uniform(0.003, 0.02) * m
        drop = soft_threshold(blob_field(rng, h, w, rng.uniform(0, h), rng.uniform(0, w), r, r, roughness=0.0), 1.0)
        drops = np.maximum(drops, drop * rng.uniform(0.2, 0.7))
    alpha = np.clip(np.maximum(np.maximum(alpha, streaks), drops), 0, 1)
    fg = palette_colours(rng, h, w, np.array([0.8, 0.9, 1.0]) * rng.uniform(0.7, 1.0), variation=0.15)
    fg = np.clip(fg + 0.3 * streaks[..., None], 0, 1)
    return Layer(fg, alpha.astype(np.float32), "water", whole_unknown=True)


def _veil(rng: np.random.Generator, h: int, w: int, photo: np.ndarray) -> Layer:
    m = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # a hanging sheet: a band whose edges wave, folds as brightness and density stripes
    angle = rng.uniform(-0.4, 0.4)
    u = np.cos(angle) * (xx - w / 2) + np.sin(angle) * (yy - h / 2)
    half = rng.uniform(0.2, 0.4) * w
    wave = 0.08 * m * smooth_noise(rng, h, w, m / 3)
    sheet = soft_threshold(np.abs(u + wave) - half, 0.0)
    top = yy - h * rng.uniform(0.0, 0.25) - 0.05 * m * smooth_noise(rng, h, w, m / 4)
    bottom = h * rng.uniform(0.75, 1.0) - yy + 0.05 * m * smooth_noise(rng, h, w, m / 4)
    sheet = sheet * np.clip(top + 0.5, 0, 1) * np.clip(bottom + 0.5, 0, 1)
    freq = rng.uniform(4, 14) / w
    folds = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (u + 0.3 * wave) + rng.uniform(0, 2 * np.pi))
    density = rng.uniform(0.15, 0.6) * (0.7 + 0.6 * folds)
    alpha = np.clip(density, 0, 1) * sheet
    colour = photo_colours(photo, h, w, rng, blur=4.0) if rng.random() < 0.5 else palette_colours(rng, h, w, rng.uniform(0.2, 1.0, 3))
    fg = np.clip(colour * (0.75 + 0.35 * folds[..., None]), 0, 1)
    opaque = None
    if rng.random() < 0.5:  # an opaque hem along the sheet's edges
        inside = inside_distance(sheet > 0.5)
        hem = np.clip(rng.uniform(2, 0.02 * m + 3) - inside + 0.5, 0, 1) * sheet
        alpha = np.maximum(alpha, hem)
        fg = fg * (1 - 0.3 * hem[..., None])
        opaque = hem > 0.99
    return Layer(fg.astype(np.float32), alpha.astype(np.float32), "veil", whole_unknown=True, opaque=opaque)


def _refractive(rng: np.random.Generator, h: int, w: int, photo: np.ndarray) -> Layer:
    mask, cap = _outline(rng, h, w)
    solid = mask > 0.5
    inside = inside_distance(solid)
    m = min(h, w)
    depth = max(float(inside.max()), 1.0)
    # a lens: thickness rises steeply from the outline, so refraction is strongest at the rim
    thickness = np.sqrt(np.clip(1 - (1 - np.clip(inside / depth, 0, 1)) ** 2, 0, 1))
    gy, gx = np.gradient(ndimage.gaussian_filter(thickness, 1.5))
    power = rng.uniform(0.05, 0.3) * m
    dy, dx = -power * gy * depth / 4, -power * gx * depth / 4
    if rng.random() < 0.6:  # magnified (scale < 1) or inverted (scale < 0) scene inside the body
        ys, xs = np.nonzero(solid)
        cy, cx = (ys.mean(), xs.mean()) if len(ys) else (h / 2, w / 2)
        scale = rng.choice([rng.uniform(0.4, 0.85), rng.uniform(-0.8, -0.3)])
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        weight = thickness * mask
        dy = dy + weight * (scale - 1) * (yy - cy)
        dx = dx + weight * (scale - 1) * (xx - cx)
    refraction = np.stack([dy, dx], axis=-1).astype(np.float32) * mask[..., None]
    # what comes through: a faint tint, darker where the glass is thick at a grazing angle
    tint = np.clip(1 - rng.uniform(0.0, 0.2, 3) * (rng.random() < 0.5), 0, 1)
    rim_w = rng.uniform(1.0, 0.02 * m + 1.5)
    edge = np.exp(-inside / rim_w) * mask
    through = tint[None, None, :] * (1 - rng.uniform(0.0, 0.5) * edge[..., None]) * rng.uniform(0.8, 1.0)
    transmission = (1 - mask[..., None]) + mask[..., None] * through
    # alpha: near 0 in the body, a rim, specular highlights; colours from reflections of the room
    # (at least 4/255, so the benchmark trimap marks the whole object unknown, as it would a real bulb)
    alpha = rng.uniform(0.016, 0.08) * mask + rng.uniform(0.3, 0.9) * edge
    fg = palette_colours(rng, h, w, np.full(3, rng.uniform(0.05, 0.3) if rng.random() < 0.5 else rng.uniform(0.7, 1.0)),
                         variation=0.15)
    fg, alpha = _highlights(rng, h, w, mask, fg, alpha, min_width=0.004)
    if rng.random() < 0.5:  # a filament: thin near-opaque wires inside a bulb
        ys, xs = np.nonzero(inside > 0.3 * depth)
        if len(ys):
            strokes = []
            for _ in range(int(rng.integers(1, 4))):
                k = int(rng.integers(len(ys)))
                t = np.linspace(0, 1, 16)[:, None]
                length, angle = rng.uniform(0.05, 0.2) * m, rng.uniform(0, 2 * np.pi)
                wob = 0.02 * m * np.sin(t * rng.uniform(6, 30))
                pts = np.concatenate([xs[k] + length * t * np.cos(angle) - wob * np.sin(angle),
                                      ys[k] + length * t * np.sin(angle) + wob * np.cos(angle)], axis=1)
                strokes.append((pts, rng.uniform(0.5, 2.0), rng.uniform(0.7, 1.0)))
            wire = render_strokes(h, w, strokes) * mask
            alpha = np.maximum(alpha, wire)
            fg = fg * (1 - wire[..., None]) + wire[..., None] * rng.uniform(0.1, 0.9)
    fg, alpha, opaque = _with_cap(rng, h, w, photo, cap, fg, alpha)
    if cap is not None:
        refraction = refraction * (1 - cap[..., None])
    return Layer(np.clip(fg, 0, 1).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32), "refractive",
                 whole_unknown=True, opaque=opaque, refraction=refraction, transmission=transmission.astype(np.float32))
