"""Score matting methods on a dataset with ground truth: SAD, MSE, Grad and Conn.

The pieces, in the order a run uses them:

1. :func:`load_dataset` finds and checks a dataset: the Composition-1k layout (``merged/`` or
   ``image/``, ``trimaps/`` or ``trimap/``, ``alpha_copy/`` or ``alpha/``) or the alphamatting.com
   layout (``input_*/``, ``gt_*/``, ``trimap_*/<set>/``). Everything wrong with it (missing,
   orphaned or unreadable files, sizes that differ, trimap values other than 0/128/255) is
   collected and raised at once as a :class:`DatasetError`, before any method runs.
2. :func:`build_methods` turns method names into :class:`Method` objects: the DiffMatte model(s)
   (loaded once, one method per number of steps) and the classical baselines of
   :mod:`diffmatte.evaluation.baselines`. A :class:`Method` is just a spec and a predict function, so tests
   and new methods plug in without touching this module.
3. :func:`evaluate` runs every method on every (image, trimap set) pair. A prediction is
   quantised to 8 bits the way ``cv2.imwrite`` does (DEFINITIONS.md, "Common conventions"),
   stored in a cache keyed by everything that determines it, and scored with
   :func:`diffmatte.evaluation.metrics.compute_all`. Re-runs only compute what is not cached.
4. :func:`summarize` and :func:`write_reports` give the means per method and trimap set, a
   per-image CSV, a JSON summary, a Markdown table and matplotlib plots.

The modules, one per piece: :mod:`.dataset`, :mod:`.methods`, :mod:`.run` (with the cache) and
:mod:`.reports`. Arrays in, arrays out; nothing here prints (progress goes through a callback).
"""
from __future__ import annotations

from ..selection import select_names
from .dataset import Dataset, DatasetError, Sample, load_dataset
from .methods import METHOD_NAMES, Method, MethodSpec, build_methods
from .reports import SummaryRow, environment, markdown_table, summarize, write_reports
from .run import METRICS, EvaluationResult, ImageScore, PredictionError, evaluate

__all__ = [
    "METHOD_NAMES",
    "METRICS",
    "DatasetError",
    "PredictionError",
    "Sample",
    "Dataset",
    "load_dataset",
    "select_names",
    "MethodSpec",
    "Method",
    "build_methods",
    "ImageScore",
    "EvaluationResult",
    "evaluate",
    "SummaryRow",
    "summarize",
    "markdown_table",
    "write_reports",
    "environment",
]
