"""Running a `diffmatte export` folder with onnxruntime.

:class:`OnnxNetwork` is a :class:`~diffmatte.models.network.Network` over two onnxruntime
sessions (``encode`` once per image, ``denoise`` once per step). The pipeline holds it as it
holds a torch network, so the preprocessing, the sampler (and its noise), the known-region rule
and the writers are the torch path's own. Needs onnxruntime only (CPU provider; the CUDA
provider when onnxruntime offers it), not torch's exporter.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import CheckpointError, InputError
from ..models.configuration import DiffMatteConfig
from ..models.modeling_diffmatte import EncodedImage, network_inputs
from ..runtime import Precision, PrecisionChoice
from ..transforms import pad_to
from .format import CONFIG_FILE, read_export_config

__all__ = ["OnnxNetwork"]

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


def _providers(device: str | torch.device | None) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    kind = None if device is None else torch.device(device).type
    if kind == "cuda":
        if _CUDA not in available:
            raise CheckpointError(
                "device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu), "
                f"available: {', '.join(available)}"
            )
        return [_CUDA, _CPU]
    if kind not in (None, "cpu"):
        raise CheckpointError(f"device {device}: ONNX exports run on cpu or cuda")
    return [_CUDA, _CPU] if kind is None and _CUDA in available else [_CPU]


class OnnxNetwork:
    """The encoder and one decoder step of an export, as onnxruntime sessions."""

    precision: Precision = "fp32"  # the only arithmetic an export has

    def __init__(
        self,
        folder: str | os.PathLike[str],
        device: str | torch.device | None = None,
        preset: str | None = None,
        precision: PrecisionChoice = "fp32",
    ) -> None:
        """``device``: None takes the CUDA provider when onnxruntime has one, else the CPU;
        "cpu" or "cuda" asks for one. onnxruntime uses ``torch.get_num_threads()`` threads.
        ``preset``: the preset the caller expects the folder to hold (None: any)."""
        _check_precision(precision)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise CheckpointError(
                f"model folder {folder}: running an ONNX export needs onnxruntime: pip install onnxruntime"
            ) from e
        self.folder = Path(folder)
        self.meta = read_export_config(self.folder)
        try:
            self.config = DiffMatteConfig.from_dict(self.meta["model_config"])
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{self.folder / CONFIG_FILE}: model_config is invalid: {e}") from e
        if preset is not None and preset != self.config.name:
            raise CheckpointError(f"model folder {folder} holds preset {self.config.name!r}, not {preset!r}")
        self.trimap_encoding: str = self.meta["trimap_encoding"]
        self.providers = _providers(device)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.log_severity_level = 3  # no warnings about unused initialisers
        # Shapes change with every image: a memory pattern planned for one does not fit the next.
        opts.enable_mem_pattern = False
        self._encoder = self._session(ort, opts, "encoder")
        self._decoder = self._session(ort, opts, "decoder_step")

    def _session(self, ort: Any, opts: Any, part: str) -> Any:
        name = self.meta[part].get("file") if isinstance(self.meta[part], dict) else None
        path = self.folder / str(name)
        if not name or not path.is_file():
            raise CheckpointError(f"model folder {self.folder}: the {part} graph {name!r} is missing")
        try:
            return ort.InferenceSession(str(path), opts, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own types for bad files
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{path}: onnxruntime cannot load it ({first})") from e

    @property
    def device(self) -> torch.device:
        # The sampler's tensors stay on the CPU; onnxruntime copies to its device per call.
        return torch.device("cpu")

    def with_precision(self, precision: PrecisionChoice) -> "OnnxNetwork":
        _check_precision(precision)
        return self

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # onnxruntime's sessions hold no per-image state

    def encode(self, image: Tensor, trimap: Tensor) -> EncodedImage:
        enc, cond = network_inputs(image, trimap, self.trimap_encoding, evidence=self.config.evidence)
        (features,) = self._encoder.run(None, {"encoder_input": _numpy(enc)})
        return EncodedImage(torch.from_numpy(features), cond, (image.shape[-2], image.shape[-1]))

    def denoise(self, encoded: EncodedImage, x_in: Tensor, t: Tensor) -> Tensor:
        """x0_hat (B, 1, H, W) in (-1, 1), as DiffMatteNet.denoise."""
        h, w = encoded.size
        hp, wp = encoded.condition.shape[-2:]
        feeds = {
            "condition": _numpy(encoded.condition),
            "x_in": _numpy(pad_to(x_in, hp, wp)),
            "t": _numpy(t),
            "features": _numpy(encoded.features),
        }
        (x0,) = self._decoder.run(None, feeds)
        return torch.from_numpy(x0)[:, :, :h, :w]


def _numpy(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def _check_precision(precision: str) -> None:
    if precision not in ("fp32", "auto"):  # auto: fp32, the only arithmetic an export has
        raise InputError(f"precision {precision}: ONNX exports run in fp32 only; use fp32 or the torch checkpoint")
