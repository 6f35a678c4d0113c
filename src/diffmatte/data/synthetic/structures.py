"""Opaque things that still have fractional alpha: motion and defocus blur, nets, lace, sieves.

* ``motion`` / ``defocus``: an opaque shape smeared along a line or a disc. Blurring the
  premultiplied foreground and the alpha with the same kernel is exactly what a moving or
  out-of-focus object in front of a sharp background records, so the foreground colour is
  the blurred premultiplied colour divided by the blurred alpha.
* ``net``: two families of warped parallel threads, 0.5-4 px wide, over part of the canvas.
* ``lace``: a quasi-periodic pattern of holes (sums of cosines, thresholded) with a border.
* ``sieve``: an opaque plate with a grid of round holes.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import signal

from .procedural import Layer, blob_field, palette_colours, photo_colours, smooth_noise, soft_blob, soft_threshold

__all__ = ["KINDS", "make_structure"]

KINDS = ("motion", "defocus", "net", "lace", "sieve")


def make_structure(rng: np.random.Generator, h: int, w: int, photo: np.ndarray, kind: str | None = None) -> Layer:
    kind = kind or str(rng.choice(KINDS, p=[0.25, 0.2, 0.25, 0.15, 0.15]))
    colours = photo_colours(photo, h, w, rng, blur=1.0) if rng.random() < 0.6 else palette_colours(rng, h, w, rng.uniform(0, 1, 3))
    if kind in ("motion", "defocus"):
        return _blurred(rng, h, w, colours, kind)
    if kind == "net":
        return _net(rng, h, w, colours)
    if kind == "lace":
        return _lace(rng, h, w, colours)
    if kind == "sieve":
        return _sieve(rng, h, w, colours)
    raise ValueError(f"unknown structure kind {kind!r}; known: {', '.join(KINDS)}")


def _blurred(rng: np.random.Generator, h: int, w: int, colours: np.ndarray, kind: str) -> Layer:
    m = min(h, w)
    shape = soft_blob(rng, h, w, scale=rng.uniform(0.15, 0.35), roughness=rng.uniform(0.1, 0.6))
    if kind == "motion":
        length = rng.uniform(0.01, 0.08) * m + 2
        size = int(np.ceil(length)) | 1
        img = Image.new("F", (size * 4, size * 4), 0.0)
        angle = rng.uniform(0, np.pi)
        c, r = size * 2, length * 2
        ImageDraw.Draw(img).line([(c - r * np.cos(angle), c - r * np.sin(angle)), (c + r * np.cos(angle), c + r * np.sin(angle))],
                                 fill=1.0, width=4)
        kernel = np.array(img.reduce(4), dtype=np.float32)
    else:
        radius = rng.uniform(0.005, 0.03) * m + 1.5
        size = int(np.ceil(radius)) * 2 + 1
        yy, xx = np.mgrid[0:size, 0:size] - size // 2
        kernel = np.clip(radius + 0.5 - np.hypot(yy, xx), 0, 1).astype(np.float32)
    kernel /= kernel.sum()
    alpha = np.clip(signal.fftconvolve(shape, kernel, mode="same"), 0, 1)
    premult = np.stack([signal.fftconvolve(shape * colours[..., i], kernel, mode="same") for i in range(3)], axis=-1)
    fg = np.where(alpha[..., None] > 1e-3, premult / np.maximum(alpha[..., None], 1e-3), colours)
    return Layer(np.clip(fg, 0, 1).astype(np.float32), alpha.astype(np.float32), kind, opaque=alpha > 0.995)


def _region(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Where a net or lace is: a big soft blob or a rectangle, so its outline is in the image too."""
    if rng.random() < 0.5:
        return soft_blob(rng, h, w, scale=rng.uniform(0.3, 0.5), roughness=0.15)
    y0, y1 = sorted(rng.uniform(0.05, 0.95, 2) * h)
    x0, x1 = sorted(rng.uniform(0.05, 0.95, 2) * w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.maximum(np.abs(yy - (y0 + y1) / 2) - (y1 - y0) / 2 - 0.15 * h, np.abs(xx - (x0 + x1) / 2) - (x1 - x0) / 2 - 0.15 * w)
    return soft_threshold(field, 0.0)


def _net(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Layer:
    m = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    spacing = rng.uniform(0.015, 0.08) * m + 4
    width = rng.uniform(0.5, 4.0)
    warp = rng.uniform(0, 0.5) * spacing
    threads = np.zeros((h, w), np.float32)
    angle0 = rng.uniform(0, np.pi)
    for angle in (angle0, angle0 + rng.uniform(np.pi / 3, 2 * np.pi / 3)):
        u = np.cos(angle) * xx + np.sin(angle) * yy + warp * smooth_noise(rng, h, w, m / 3)
        d = np.abs(((u / spacing + 0.5) % 1.0) - 0.5) * spacing  # distance to the nearest thread
        threads = np.maximum(threads, np.clip(width / 2 - d + 0.5, 0, 1))
    alpha = threads * _region(rng, h, w)
    return Layer(colours, alpha.astype(np.float32), "net")


def _lace(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Layer:
    m = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(0.03, 0.1) * m + 6
    n = int(rng.integers(3, 6))
    field = np.zeros((h, w), np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    for k in range(n):
        a = np.pi * k / n + phase
        field += np.cos(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period + rng.uniform(0, 2 * np.pi))
    field /= n
    holes = soft_threshold(-field, -rng.uniform(0.05, 0.4))  # 1 where the pattern is solid
    region = _region(rng, h, w)
    alpha = holes * region
    if rng.random() < 0.6:  # a solid border around the lace
        border = soft_threshold(np.abs(blob_field(rng, h, w, h / 2, w / 2, m * 0.4, m * 0.45, roughness=0.05) - 1.0), 0.015)
        alpha = np.maximum(alpha, border * (region > 0))
    return Layer(colours, alpha.astype(np.float32), "lace")


def _sieve(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Layer:
    m = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pitch = rng.uniform(0.02, 0.08) * m + 5
    radius = pitch * rng.uniform(0.2, 0.45)
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    du = ((u / pitch + 0.5) % 1.0 - 0.5) * pitch
    dv = ((v / pitch + 0.5) % 1.0 - 0.5) * pitch
    hole = np.clip(radius + 0.5 - np.hypot(du, dv), 0, 1)
    plate = _region(rng, h, w)
    alpha = plate * (1 - hole)
    return Layer(colours, alpha.astype(np.float32), "sieve")
