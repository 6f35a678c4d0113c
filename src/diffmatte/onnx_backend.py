"""Running a `diffmatte export` folder with onnxruntime.

:class:`OnnxNet` has the two methods of :class:`~diffmatte.models.modeling_diffmatte.DiffMatteNet`
that the pipeline calls (``encode`` once per image, ``denoise`` once per step) over two
onnxruntime sessions; :class:`OnnxDiffMatte` is the :class:`~diffmatte.pipeline.DiffMatte`
pipeline around it, so the preprocessing, the sampler (and its noise), the known-region rule
and the writers are the torch path's own. Needs onnxruntime only (CPU provider; the CUDA
provider when onnxruntime offers it), not torch's exporter.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .diffusion.sampler import GaussianDiffusion
from .errors import CheckpointError, InputError
from .export import CONFIG_FILE, FORMAT, FORMAT_VERSION, PAD_MULTIPLE
from .models.configuration import DiffMatteConfig
from .models.modeling_diffmatte import EncodedImage, network_inputs
from .pipeline import PLAIN, DiffMatte
from .transforms import pad_to

__all__ = ["OnnxDiffMatte", "OnnxNet", "is_onnx_export", "read_export_config"]

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by `diffmatte export`."""
    return (Path(path) / CONFIG_FILE).is_file()


def read_export_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The export's ``diffmatte_onnx.json``, checked."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"model folder {folder}: no {CONFIG_FILE}, so not a diffmatte ONNX export "
            "(make one with `diffmatte export --model NAME|PATH -o DIR`)"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a diffmatte ONNX export config (expected \"format\": \"{FORMAT}\")")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version!r} is not one this diffmatte reads (up to {FORMAT_VERSION}); "
            "upgrade diffmatte or export again"
        )
    for key in ("model_config", "trimap_encoding", "encoder", "decoder_step", "padding"):
        if key not in meta:
            raise CheckpointError(f"{path}: field {key!r} is missing")
    multiple = meta["padding"].get("multiple") if isinstance(meta["padding"], dict) else None
    if multiple != PAD_MULTIPLE:
        # network_inputs pads to multiples of 32 (the official rule); the graphs were traced so.
        raise CheckpointError(f"{path}: padding multiple {multiple!r} is not the {PAD_MULTIPLE} this diffmatte uses")
    return meta


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


class OnnxNet:
    """The encoder and one decoder step of an export, as onnxruntime sessions."""

    def __init__(self, folder: str | os.PathLike[str], device: str | torch.device | None = None) -> None:
        """``device``: None takes the CUDA provider when onnxruntime has one, else the CPU;
        "cpu" or "cuda" asks for one. onnxruntime uses ``torch.get_num_threads()`` threads."""
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


class OnnxDiffMatte(DiffMatte):
    """The DiffMatte pipeline on an ONNX export: same preprocessing, sampler, known-region rule."""

    def __init__(self, net: OnnxNet, precision: str = "fp32") -> None:
        if precision not in ("fp32", "auto"):  # auto: fp32, the only arithmetic an export has
            raise InputError(f"precision {precision}: ONNX exports run in fp32 only; use fp32 or the torch checkpoint")
        self.net = net  # type: ignore[assignment]
        self.diffusion = GaussianDiffusion(net.config.diffusion)
        self.precision = "fp32"
        self.options = PLAIN  # onnxruntime runs the graphs its own way

    def with_precision(self, precision: str) -> "OnnxDiffMatte":  # type: ignore[override]
        return self if precision in ("fp32", "auto") else OnnxDiffMatte(self.net, precision)  # raises the one-line error

    def _inference(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _denoise(self, encoded: Any, x_in: Tensor, t: Tensor) -> Tensor:
        return self.net.denoise(encoded, x_in, t)

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike[str],
        preset: str | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
    ) -> "OnnxDiffMatte":
        net = OnnxNet(folder, device)
        if preset is not None and preset != net.config.name:
            raise CheckpointError(f"model folder {folder} holds preset {net.config.name!r}, not {preset!r}")
        return cls(net, precision=precision)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def save(self, path: str | os.PathLike[str]) -> None:
        raise CheckpointError("an ONNX export holds no torch weights to save; export again from the checkpoint")

