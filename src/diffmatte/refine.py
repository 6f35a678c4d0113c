"""Paint to refine: re-matte only a window around a trimap edit and blend it into the previous matte.

After a correction stroke, most of the matte is still right. ``refine_window`` crops a window
around the edit (the edit's bounding box plus ``context`` px of surroundings on every side,
grown to at least ``window`` px a side where the image allows), mattes the crop with the same
steps and the same noise a full run with that seed would use at those pixels, and blends it
into the previous matte with a linear ramp ``feather`` px wide along the window sides that lie
inside the image.

What is exact:

* every pixel outside the window keeps the previous matte's value, bit for bit;
* inside the window every pixel the new trimap marks known is 0 or 1;
* the noise x_T in the window is the full-image noise of that seed, cropped;
* the window lies on the encoder's 32 px grid of the whole image (see ``choose_window``);
* a window larger than the model's working size (``config.working_megapixels``) is matted as
  ``DiffMatte.predict`` mattes an image that large: at the working size, with the model's
  fusion, brought back by the guided upsampler; so a window covering such an image is exactly a
  full ``predict`` with the same trimap, steps and seed, and no window costs more than a full run;
* a smaller window is sampled at full resolution from the full-image noise, cropped; covering
  the whole image it equals ``predict`` for models without fusion (the default model fuses
  closed-form's colour model only in ``predict``).

What is approximate (measured in benchmarks/serve_latency.py, quoted in docs/serve.md):

* inside the window the network sees only the crop: context beyond it (the ViT's global
  attention, the CNN's receptive field) is cut at its edge, and the sampler normalises each
  step's input by its standard deviation over the crop, not over the image. Both can change
  the matte throughout the window, not only near its edge;
* in the feather ramp the matte is a mix of the previous and the new values;
* outside the window a full re-run would also move pixels a little (the same normalisation,
  and context reaching across); the window leaves them as they were.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from .errors import InputError
from .io import MIN_SIDE
from .upsample import working_shape

if TYPE_CHECKING:
    from .pipeline import DiffMatte

__all__ = ["ALIGN", "Box", "RefineResult", "edit_box", "choose_window", "blend_weights", "refine_window"]

# The encoders' total stride; the pipeline pads images to a multiple of it (transforms.padded_size).
ALIGN = 32


@dataclass(frozen=True)
class Box:
    """A pixel rectangle: rows top..bottom-1, columns left..right-1."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def check_inside(self, h: int, w: int, name: str = "box") -> None:
        if not (0 <= self.left < self.right <= w and 0 <= self.top < self.bottom <= h):
            raise InputError(
                f"{name} ({self.left}, {self.top}, {self.right}, {self.bottom}) must be a non-empty "
                f"rectangle inside the {w}x{h} image (left, top, right, bottom; right and bottom exclusive)"
            )


@dataclass(frozen=True)
class RefineResult:
    alpha: np.ndarray  # (H, W) float32 in [0, 1]: the previous matte with the window blended in
    window: Box  # the region re-matted; every pixel outside it is the previous matte's


