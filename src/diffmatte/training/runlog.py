"""A training run's metrics.jsonl, kept to what its checkpoint has seen.

A killed run has logged steps after its last checkpoint; resuming repeats those steps, so the
lines they wrote are cut first (as TensorBoard's ``purge_step`` does for event files).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..writers import atomic_write

__all__ = ["truncate_metrics"]


def truncate_metrics(path: Path, last_step: int) -> int:
    """Keep the lines of ``path`` up to and including ``last_step``; return how many were cut.

    Lines are cut from the first one past ``last_step`` or the first that is not a whole JSON
    object (a write the kill tore) on. The file is replaced atomically; a missing file is left
    missing.
    """
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines(keepends=True)
    keep = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            break
        if not line.endswith("\n") or not isinstance(record, dict) or int(record.get("step", 0)) > last_step:
            break
        keep += 1
    if keep == len(lines):
        return 0
    atomic_write(path, lambda tmp: tmp.write_text("".join(lines[:keep])))
    return len(lines) - keep
