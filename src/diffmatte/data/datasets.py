"""Training and validation datasets, and the sampler that makes data order resumable.

A training item is asked for by a *key*, not an index: ``key = epoch * len(dataset) + index``.
The item is ``index = key % len`` and every random choice of its augmentation comes from a
generator seeded with ``(seed, key)``. So a sample depends on nothing but the seed, the
epoch and its index: not on the worker that builds it, the number of workers or ranks, or
what ran before, which is what makes a resumed run repeat the uninterrupted one exactly.
"""
from __future__ import annotations

import bisect
import functools
import itertools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from ..errors import InputError
from . import augment as A
from .backgrounds import backgrounds_for
from .engine import synthetic_composite
from .files import (
    FgAlphaPair,
    ScanReport,
    Triplet,
    load_alpha,
    load_foreground,
    load_pair_alpha,
    load_rgb,
    load_trimap,
    read_background,
    scan_backgrounds,
    scan_foregrounds,
    scan_triplets,
)
from .trimaps import band_width, benchmark_trimap

__all__ = [
    "DataConfig",
    "CompositeDataset",
    "TripletDataset",
    "SyntheticDataset",
    "KeyedConcat",
    "ValidationSet",
    "EpochSampler",
    "build_train_dataset",
    "seed_worker",
]

log = logging.getLogger(__name__)
Sample = dict[str, Tensor]


