"""Means per method and trimap set, and the report files: CSV, JSON, Markdown and plots.

Every report file is written atomically (a temporary file in the results folder, renamed over
the target), so a failed or interrupted run leaves the previous reports whole.
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..writers import atomic_write
from .comparison import compare, comparison_markdown
from .methods import MethodSpec
from .run import METRICS, EvaluationResult, ImageScore

__all__ = ["SummaryRow", "summarize", "markdown_table", "write_reports", "environment"]

# Environment variables that set the thread counts of OpenMP, numba (pymatting) and BLAS.
_THREAD_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class SummaryRow:
    """Means over the images of one method and trimap set."""

    spec: MethodSpec
    trimap_set: str
    n: int
    sad: float
    mse: float  # images without unknown pixels (MSE NaN, as in MATLAB) are left out of its mean
    grad: float
    conn: float
    seconds: float  # mean wall-clock seconds per image
    cpu_seconds: float  # mean CPU seconds per image


def summarize(result: EvaluationResult) -> list[SummaryRow]:
    """Mean metrics and times per (method, trimap set), methods in run order."""
    rows = []
    for spec in result.specs:
        for tset in result.dataset.trimap_sets:
            group = [s for s in result.scores if s.spec == spec and s.trimap_set == tset]
            if not group:
                continue
            means = {m: _mean(getattr(s, m) for s in group) for m in (*METRICS, "seconds", "cpu_seconds")}
            rows.append(SummaryRow(spec, tset, len(group), **means))
    return rows


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


_HEADERS = {"sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn"}


def markdown_table(rows: Sequence[SummaryRow]) -> str:
    """The summary as a Markdown table (means; SAD, Grad, Conn /1000, MSE x1000)."""
    lines = [
        "| method | model | steps | trimap set | images | SAD | MSE | Grad | Conn | s / image | CPU s / image |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        metric_cells = " | ".join(_fmt(getattr(r, m)) for m in METRICS)
        lines.append(
            f"| {r.spec.method} | {r.spec.model or '-'} | {r.spec.steps if r.spec.steps is not None else '-'} "
            f"| {r.trimap_set} | {r.n} | {metric_cells} | {_fmt(r.seconds, 2)} | {_fmt(r.cpu_seconds, 2)} |"
        )
    return "\n".join(lines)


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def write_reports(
    result: EvaluationResult, out_dir: str | os.PathLike[str], *, command: str | None = None
) -> dict[str, Path]:
    """Write ``per_image.csv``, ``summary.json``, ``summary.md`` and ``plots/*.png``.

    Parameters
    ----------
    result : EvaluationResult
        From :func:`evaluate`.
    out_dir : path
        Results folder (created if needed); files of earlier runs with the same names are replaced.
    command : str, optional
        The command line that produced the result, recorded in the JSON and Markdown files.

    Returns
    -------
    dict of str to Path
        What was written, by kind: "per_image", "summary_json", "summary_md", "plot_methods"
        and, when DiffMatte ran, "plot_steps".
    """
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    rows = summarize(result)
    paths = {
        "per_image": out / "per_image.csv",
        "summary_json": out / "summary.json",
        "summary_md": out / "summary.md",
        "plot_methods": out / "plots" / "methods.png",
    }
    _write_csv(paths["per_image"], result.scores, result.dataset.subsets)
    _write_json(paths["summary_json"], result, rows, command)
    atomic_write(paths["summary_md"], lambda tmp: tmp.write_text(_markdown_report(result, rows, command)))
    _plot_methods(paths["plot_methods"], rows)
    steps_plot = out / "plots" / "steps.png"
    if _plot_steps(steps_plot, rows):
        paths["plot_steps"] = steps_plot
    elif steps_plot.exists():
        steps_plot.unlink()  # from an earlier run with DiffMatte; it would describe other results
    return paths


_CSV_COLUMNS = ("method", "model", "model_sha256", "steps", "seed", "trimap_set", "image",
                *METRICS, "seconds", "cpu_seconds", "cached", "fg_constraint", "subset")


def _write_csv(path: Path, scores: Sequence[ImageScore], subsets: Mapping[str, str]) -> None:
    atomic_write(path, lambda tmp: _csv_to(tmp, scores, subsets))


def _csv_to(path: Path, scores: Sequence[ImageScore], subsets: Mapping[str, str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_CSV_COLUMNS)
        for s in scores:
            writer.writerow([
                s.spec.method, s.spec.model or "", s.spec.model_sha256 or "",
                "" if s.spec.steps is None else s.spec.steps, "" if s.spec.seed is None else s.spec.seed,
                s.trimap_set, s.image, *(repr(getattr(s, m)) for m in METRICS), f"{s.seconds:.4f}",
                f"{s.cpu_seconds:.4f}", int(s.cached), int(s.fg_constraint), subsets.get(s.image, ""),
            ])


def _write_json(path: Path, result: EvaluationResult, rows: Sequence[SummaryRow], command: str | None) -> None:
    ds = result.dataset
    doc = {
        "command": command,
        "dataset": {"root": str(ds.root), "layout": ds.layout, "trimap_sets": list(ds.trimap_sets),
                    "images": ds.images},
        "predictions": {"computed": result.computed, "cached": result.cached},
        "environment": environment(),
        "results": [
            {**asdict(r.spec), "label": r.spec.label, "trimap_set": r.trimap_set, "n": r.n,
             **{m: _json_number(getattr(r, m)) for m in METRICS}, "seconds_per_image": r.seconds,
             "cpu_seconds_per_image": _json_number(r.cpu_seconds)}
            for r in rows
        ],
        # medians, wins per image and means over the trimaps with foreground (evaluation.comparison)
        "comparisons": [
            {**{k: _json_number(v) if isinstance(v, float) else v for k, v in asdict(c).items()
                if k not in ("against", "against_constrained")},
             "against": {o: asdict(rec) for o, rec in c.against.items()},
             "against_constrained": {o: asdict(rec) for o, rec in c.against_constrained.items()}}
            for c in compare(result)
        ],
    }
    text = json.dumps(doc, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _json_number(v: float) -> float | None:
    return v if math.isfinite(v) else None  # JSON has no NaN


def _markdown_report(result: EvaluationResult, rows: Sequence[SummaryRow], command: str | None) -> str:
    ds = result.dataset
    env = environment()
    parts = [
        "# Evaluation results",
        "",
        f"Dataset: `{ds.root}` ({ds.layout}), {len(ds.images)} images, trimap sets {', '.join(ds.trimap_sets)}.",
    ]
    if command:
        parts += ["", "Command:", "", "```bash", command, "```"]
    parts += [
        "",
        markdown_table(rows),
        "",
        "Means over the images. SAD, Grad and Conn are /1000 and MSE is x1000, as in Composition-1k "
        "tables; predictions are quantised to 8 bits before scoring. Seconds per image are the "
        "wall-clock and CPU time of the method's call when the prediction was computed (cached "
        "ones keep those times); for a single-threaded run the CPU time is much less affected "
        "than the wall-clock time by other load on the machine.",
        "",
        "Per image: mean and median SAD, the same over the images whose trimap marks some foreground "
        "(\"with fg\"; without any, closed-form-like methods can only answer 0), and wins-losses(-ties) "
        "in SAD against each method, over all images / those with foreground.",
        "",
        comparison_markdown(compare(result)),
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} CPUs; thread settings {env['threads']}.",
        "",
    ]
    return "\n".join(parts)


def environment() -> dict[str, Any]:
    """Where timings were taken: CPU, thread settings, package versions."""
    packages = {}
    for name in ("diffmatte", "numpy", "scipy", "torch", "pymatting", "numba"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in _THREAD_VARS}
        | ({"torch": torch.get_num_threads()} if torch is not None else {}),
        "packages": packages,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _plot_methods(path: Path, rows: Sequence[SummaryRow]) -> None:
    """Bars of each metric and of seconds per image, one group per method, one bar per trimap set."""
    from matplotlib.figure import Figure

    labels = list(dict.fromkeys(r.spec.label for r in rows))
    sets = list(dict.fromkeys(r.trimap_set for r in rows))
    panels = (*METRICS, "seconds")
    fig = Figure(figsize=(max(8.0, 1.1 * len(labels) * len(panels) / 2), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels))
    width = 0.8 / len(sets)
    x = np.arange(len(labels))
    for ax, metric in zip(axes, panels, strict=True):
        for i, tset in enumerate(sets):
            by_label = {r.spec.label: getattr(r, metric) for r in rows if r.trimap_set == tset}
            ax.bar(x + (i - (len(sets) - 1) / 2) * width, [by_label.get(lb, np.nan) for lb in labels],
                   width, label=tset)
        ax.set_title(_HEADERS.get(metric, "s / image"))
        ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    _legend_below(fig, axes[0])
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def _legend_below(fig: Any, ax: Any) -> None:
    """One legend for all panels, under them, so that it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)


def _plot_steps(path: Path, rows: Sequence[SummaryRow]) -> bool:
    """Each metric against DiffMatte's sampling steps, classical methods as dotted lines."""
    stepped = [r for r in rows if r.spec.steps is not None]
    if not stepped:
        return False
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    curves = dict.fromkeys((r.spec.method, r.spec.model, r.trimap_set) for r in stepped)
    all_steps = sorted({r.spec.steps for r in stepped if r.spec.steps is not None})
    for ax, metric in zip(axes, METRICS, strict=True):
        for method, model, tset in curves:
            pts = sorted((r.spec.steps, getattr(r, metric)) for r in stepped
                         if (r.spec.method, r.spec.model, r.trimap_set) == (method, model, tset))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{model or method} ({tset})")
        flat = [r for r in rows if r.spec.steps is None]
        for k, r in enumerate(flat):
            ax.axhline(getattr(r, metric), linestyle=":", linewidth=1, label=f"{r.spec.label} ({r.trimap_set})",
                       color=f"C{(len(curves) + k) % 10}")
        if len(all_steps) > 1 and all_steps[-1] / all_steps[0] >= 4:
            ax.set_xscale("log")
        ax.set_xticks(all_steps, [str(s) for s in all_steps])
        ax.minorticks_off()  # log-scale minor labels such as "3x10^0" only clutter
        ax.set_xlabel("sampling steps")
        ax.set_title(_HEADERS[metric])
    _legend_below(fig, axes[0])
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return True
