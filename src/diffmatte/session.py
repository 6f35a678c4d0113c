"""One matting session: what the command line and the server both do with a user's inputs.

Inputs arrive as paths (the CLI) or as the bytes of uploaded files (the server) and go through
:mod:`diffmatte.io`'s one reader, decoded once; a missing trimap is made automatically (the
salient-object model is loaded once, on first use); then the model mattes and the cutout is
made. ``diffmatte predict`` and ``diffmatte serve`` parse their requests and call this, so how
inputs are loaded is changed in one place.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .io import DEFAULT_MAX_PIXELS, load_image, load_pair, read_alpha

if TYPE_CHECKING:
    from .pipeline import DiffMatte
    from .trimap import SalientObjectModel

__all__ = ["MattingSession"]


class MattingSession:
    """A model (loaded on first use), the pixel limit and, when needed, the salient-object model.

    ``model`` is the model or a function that loads it (called once, when a matte is first
    asked for, so a run that fails on its inputs never pays for loading weights).
    """

    def __init__(
        self,
        model: "DiffMatte | Callable[[], DiffMatte]",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        threads: int = 0,
    ) -> None:
        self._model = model
        self.max_pixels = max_pixels
        self.threads = threads

    @cached_property
    def model(self) -> "DiffMatte":
        from .pipeline import DiffMatte

        return self._model if isinstance(self._model, DiffMatte) else self._model()

    @cached_property
    def salient(self) -> "SalientObjectModel":
        from .trimap import SalientObjectModel  # onnxruntime: only for automatic trimaps

        return SalientObjectModel(threads=self.threads)

    # -- inputs ------------------------------------------------------------------------------
    def load_image(self, image: Any) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] from a path, the bytes of a file, a PIL image or an array."""
        return load_image(image, self.max_pixels)

    def load_alpha(self, alpha: Any, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 matte that must have ``shape`` (the image's)."""
        from .errors import InputError

        a = read_alpha(alpha, self.max_pixels)
        if a.shape != shape:
            raise InputError(f"alpha is {a.shape[1]}x{a.shape[0]} but the image is {shape[1]}x{shape[0]}")
        return a

    def auto_trimap(self, image: np.ndarray, band: int | None = None) -> np.ndarray:
        """(H, W) trimap in {0, 0.5, 1} from the salient-object mask (``band`` px of unknown)."""
        from .trimap import auto_trimap  # SciPy's ndimage and the salient model

        return auto_trimap(image, band, self.salient)

    def load(
        self, image: Any, trimap: Any = None, band: int | None = None, resize_trimap: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W, 3) and trimap (H, W) in {0, 0.5, 1}, read, checked and upright; the
        trimap made automatically when it is None."""
        if trimap is not None:
            return load_pair(image, trimap, resize_trimap=resize_trimap, max_pixels=self.max_pixels)
        arr = self.load_image(image)
        return load_pair(arr, self.auto_trimap(arr, band), max_pixels=self.max_pixels)

    # -- work --------------------------------------------------------------------------------
    def matte(self, image: np.ndarray, trimap: np.ndarray, steps: int, seed: int | None, **options: Any) -> Any:
        """``DiffMatte.predict`` on loaded inputs (not read again), under this session's limit."""
        return self.model.predict(image, trimap, steps, seed, max_pixels=self.max_pixels, **options)

    @staticmethod
    def cutout(image: np.ndarray, alpha: np.ndarray, background: np.ndarray | None = None,
               despill: bool = False) -> np.ndarray:
        """RGBA (H, W, 4) in [0, 1], or RGB over ``background`` (a colour (3,) or an image);
        ``despill``: see :func:`diffmatte.foreground.remove_spill`."""
        from .foreground import composite, cutout

        rgba = cutout(image, alpha, despill=despill)
        return rgba if background is None else composite(rgba, background)