@dataclass(frozen=True)
class DataConfig:
    """Where the training data is and how it is augmented (defaults: the official pipeline)."""

    # Composited data: foregrounds + alphas laid over backgrounds.
    root: str = ""  # a DIM-layout folder; fills fg_dir / alpha_dir / bg_dir with root/fg, root/alpha, root/bg
    fg_dir: str = ""  # foregrounds; RGBA images carry their own alpha
    alpha_dir: str = ""  # alphas of fg_dir, matched by name; "" = the foregrounds' alpha channel
    bg_dir: str = ""
    # Ready triplets: images with their alpha (and optionally a trimap).
    image_dir: str = ""
    image_alpha_dir: str = ""
    image_trimap_dir: str = ""  # "" = trimaps generated from the alpha, like for composites
    image_names: str = ""  # only these stems: comma-separated names, globs or ranges, e.g. "GT01-GT18" ("" = all)
    # Each triplet counts this many times per epoch: a few real mattes would otherwise be
    # drowned out by the many composites they are mixed with.
    image_repeat: int = 1
    # Augmentation.
    crop_size: int = 512
    max_side: int = 0  # shrink sources so the longer side is at most this first (0 = off); for small crops
    merge_prob: float = 0.5  # chance to lay a second random foreground under the first
    resize_prob: float = 0.25  # chance to resize the foreground to resize_size x resize_size
    resize_size: int = 640
    scale_range: tuple[float, float] = (0.8, 1.25)
    shear_degrees: float = 10.0
    rotation_degrees: float = 30.0
    rotation_min_side: int = 1024  # the official pipeline rotates only images this large
    flip_prob: float = 0.5  # per axis: horizontal and vertical flips, as in the official pipeline
    trimap_size: int = 640  # trimaps are eroded at this resolution
    erosion_range: tuple[int, int] = (1, 30)  # erosion disc diameters, [low, high)
    jitter: bool = True
    num_workers: int = 2
    # The data engine (diffmatte.data.engine). Backgrounds from a manifest's "train" split
    # replace bg_dir for composites too, so validation backgrounds never reach training.
    bg_manifest: str = ""
    synth_count: int = 0  # synthetic composites per epoch (0 = none)
    synth_weights: tuple[float, float, float, float] = (0.35, 0.25, 0.2, 0.2)  # transparent, hair, structure, recolour
    synth_long_side: tuple[int, int] = (384, 896)  # canvas long side, drawn uniformly
    # Chance that a trimap is a benchmark band (up to trimap_band_max of the long side)
    # instead of the official random erosion; transparent objects are always whole-object unknown.
    benchmark_trimap_prob: float = 0.0
    trimap_band_max: float = 0.05

    def __post_init__(self) -> None:
        if self.crop_size < 16:
            raise ValueError(f"data.crop_size must be at least 16, got {self.crop_size}")
        if self.image_repeat < 1:
            raise ValueError(f"data.image_repeat must be at least 1, got {self.image_repeat}")
        for name in ("merge_prob", "resize_prob", "flip_prob", "benchmark_trimap_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"data.scale_range must be (low, high) with 0 < low <= high, got {self.scale_range}")
        lo, hi = self.erosion_range
        if not 1 <= lo < hi:
            raise ValueError(f"data.erosion_range must be (low, high) with 1 <= low < high, got {self.erosion_range}")
        if self.num_workers < 0 or self.max_side < 0 or self.synth_count < 0:
            raise ValueError("data.num_workers, data.max_side and data.synth_count must be >= 0")
        if min(self.synth_weights) < 0 or sum(self.synth_weights) <= 0:
            raise ValueError(f"data.synth_weights must be >= 0 with a positive sum, got {self.synth_weights}")
        if not 16 <= self.synth_long_side[0] <= self.synth_long_side[1]:
            raise ValueError(f"data.synth_long_side must be (low, high) with 16 <= low <= high, got {self.synth_long_side}")
        if not 0 < self.trimap_band_max <= 0.5:
            raise ValueError(f"data.trimap_band_max must be in (0, 0.5], got {self.trimap_band_max}")

    def composite_dirs(self) -> tuple[str, str, str]:
        """(fg_dir, alpha_dir, bg_dir) with ``root`` filled in."""
        if not self.root:
            return self.fg_dir, self.alpha_dir, self.bg_dir
        root = Path(self.root)
        return (
            self.fg_dir or str(root / "fg"),
            self.alpha_dir or str(root / "alpha"),
            self.bg_dir or str(root / "bg"),
        )


# -- shared augmentation steps -----------------------------------------------------------


def _sample_rng(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng([seed, key])


def _affine(cfg: DataConfig, rng: np.random.Generator, *arrays: np.ndarray, nearest_last: bool = False) -> list[np.ndarray]:
    """The same random affine on every array; a trailing trimap is warped with nearest."""
    h, w = arrays[0].shape[:2]
    m = A.random_affine_matrix(
        w, h, rng, cfg.scale_range, cfg.shear_degrees, cfg.rotation_degrees, cfg.rotation_min_side, cfg.flip_prob
    )
    out = [A.warp_affine(a, m, A.random_filter(rng, A.WARP_FILTERS)) for a in arrays[: len(arrays) - nearest_last]]
    if nearest_last:
        out.append(A.warp_affine(arrays[-1], m, Image.NEAREST))
    return out


def _trimap(cfg: DataConfig, rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """The official random erosion, or with ``benchmark_trimap_prob`` a benchmark-style band."""
    if cfg.benchmark_trimap_prob and rng.random() < cfg.benchmark_trimap_prob:
        h, w = alpha.shape
        return benchmark_trimap(alpha, band_width(rng, h, w, cfg.trimap_band_max))
    return A.generate_trimap(alpha, rng, cfg.trimap_size, cfg.erosion_range)


def _crop(
    crop: int, rng: np.random.Generator, trimap: np.ndarray, *arrays: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Crop trimap and arrays around an unknown pixel, enlarging small images first."""
    h, w = trimap.shape
    size = A.upscale_for_crop(h, w, crop)
    if size is not None:
        arrays = tuple(A.resize(a, size, A.random_filter(rng)) for a in arrays)
        trimap = A.resize(trimap, size, Image.NEAREST)
    origin = A.crop_origin(trimap, crop, rng)
    if origin is None:  # nothing to matte in this image: use all of it
        square = (crop, crop)
        return A.resize(trimap, square, Image.NEAREST), [A.resize(a, square, A.random_filter(rng)) for a in arrays]
    y, x = origin
    return trimap[y : y + crop, x : x + crop], [a[y : y + crop, x : x + crop] for a in arrays]


def _to_sample(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray) -> Sample:
    """image (H, W, 3) float in [0, 1], alpha and trimap (H, W) uint8 -> tensors of the model's layout."""
    tri = np.full(trimap.shape, 0.5, dtype=np.float32)
    tri[trimap == A.TRIMAP_BG] = 0.0
    tri[trimap == A.TRIMAP_FG] = 1.0
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)),
        "alpha": torch.from_numpy(alpha.astype(np.float32)[None] / 255.0),
        "trimap": torch.from_numpy(tri[None]),
    }


class _KeyedDataset(Dataset):
    """Items by key (see the module docstring); bad files are skipped or raise, as configured."""

    skip_bad: bool = False

    def __getitem__(self, key: int) -> Sample:
        for attempt in range(10):
            try:
                return self.make(key + attempt)
            except InputError as e:
                if not self.skip_bad:
                    raise
                log.warning("skipping a sample: %s", e)
        raise InputError(f"10 samples in a row from key {key} failed to load; see the warnings above")

    def make(self, key: int) -> Sample:
        raise NotImplementedError


class CompositeDataset(_KeyedDataset):
    """Foregrounds composited over backgrounds with the official augmentations (SPEC §7).

    Item ``i`` uses foreground ``i mod F`` and a background drawn at random, so every
    foreground meets many backgrounds over the epochs. Length: max(F, number of backgrounds).
    """

    def __init__(self, pairs: list[FgAlphaPair], backgrounds: list[Path], cfg: DataConfig, seed: int, skip_bad: bool = False) -> None:
        self.pairs, self.backgrounds, self.cfg, self.seed, self.skip_bad = pairs, backgrounds, cfg, seed, skip_bad

    def __len__(self) -> int:
        return max(len(self.pairs), len(self.backgrounds))

    def _foreground(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        fg, alpha = load_foreground(self.pairs[index])
        fg, alpha = A.downscale_to(self.cfg.max_side, fg, alpha, rng=rng)
        return fg, alpha

    def make(self, key: int) -> Sample:
        cfg, rng = self.cfg, _sample_rng(self.seed, key)
        # 1. foreground: maybe merged with a second one, maybe resized to a fixed square
        fg, alpha = self._foreground(key % len(self) % len(self.pairs), rng)
        if rng.random() < cfg.merge_prob:
            fg2, alpha2 = self._foreground(int(rng.integers(len(self.pairs))), rng)
            size = (fg.shape[1], fg.shape[0])
            fg2, alpha2 = A.resize(fg2, size, A.random_filter(rng)), A.resize(alpha2, size, A.random_filter(rng))
            fg, alpha = A.merge_foregrounds(fg, alpha, fg2, alpha2)
        if rng.random() < cfg.resize_prob:
            square = (cfg.resize_size, cfg.resize_size)
            fg, alpha = A.resize(fg, square, A.random_filter(rng)), A.resize(alpha, square, A.random_filter(rng))
        # 2. random affine, 3. trimap by random erosion
        fg, alpha = _affine(cfg, rng, fg, alpha)
        trimap = _trimap(cfg, rng, alpha)
        # 4. background at the foreground's size, 5. crop around the unknown region
        h, w = alpha.shape
        bg = read_background(self.backgrounds[int(rng.integers(len(self.backgrounds)))], draft_size=(w, h))
        bg = A.resize(bg, (w, h), A.random_filter(rng))
        trimap, (fg, alpha, bg) = _crop(cfg.crop_size, rng, trimap, fg, alpha, bg)
        # 6. colour jitter on the foreground, 7. composite
        fg_f = fg.astype(np.float32) / 255.0
        if cfg.jitter:
            fg_f = A.color_jitter(fg_f, alpha, rng)
        image = A.composite(fg_f, bg.astype(np.float32) / 255.0, alpha.astype(np.float32) / 255.0)
        return _to_sample(image, alpha, trimap)


class TripletDataset(_KeyedDataset):
    """Ready (image, alpha[, trimap]) triplets, e.g. alphamatting.com's training set.

    Same geometry as the composites (affine, crop around the unknown region) and colour
    jitter on the whole image; a missing trimap is generated from the alpha.
    """

    def __init__(self, triplets: list[Triplet], cfg: DataConfig, seed: int, skip_bad: bool = False) -> None:
        self.triplets, self.cfg, self.seed, self.skip_bad = triplets, cfg, seed, skip_bad

    def __len__(self) -> int:
        return len(self.triplets) * self.cfg.image_repeat

    def make(self, key: int) -> Sample:
        cfg, rng = self.cfg, _sample_rng(self.seed, key)
        item = self.triplets[key % len(self.triplets)]
        image, alpha = load_rgb(item.image), load_alpha(item.alpha)
        if item.trimap is not None:
            trimap = load_trimap(item.trimap)
            image, alpha = A.downscale_to(cfg.max_side, image, alpha, rng=rng)
            trimap = A.resize(trimap, (alpha.shape[1], alpha.shape[0]), Image.NEAREST)
            image, alpha, trimap = _affine(cfg, rng, image, alpha, trimap, nearest_last=True)
        else:
            image, alpha = A.downscale_to(cfg.max_side, image, alpha, rng=rng)
            image, alpha = _affine(cfg, rng, image, alpha)
            trimap = _trimap(cfg, rng, alpha)
        trimap, (image, alpha) = _crop(cfg.crop_size, rng, trimap, image, alpha)
        image_f = image.astype(np.float32) / 255.0
        if cfg.jitter:
            image_f = A.color_jitter(image_f, alpha, rng)
        return _to_sample(image_f, alpha, trimap)


class SyntheticDataset(_KeyedDataset):
    """Data-engine composites (diffmatte.data.engine) on small canvases, cropped around the unknown region.

    Canvases have a long side in ``cfg.synth_long_side`` (the scale the model works at, see
    docs/training.md), so a 256 px crop sees the band widths and strand widths of a 1-3 MP
    photo matted at that scale. ``alphas`` are the real shapes the ``recolour`` generator reuses.
    """

    def __init__(self, backgrounds: list[Path], alphas: list[Callable[[], np.ndarray]], cfg: DataConfig, seed: int,
                 skip_bad: bool = False) -> None:
        self.backgrounds, self.alphas, self.cfg, self.seed, self.skip_bad = backgrounds, alphas, cfg, seed, skip_bad

    def __len__(self) -> int:
        return self.cfg.synth_count

    def make(self, key: int) -> Sample:
        cfg, rng = self.cfg, _sample_rng(self.seed, key)
        long_side = int(rng.integers(cfg.synth_long_side[0], cfg.synth_long_side[1] + 1))
        aspect = rng.uniform(0.6, 1.0)
        h, w = (long_side, int(long_side * aspect)) if rng.random() < 0.5 else (int(long_side * aspect), long_side)
        weights = cfg.synth_weights if self.alphas else (*cfg.synth_weights[:3], 0.0)
        source = (lambda: self.alphas[int(rng.integers(len(self.alphas)))]()) if self.alphas else None
        c = synthetic_composite(
            rng, h, w, self.backgrounds, weights, benchmark_prob=max(cfg.benchmark_trimap_prob, 0.5),
            band_max=cfg.trimap_band_max, alpha_source=source,
            erosion_size=cfg.trimap_size, erosion_range=cfg.erosion_range,
        )
        trimap, (image, alpha) = _crop(cfg.crop_size, rng, c.trimap, c.image, c.alpha)
        image_f = image.astype(np.float32) / 255.0
        if cfg.jitter:
            image_f = A.color_jitter(image_f, alpha, rng)
        return _to_sample(image_f, alpha, trimap)


class KeyedConcat(Dataset):
    """Concatenation that keeps the epoch part of the key for each member dataset."""

    def __init__(self, datasets: list[Dataset]) -> None:
        self.datasets = datasets
        self.ends = list(itertools.accumulate(len(d) for d in datasets))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.ends[-1]

    def __getitem__(self, key: int) -> Sample:
        epoch, index = divmod(key, len(self))
        d = bisect.bisect_right(self.ends, index)
        local = index - (self.ends[d - 1] if d else 0)
        return self.datasets[d][epoch * len(self.datasets[d]) + local]  # type: ignore[arg-type]


def _backgrounds(cfg: DataConfig, bg_dir: str, report: ScanReport, skip_bad: bool) -> list[Path]:
    """The training backgrounds: the manifest's train split, else the files of ``bg_dir``."""
    if cfg.bg_manifest:
        return backgrounds_for(cfg.bg_manifest, "train")
    return scan_backgrounds(bg_dir, report, skip_bad)


def build_train_dataset(cfg: DataConfig, seed: int, skip_bad: bool = False) -> tuple[Dataset, ScanReport]:
    """The training set the config describes (composites, triplets or both), all files checked."""
    report = ScanReport()
    parts: list[Dataset] = []
    fg_dir, alpha_dir, bg_dir = cfg.composite_dirs()
    bg_source = cfg.bg_manifest or bg_dir  # the manifest's train split replaces a folder
    if fg_dir and not bg_source:
        raise InputError("composited training data needs both data.fg_dir and data.bg_dir (or data.root)")
    # A background folder means composites; the manifest may also serve the data engine alone.
    if (bg_dir and not fg_dir) or (cfg.bg_manifest and not (fg_dir or cfg.synth_count)):
        raise InputError("composited training data needs both data.fg_dir and data.bg_dir (or data.root)")
    alphas: list[Callable[[], np.ndarray]] = []
    backgrounds: list[Path] = []
    if fg_dir:
        pairs = scan_foregrounds(fg_dir, alpha_dir, report, skip_bad)
        backgrounds = _backgrounds(cfg, bg_dir, report, skip_bad)
        log.info("composites: %d foregrounds from %s over %d backgrounds from %s", len(pairs), fg_dir, len(backgrounds), bg_source)
        parts.append(CompositeDataset(pairs, backgrounds, cfg, seed, skip_bad))
        alphas += [functools.partial(load_pair_alpha, p) for p in pairs]
    if cfg.image_dir:
        triplets = scan_triplets(
            cfg.image_dir, cfg.image_alpha_dir, cfg.image_trimap_dir, report, skip_bad, names=cfg.image_names
        )
        log.info("triplets: %d images from %s", len(triplets), cfg.image_dir)
        parts.append(TripletDataset(triplets, cfg, seed, skip_bad))
        alphas += [functools.partial(load_alpha, t.alpha) for t in triplets]
    if cfg.synth_count:
        if not bg_source:
            raise InputError("synthetic training data (data.synth_count) needs backgrounds: data.bg_manifest or data.bg_dir")
        backgrounds = backgrounds or _backgrounds(cfg, bg_dir, report, skip_bad)
        log.info("data engine: %d synthetic composites per epoch over %d backgrounds", cfg.synth_count, len(backgrounds))
        parts.append(SyntheticDataset(backgrounds, alphas, cfg, seed, skip_bad))
    if not parts:
        raise InputError(
            "no training data: set data.root, data.fg_dir + data.bg_dir (composites) or "
            "data.image_dir + data.image_alpha_dir (triplets)"
        )
    if report.skipped:
        log.warning("%d bad files skipped while scanning the training data", len(report.skipped))
    return (parts[0] if len(parts) == 1 else KeyedConcat(parts)), report


# -- validation ------------------------------------------------------------------------------


class ValidationSet(Dataset):
    """Held-out triplets, no augmentation; items are (image tensor, alpha uint8, trimap uint8, name).

    Images are shrunk so the longer side is at most ``max_side`` (0: full size); a missing
    trimap is generated with a fixed seed, so every validation sees the same trimaps.
    """

    def __init__(self, triplets: list[Triplet], max_side: int = 0, erosion_range: tuple[int, int] = (1, 30)) -> None:
        self.triplets, self.max_side, self.erosion_range = triplets, max_side, erosion_range

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int) -> tuple[Tensor, np.ndarray, np.ndarray, str]:
        item = self.triplets[index]
        image, alpha = load_rgb(item.image), load_alpha(item.alpha)
        h, w = alpha.shape
        if self.max_side and max(h, w) > self.max_side:
            s = self.max_side / max(h, w)
            size = (max(1, round(w * s)), max(1, round(h * s)))
            image, alpha = A.resize(image, size, Image.BILINEAR), A.resize(alpha, size, Image.BILINEAR)
        if item.trimap is not None:
            trimap = A.resize(load_trimap(item.trimap), (alpha.shape[1], alpha.shape[0]), Image.NEAREST)
        else:
            trimap = A.generate_trimap(alpha, np.random.default_rng(index), kernel_range=self.erosion_range)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
        return tensor, alpha, trimap, item.image.stem


# -- order -------------------------------------------------------------------------------------


class EpochSampler(DistributedSampler):
    """DistributedSampler that yields keys (epoch * len + index) and can start mid-epoch.

    The permutation is DistributedSampler's (seeded by seed + epoch, each rank a strided
    share), so the data order of a run is fixed by the seed alone; ``set_position`` moves
    to any point of it, which is how a resumed run picks up where the checkpoint was taken.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Begin at this rank's ``start``-th sample of ``epoch``."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)  # type: ignore[arg-type]
        for index in itertools.islice(super().__iter__(), self.start, None):
            yield self.epoch * n + index

    def __len__(self) -> int:
        return self.num_samples - self.start


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: one thread per worker, and distinct global seeds per worker.

    Samples draw from their own generators (see the module docstring); the global NumPy
    and Python seeds only guard code that reaches for global state anyway.
    """
    import random

    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32  # torch already gives each worker base_seed + worker_id
    np.random.seed(seed)
    random.seed(seed)


def steps_per_epoch(sampler: EpochSampler, batch_size: int) -> int:
    return math.floor(sampler.num_samples / batch_size)
