"""Small inputs the tests share: random images, band trimaps, soft discs, dataset layouts.

Plain functions (fixtures that build models live in conftest.py), imported as
``from .helpers import ...``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["band_trimap", "disc_alpha", "make_dim_layout", "random_image"]


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def band_trimap(h: int, w: int) -> np.ndarray:
    """(h, w) uint8 trimap: background on the left third, foreground on the right third."""
    t = np.full((h, w), 128, np.uint8)
    t[:, : w // 3] = 0
    t[:, -w // 3 :] = 255
    return t


def disc_alpha(h: int, w: int, soft: float = 4) -> np.ndarray:
    """(h, w) uint8 matte of a centred disc whose edge ramps over about ``soft`` px."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    return np.clip((min(h, w) * 0.35 - r) / soft * 255 + 128, 0, 255).astype(np.uint8)


def make_dim_layout(root: Path, n_fg: int = 3, n_bg: int = 2) -> Path:
    """fg/ (RGB), alpha/ (grey) and bg/ folders with small images of different sizes."""
    for sub in ("fg", "alpha", "bg"):
        (root / sub).mkdir(parents=True)
    for i in range(n_fg):
        h, w = 60 + 10 * i, 80 - 5 * i
        Image.fromarray(random_image(h, w, i)).save(root / "fg" / f"obj{i}.png")
        Image.fromarray(disc_alpha(h, w)).save(root / "alpha" / f"obj{i}.png")
    for i in range(n_bg):
        Image.fromarray(random_image(50 + 30 * i, 120, 100 + i)).save(root / "bg" / f"bg{i}.jpg")
    (root / "bg" / "MANIFEST.csv").write_text("file,licence\n")
    return root
