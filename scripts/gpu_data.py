"""One folder of at most 64 MiB with everything a training run of the default model reads.

    python scripts/gpu_data.py -o gpu-data        # `make gpu-data`

A GPU machine for `scripts/train_gpu.sh` has the repository and this folder only (no ../shared,
no wallpaper packages). It holds, from ../shared and the background manifest (`make data`):

* ``fg/``: the tuxpaint RGBA cutouts with their SOURCE.md (as they are);
* ``am/input``, ``am/gt``: alphamatting.com GT01-GT18 (the training half; GT19-GT27 stay out);
* ``backgrounds/``: one file per picture of the manifest's *train* split, long side at most
  1280 px, JPEG quality 90, and ``backgrounds.csv``, a manifest of them (all train);
* ``valset/``: the composited validation set (`make valset`) at a long side of 800 px, the size
  the trainer validates at, images as JPEG quality 95, alphas and trimaps as PNG.

Nothing of the validation split's backgrounds is copied but the composites already made from
them. Prints the size; exits 1 if it is over the limit.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

from PIL import Image

from diffmatte.data.backgrounds import backgrounds_for, read_manifest

LIMIT = 64 * 2**20
SHARED = Path("../shared/data")


def _shrink(src: Path, dst: Path, long_side: int, quality: int | None, mode: str,
            resample: Image.Resampling = Image.LANCZOS) -> None:
    with Image.open(src) as im:
        im = im.convert(mode)
        scale = long_side / max(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), resample)
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.save(dst, quality=quality) if quality else im.save(dst)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, default=Path("gpu-data"))
    ap.add_argument("--manifest", type=Path, default=Path("data/backgrounds.csv"))
    ap.add_argument("--valset", type=Path, default=Path("runs/valset"))
    args = ap.parse_args()
    out = args.output
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(SHARED / "fg_cutouts_tuxpaint", out / "fg")
    am = SHARED / "alphamatting_training_lowres"
    for k in range(1, 19):
        for sub, dst in (("input_training_lowres", "input"), ("gt_training_lowres", "gt")):
            (out / "am" / dst).mkdir(parents=True, exist_ok=True)
            shutil.copy(am / sub / f"GT{k:02d}.png", out / "am" / dst / f"GT{k:02d}.png")
    licences = {e.file: (e.package, e.licence) for e in read_manifest(args.manifest)}
    rows = []
    for i, src in enumerate(backgrounds_for(args.manifest, "train")):
        dst = out / "backgrounds" / f"{i:03d}_{src.stem[:40]}.jpg"
        _shrink(src, dst, 1280, 90, "RGB")
        with Image.open(dst) as im:
            w, h = im.size
        package, licence = licences.get(str(src), ("", ""))
        rows.append([str(dst.relative_to(out)), package, licence, w, h, f"g{i:03d}", "train"])  # from the manifest
    with (out / "backgrounds.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "package", "licence", "width", "height", "group", "split"])
        writer.writerows(rows)
    for image in sorted((args.valset / "image").glob("*.png")):
        name = image.stem
        _shrink(image, out / "valset" / "image" / f"{name}.jpg", 800, 95, "RGB")
        _shrink(args.valset / "alpha" / f"{name}.png", out / "valset" / "alpha" / f"{name}.png", 800, None, "L",
                Image.BILINEAR)
        # nearest: a trimap keeps its three levels
        _shrink(args.valset / "trimap" / f"{name}.png", out / "valset" / "trimap" / f"{name}.png", 800, None, "L",
                Image.NEAREST)
    if (args.valset / "manifest.json").is_file():
        shutil.copy(args.valset / "manifest.json", out / "valset" / "manifest.json")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB ({len(rows)} backgrounds, "
          f"{len(list((out / 'valset' / 'image').glob('*.jpg')))} validation images)")
    if size > LIMIT:
        print(f"{out}: over the {LIMIT // 2**20} MiB a device run can carry", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
