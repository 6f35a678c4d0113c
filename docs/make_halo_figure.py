"""docs/halo.png: the lemur's cutout over a checkerboard, a crop of its fur, with the hand-drawn
trimap and automatic trimaps of 1% and 2% bands (the default since 2026-12-05); packaged default
model, 10 steps, seed 0. The numbers: benchmarks/auto_trimap_band.py.

    python docs/make_halo_figure.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from diffmatte import cutout
from diffmatte.io import load_image, read_trimap
from diffmatte.loading import load_model
from diffmatte.trimap import SalientObjectModel, trimap_from_mask
from diffmatte.writers import to_uint8

REPO = Path(__file__).resolve().parents[1]
CROP = (370, 20, 530, 220)  # left, top, right, bottom: the fur of the right shoulder and ear
ZOOM = 2


def checker(h: int, w: int, size: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    light = ((yy // size + xx // size) % 2 == 0)
    return np.where(light[..., None], 0.85, 0.65).astype(np.float32) * np.ones(3, np.float32)


def main(out: Path = REPO / "docs" / "halo.png") -> None:
    model = load_model("default", precision="fp32")
    image = load_image(REPO / "examples" / "lemur.jpg")
    prob = SalientObjectModel().probability(image)
    longer = max(image.shape[:2])
    panels = []
    for title, trimap in (("hand-drawn trimap", read_trimap(REPO / "examples" / "lemur_trimap.png")),
                          ("automatic, band 1%", trimap_from_mask(prob, max(5, round(longer / 100)))),
                          ("automatic, band 2% (default)", trimap_from_mask(prob, max(5, round(longer / 50))))):
        rgba = cutout(image, model.predict(image, trimap, 10, 0))
        bg = checker(*rgba.shape[:2])
        over = rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:])
        l, t, r, b = CROP
        panel = Image.fromarray(to_uint8(over[t:b, l:r])).resize(((r - l) * ZOOM, (b - t) * ZOOM), Image.NEAREST)
        canvas = Image.new("RGB", (panel.width, panel.height + 22), "white")
        canvas.paste(panel, (0, 22))
        ImageDraw.Draw(canvas).text((6, 5), title, fill="black")
        panels.append(canvas)
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), panels[0].height), "white")
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + 8
    sheet.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
