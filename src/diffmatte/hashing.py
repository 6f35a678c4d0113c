"""File digests, for the checks that weights on disk are the files that were recorded.

At the bottom of the layers: the encoders (ImageNet weights), the model registry and the
evaluation cache all use it.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["sha256_file"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks; of a folder (an ONNX export), of its
    files' names and contents in name order."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")) if p.is_dir() else [p]
    for file in files:
        if p.is_dir():
            h.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
