"""Exceptions a user can cause. The CLI maps every DiffMatteError to exit status 2."""
from __future__ import annotations

__all__ = ["DiffMatteError", "InputError", "CheckpointError", "TooLarge"]


class DiffMatteError(Exception):
    """Base class of the errors that come from bad input rather than from a bug."""


class InputError(DiffMatteError, ValueError):
    """An image, trimap or argument that cannot be used; the message says which and why."""


class CheckpointError(DiffMatteError, ValueError):
    """A weights file that is missing, unreadable, or does not fit the architecture."""


class TooLarge(InputError):
    """An input over a size limit (pixels, or too large to decode safely).

    ``subject`` names the input ("image", "trimap x.png"); ``width``, ``height`` and ``limit``
    are set for a pixel limit, so a server can say it in its own words."""

    def __init__(self, message: str, subject: str = "", width: int = 0, height: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.subject, self.width, self.height, self.limit = subject, width, height, limit
