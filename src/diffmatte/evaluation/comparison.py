"""Per-image comparisons of methods: medians, wins per image, and means a baseline's failure cannot carry.

A mean SAD over a validation set can be decided by one or two images. Closed-form matting, for
one, answers an all-zero matte when a trimap marks no foreground (a transparent object, or a
trimap that is 99.7% unknown), so its SAD there is huge and its mean looks worse than it is on
every other image. So beside the plain mean, each row gives the median, the number of images
on which the method has the lower SAD than each other method (wins, losses, ties), and the same
over the *constrained* images: those whose trimap marks some foreground.

Rows come per trimap set and per subset: ``all`` first, then the subsets that a validation
set's manifest.json names (``diffmatte data valset``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .run import EvaluationResult

__all__ = ["Record", "ComparisonRow", "compare", "comparison_markdown"]


@dataclass(frozen=True)
class Record:
    """Wins, losses and ties of one method against another over the images both scored."""

    wins: int
    losses: int
    ties: int

    def __str__(self) -> str:
        return f"{self.wins}-{self.losses}" + (f"-{self.ties}" if self.ties else "")


@dataclass(frozen=True)
class ComparisonRow:
    trimap_set: str
    subset: str  # "all" or a subset of the dataset's manifest
    label: str  # the method's label (MethodSpec.label)
    n: int
    mean_sad: float
    median_sad: float
    n_constrained: int  # images whose trimap marks some foreground
    mean_sad_constrained: float
    median_sad_constrained: float
    against: dict[str, Record]  # other method's label -> record over all images
    against_constrained: dict[str, Record]  # ... over the constrained images


def _stats(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    return (float(np.mean(finite)), float(np.median(finite))) if finite else (math.nan, math.nan)


def _record(mine: dict[str, float], theirs: dict[str, float], images: Sequence[str]) -> Record:
    wins = losses = ties = 0
    for name in images:
        a, b = mine.get(name), theirs.get(name)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            continue
        if a < b:
            wins += 1
        elif a > b:
            losses += 1
        else:
            ties += 1
    return Record(wins, losses, ties)


def compare(result: EvaluationResult) -> list[ComparisonRow]:
    """One row per (trimap set, subset, method), in that order; SAD as in the summary tables."""
    subsets = result.dataset.subsets
    groups = ["all", *sorted(set(subsets.values()))]
    labels = list(dict.fromkeys(spec.label for spec in result.specs))
    rows: list[ComparisonRow] = []
    for tset in result.dataset.trimap_sets:
        scores = [s for s in result.scores if s.trimap_set == tset]
        sad: dict[str, dict[str, float]] = {lb: {} for lb in labels}
        constrained: set[str] = set()
        for s in scores:
            sad[s.spec.label][s.image] = s.sad
            if s.fg_constraint:
                constrained.add(s.image)
        for group in groups:
            images = sorted({s.image for s in scores if group == "all" or subsets.get(s.image) == group})
            held = [name for name in images if name in constrained]
            for label in labels:
                mine = sad[label]
                scored = [name for name in images if name in mine]
                if not scored:
                    continue
                mean, median = _stats([mine[n] for n in scored])
                mean_c, median_c = _stats([mine[n] for n in held if n in mine])
                others = [o for o in labels if o != label]
                rows.append(ComparisonRow(
                    tset, group, label, len(scored), mean, median, sum(n in mine for n in held), mean_c, median_c,
                    {o: _record(mine, sad[o], images) for o in others},
                    {o: _record(mine, sad[o], held) for o in others},
                ))
    return rows


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.2f}"


def comparison_markdown(rows: Sequence[ComparisonRow]) -> str:
    """A table per trimap set: mean, median, constrained mean, and wins-losses(-ties) against each method."""
    if not rows:
        return ""
    labels = list(dict.fromkeys(r.label for r in rows))
    parts = []
    for tset in dict.fromkeys(r.trimap_set for r in rows):
        head = ["subset", "method", "images", "mean SAD", "median SAD", "with fg: images", "mean", "median",
                *(f"vs {lb} (all / with fg)" for lb in labels)]
        lines = [f"Trimap set {tset}:", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
        for r in (r for r in rows if r.trimap_set == tset):
            versus = [("-" if lb == r.label else f"{r.against[lb]} / {r.against_constrained[lb]}") for lb in labels]
            lines.append(f"| {r.subset} | {r.label} | {r.n} | {_fmt(r.mean_sad)} | {_fmt(r.median_sad)} | "
                         f"{r.n_constrained} | {_fmt(r.mean_sad_constrained)} | {_fmt(r.median_sad_constrained)} | "
                         + " | ".join(versus) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)

