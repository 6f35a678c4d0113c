"""Limits shared by the library and the command line, in a module that imports nothing, so that
``diffmatte --help`` can show them without loading NumPy, Pillow or PyTorch."""
from __future__ import annotations

__all__ = ["DEFAULT_MAX_PIXELS"]

# Refuses inputs whose decoded size alone would exhaust memory. Callers raise it with
# max_pixels= (CLI: --max-pixels); None disables the check.
DEFAULT_MAX_PIXELS = 50_000_000