def edit_box(old_trimap: np.ndarray, new_trimap: np.ndarray) -> Box | None:
    """Bounding box of the pixels where two trimaps differ; None when they are equal."""
    if old_trimap.shape != new_trimap.shape:
        raise InputError(f"trimaps differ in size: {old_trimap.shape} and {new_trimap.shape}")
    rows = np.flatnonzero((old_trimap != new_trimap).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((old_trimap != new_trimap).any(axis=0))
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _span(lo: int, hi: int, context: int, size: int, limit: int, align: int) -> tuple[int, int]:
    """An interval of at least ``size`` holding lo - context .. hi + context, inside 0..limit,
    starting on a multiple of ``align`` and a multiple of ``align`` long unless it ends at ``limit``."""
    need_lo, need_hi = max(lo - context, 0), min(hi + context, limit)
    length = max(size, need_hi - need_lo, MIN_SIDE)
    length = min(limit, -(-length // align) * align)
    centre = (lo + hi) / 2
    start = int(round(centre - length / 2))
    start = min(max(start, 0), limit - length)
    start = min(start, need_lo)
    start -= start % align
    end = start + length
    while end < need_hi:
        end += align
    return start, min(end, limit)


def choose_window(edit: Box, h: int, w: int, window: int = 512, context: int = 64, align: int = ALIGN) -> Box:
    """The region to re-matte for an edit in an (h, w) image.

    At least ``window`` px a side (less only where the image is smaller), about centred on the
    edit, holding the edit plus ``context`` px on every side that does not reach the image
    border. Its top-left corner lies on the ``align`` grid and its sides are multiples of
    ``align`` (except where it ends at the image's right or bottom edge), so the encoder's
    strided grid over the crop is the one it lays over the whole image (the pipeline pads at the
    bottom and right). Its effect on closeness to a full re-run is not measured cleanly
    (docs/serve.md).
    """
    edit.check_inside(h, w, "edit box")
    if window < MIN_SIDE or context < 0:
        raise InputError(f"window must be at least {MIN_SIDE} px and context at least 0, got {window} and {context}")
    top, bottom = _span(edit.top, edit.bottom, context, window, h, align)
    left, right = _span(edit.left, edit.right, context, window, w, align)
    return Box(left, top, right, bottom)


def blend_weights(win: Box, h: int, w: int, feather: int) -> np.ndarray:
    """(win.height, win.width) weights of the new matte: 1 inside, a linear ramp to 0 over
    ``feather`` px along each window side that lies inside the image (none at image borders)."""
    def ramp(n: int, open_start: bool, open_end: bool) -> np.ndarray:
        idx = np.arange(n, dtype=np.float32)
        r = np.ones(n, dtype=np.float32)
        if feather > 0 and open_start:
            r = np.minimum(r, (idx + 1) / (feather + 1))
        if feather > 0 and open_end:
            r = np.minimum(r, (n - idx) / (feather + 1))
        return r

    ry = ramp(win.height, win.top > 0, win.bottom < h)
    rx = ramp(win.width, win.left > 0, win.right < w)
    return np.minimum(ry[:, None], rx[None, :])


def refine_window(
    model: "DiffMatte",
    image: np.ndarray,
    trimap: np.ndarray,
    previous_alpha: np.ndarray,
    edit: Box,
    *,
    steps: int = 10,
    seed: int = 0,
    window: int = 512,
    context: int = 64,
    feather: int = 16,
    on_step: Callable[[int, Any], None] | None = None,
) -> RefineResult:
    """Re-matte the window around ``edit`` and blend it into ``previous_alpha``.

    Args:
        model: the DiffMatte pipeline.
        image: (H, W, 3) float32 in [0, 1].
        trimap: (H, W) in {0, 0.5, 1}: the trimap after the edit.
        previous_alpha: (H, W) float in [0, 1]: the matte before the edit.
        edit: where the trimap changed (e.g. ``edit_box(old, new)`` or the stroke's box).
        steps, seed: as for ``DiffMatte.predict``; the window gets the seed's full-image noise.
        window: smallest window side in px.
        context: px of surroundings kept around the edit; at least ``feather``.
        feather: width of the blending ramp in px.
        on_step: called after each step with the step index (and that step's estimate of the
            window: an x0 tensor, or a matte when the window is matted at the working size).

    Returns:
        RefineResult with the blended matte and the window.

    Raises:
        InputError: shapes that differ, an edit box outside the image, feather > context.
    """
    h, w = trimap.shape
    if image.shape[:2] != (h, w) or previous_alpha.shape != (h, w):
        raise InputError(
            f"image {image.shape[:2]}, trimap {trimap.shape} and previous matte {previous_alpha.shape} "
            "must have the same height and width"
        )
    if not 0 <= feather <= context:
        raise InputError(f"feather must lie in 0..context ({context}) so the edit is fully re-matted, got {feather}")
    win = choose_window(edit, h, w, window, context)
    rows, cols = win.slices
    tri = trimap[rows, cols]
    out = np.array(previous_alpha, dtype=np.float32, copy=True)
    if not bool((tri == 0.5).any()):
        new = tri.astype(np.float32)  # nothing unknown in the window: the trimap is the matte
    elif working_shape(win.height, win.width, model.config.working_megapixels) != (win.height, win.width):
        # Above the working size: as predict would matte an image this large (its working
        # size, fusion and guided upsampling), so a window never costs more than a full run.
        new = model.predict(np.ascontiguousarray(image[rows, cols]), np.ascontiguousarray(tri), steps, seed,
                            max_pixels=None, on_step=on_step)
    else:
        # The noise a full run with this seed draws (DiffMatte.sample: one randn of the
        # trimap's shape from the seeded generator), cropped to the window.
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn((1, 1, h, w), generator=generator, dtype=torch.float32)[..., rows, cols]
        img_t = torch.from_numpy(np.ascontiguousarray(image[rows, cols].transpose(2, 0, 1)))[None]
        tri_t = torch.from_numpy(np.ascontiguousarray(tri))[None, None]
        result = model.sample(img_t, tri_t, steps, noise=noise.contiguous(), on_step=on_step)
        new = result.alpha[0, 0].float().cpu().numpy()
    weight = blend_weights(win, h, w, feather)
    out[rows, cols] = weight * new + (1.0 - weight) * out[rows, cols]
    # The ramp mixes two mattes; known pixels of the new trimap stay exactly 0 or 1.
    view = out[rows, cols]
    view[tri == 0] = 0.0
    view[tri == 1] = 1.0
    return RefineResult(alpha=out, window=win)
