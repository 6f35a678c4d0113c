"""Exceptions a user can cause. The CLI maps every DiffMatteError to exit status 2."""
from __future__ import annotations

__all__ = ["DiffMatteError", "InputError", "CheckpointError"]


class DiffMatteError(Exception):
    """Base class of the errors that come from bad input rather than from a bug."""


class InputError(DiffMatteError, ValueError):
    """An image, trimap or argument that cannot be used; the message says which and why."""


class CheckpointError(DiffMatteError, ValueError):
    """A weights file that is missing, unreadable, or does not fit the architecture."""
