"""Picking images by name: exact names, globs and numbered ranges (GT19-GT27).

Shared by evaluation (``--images``) and training (``data.image_names``), so both take
the same syntax.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Sequence

__all__ = ["select_names", "split_patterns"]


def split_patterns(text: str) -> list[str]:
    """Comma-separated patterns to a list (empty strings dropped)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def select_names(names: Sequence[str], patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The names picked by ``patterns``, in the order of ``names``, and problems.

    Each pattern is an exact name (``GT05``), a glob (``GT1*``, ``*_0``) or an inclusive
    numbered range (``GT19-GT27`` or ``GT19-27``: the same prefix followed by a number).
    An exact name wins over the other readings, so names containing ``-`` still work.

    Parameters
    ----------
    names : sequence of str
        All image names of the dataset.
    patterns : sequence of str
        The selection; empty selects everything.

    Returns
    -------
    selected : list of str
        Selected names, each once, in the order of ``names``.
    problems : list of str
        One line per pattern that matches nothing.

    Examples
    --------
    >>> names = [f"GT{i:02d}" for i in range(1, 28)]
    >>> select_names(names, ["GT25-GT27", "GT0[12]"])
    (['GT01', 'GT02', 'GT25', 'GT26', 'GT27'], [])
    >>> select_names(names, ["GT30"])[1]
    ["image selection 'GT30' matches no image"]
    """
    if not patterns:
        return list(names), []
    chosen: set[str] = set()
    problems = []
    for pattern in patterns:
        hits = _match(names, pattern)
        if not hits:
            problems.append(f"image selection {pattern!r} matches no image")
        chosen.update(hits)
    return [n for n in names if n in chosen], problems


_RANGE = re.compile(r"^(?P<prefix>\D*?)(?P<lo>\d+)-(?P=prefix)?(?P<hi>\d+)$")


def _match(names: Sequence[str], pattern: str) -> list[str]:
    if pattern in names:
        return [pattern]
    if any(c in pattern for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    m = _RANGE.match(pattern)
    if m is None:
        return []
    lo, hi = int(m["lo"]), int(m["hi"])
    numbered = re.compile(re.escape(m["prefix"]) + r"(\d+)")
    return [n for n in names if (k := numbered.fullmatch(n)) is not None and lo <= int(k[1]) <= hi]
