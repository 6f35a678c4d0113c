"""Training data: composited foregrounds, ready triplets, augmentations and resumable order.

* :mod:`.files`: find, pair and check files (DIM layout, RGBA cutouts, triplets).
* :mod:`.augment`: the official augmentations as pure NumPy functions of a generator.
* :mod:`.datasets`: ``CompositeDataset``, ``TripletDataset``, ``ValidationSet``, ``EpochSampler``.
"""
from __future__ import annotations

from .datasets import (
    CompositeDataset,
    DataConfig,
    EpochSampler,
    KeyedConcat,
    TripletDataset,
    ValidationSet,
    build_train_dataset,
    seed_worker,
    steps_per_epoch,
)
from .files import ScanReport, scan_triplets

__all__ = [
    "DataConfig",
    "CompositeDataset",
    "TripletDataset",
    "KeyedConcat",
    "ValidationSet",
    "EpochSampler",
    "ScanReport",
    "build_train_dataset",
    "scan_triplets",
    "seed_worker",
    "steps_per_epoch",
]
