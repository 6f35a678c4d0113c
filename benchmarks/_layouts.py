"""The two labelled image sets the quality benchmarks read: the alphamatting.com training set
(input_training_lowres/, gt_training_lowres/, trimap_training_lowres/SET/) and the composited
validation set of `make valset` (image/, alpha/, trimap/)."""
from __future__ import annotations

from pathlib import Path


class LabelledSet:
    def __init__(self, root: Path, trimap_set: str = "Trimap2") -> None:
        self.root, self.trimap_set = root, trimap_set
        self.valset = (root / "image").is_dir()

    def names(self) -> list[str]:
        folder = self.root / ("image" if self.valset else "input_training_lowres")
        return sorted(p.stem for p in folder.glob("*.png"))

    def files(self, name: str) -> tuple[Path, Path, Path]:
        """(image, trimap, ground truth) of one image."""
        r = self.root
        if self.valset:
            return r / "image" / f"{name}.png", r / "trimap" / f"{name}.png", r / "alpha" / f"{name}.png"
        return (r / "input_training_lowres" / f"{name}.png", r / "trimap_training_lowres" / self.trimap_set / f"{name}.png",
                r / "gt_training_lowres" / f"{name}.png")
