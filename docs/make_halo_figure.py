"""docs/halo.png and docs/halo_despill.png: the lemur's cutout over a checkerboard (packaged
default model, 10 steps, seed 0, fp32), crops of its fur.

* halo.png: the right shoulder and ear with the hand-drawn trimap and automatic trimaps of 1% and
  2% bands (the default since 2026-12-05).
* halo_despill.png: the lower left, where the grass lights the fur green, with the hand-drawn
  trimap, the automatic trimap, and the automatic trimap with ``--despill``
  (``cutout(..., despill=True)``).

The numbers: benchmarks/auto_trimap_band.py and benchmarks/despill.py.

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
SHOULDER = (370, 20, 530, 220)  # left, top, right, bottom: the fur of the right shoulder and ear
LOWER_LEFT = (130, 170, 290, 430)  # the fur lit through by the grass
ZOOM = 2


def checker(h: int, w: int, size: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    light = ((yy // size + xx // size) % 2 == 0)
    return np.where(light[..., None], 0.85, 0.65).astype(np.float32) * np.ones(3, np.float32)


def sheet(panels: list[tuple[str, np.ndarray]], crop: tuple[int, int, int, int], out: Path) -> None:
    """The RGBA cutouts over a checkerboard, cropped and zoomed side by side with their titles."""
    tiles = []
    for title, rgba in panels:
        over = rgba[..., :3] * rgba[..., 3:] + checker(*rgba.shape[:2]) * (1 - rgba[..., 3:])
        l, t, r, b = crop
        tile = Image.fromarray(to_uint8(over[t:b, l:r])).resize(((r - l) * ZOOM, (b - t) * ZOOM), Image.NEAREST)
        canvas = Image.new("RGB", (tile.width, tile.height + 22), "white")
        canvas.paste(tile, (0, 22))
        ImageDraw.Draw(canvas).text((6, 5), title, fill="black")
        tiles.append(canvas)
    page = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for t in tiles:
        page.paste(t, (x, 0))
        x += t.width + 8
    page.save(out)
    print(f"wrote {out}")


def main(docs: Path = REPO / "docs") -> None:
    model = load_model("default", precision="fp32")
    image = load_image(REPO / "examples" / "lemur.jpg")
    prob = SalientObjectModel().probability(image)
    longer = max(image.shape[:2])
    hand = model.predict(image, read_trimap(REPO / "examples" / "lemur_trimap.png"), 10, 0)
    auto = model.predict(image, trimap_from_mask(prob, max(5, round(longer / 50))), 10, 0)
    narrow = model.predict(image, trimap_from_mask(prob, max(5, round(longer / 100))), 10, 0)
    sheet([("hand-drawn trimap", cutout(image, hand)), ("automatic, band 1%", cutout(image, narrow)),
           ("automatic, band 2% (default)", cutout(image, auto))], SHOULDER, docs / "halo.png")
    sheet([("hand-drawn trimap", cutout(image, hand)), ("automatic trimap", cutout(image, auto)),
           ("automatic, --despill", cutout(image, auto, despill=True))], LOWER_LEFT, docs / "halo_despill.png")


if __name__ == "__main__":
    main()
