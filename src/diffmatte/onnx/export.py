"""ONNX export: the encoder and one decoder step as two graphs, plus the config to run them.

The sampling loop stays in Python (the pipeline runs an export through
diffmatte.onnx.network with the same sampler as the torch path), so one export serves any number of steps. Both graphs take the *padded*
network inputs that :func:`diffmatte.models.modeling_diffmatte.network_inputs` makes, with
dynamic batch, height and width (height and width multiples of 32, as the padding rule
gives):

* ``encoder.onnx``: ``encoder_input`` (B, C, Hp, Wp) -> ``features`` (B, F, Hp/s, Wp/s)
* ``decoder_step.onnx``: ``condition`` (B, 6 or 11, Hp, Wp), ``x_in`` (B, 1, Hp, Wp) (the std-normalised
  x_t, zero-padded), ``t`` (B,), ``features`` -> ``x0`` (B, 1, Hp, Wp) = 2 sigmoid(logits) - 1

The exporter traces the plain formulation of the network, which gives the same numbers
(checked after every export): the decoder as ``DUNet.forward`` has it (its inference fast path
lives in the pipeline, diffmatte.models.fast_decoder), and the ViT attention without its
query chunks and key blocks (a private aten kernel), as the benchmarks' ``naive`` mode runs it.

Needs the exporter's packages (``pip install 'diffmatte[export]'``: onnx, onnxscript);
running an export needs only onnxruntime.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._version import __version__
from ..errors import DiffMatteError
from ..models.configuration import DiffMatteConfig
from ..models.modeling_diffmatte import DiffMatteNet, network_inputs
from ..transforms import padded_size
from .format import CONFIG_FILE, DECODER_FILE, ENCODER_FILE, FORMAT, FORMAT_VERSION, PAD_MULTIPLE

__all__ = [
    "ExportError",
    "ExportResult",
    "config_dict",
    "export_onnx",
    "plain_execution",
]

DEFAULT_OPSET = 18
MIN_OPSET = 17
# Traced at this size and batch: neither may be a value torch.export specialises (0, 1) or a
# multiple that hides a padding branch (windows of 14 tokens, for instance); the check after
# the export runs another size.
_EXAMPLE = (2, 96, 160)
_CHECK = (1, 128, 64)
# Largest padded side the graphs accept, in units of 32 px.
_MAX_BLOCKS = 2048
# Export check: onnxruntime against torch on the same padded inputs, one decoder step.
_CHECK_TOLERANCE = 1e-4


class ExportError(DiffMatteError):
    """A model that cannot be exported, or an export folder that cannot be written."""


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: tuple[Path, ...]
    check_size: tuple[int, int]  # (H, W) of the parity check
    max_abs_error: float  # of x0 (one decoder step) and the features, onnxruntime vs torch


def config_dict(config: DiffMatteConfig) -> dict[str, Any]:
    """The model config as checkpoints store it (every field of the dataclass)."""
    return config.to_dict()


def plain_execution(net: DiffMatteNet) -> DiffMatteNet:
    """A copy of ``net`` with every inference-time speed path off (see the module docstring)."""
    return switch_to_plain(copy.deepcopy(net).eval())


def switch_to_plain(net: DiffMatteNet) -> DiffMatteNet:
    """Switch the encoder's attention memory paths off, in place: one attention chunk and no
    key blocks, the way the official code executes (also the benchmarks' ``naive`` mode, with
    the pipeline's ``options=PLAIN`` for the decoder). Same numbers, more time and memory."""
    for m in net.modules():
        if hasattr(m, "max_bias_elements"):  # ViT attention: one chunk, no key blocks
            m.max_bias_elements = 2**62
            m.key_blocks_above_bytes = 2**62
    return net


class _EncoderGraph(nn.Module):
    def __init__(self, net: DiffMatteNet) -> None:
        super().__init__()
        self.backbone = net.backbone

    def forward(self, encoder_input: Tensor) -> Tensor:
        return self.backbone(encoder_input)


class _DecoderStepGraph(nn.Module):
    def __init__(self, net: DiffMatteNet) -> None:
        super().__init__()
        self.decoder = net.decoder

    def forward(self, condition: Tensor, x_in: Tensor, t: Tensor, features: Tensor) -> Tensor:
        logits = self.decoder(torch.cat([condition, x_in], dim=1), t, features)
        return 2.0 * torch.sigmoid(logits) - 1.0


def _example(net: DiffMatteNet, batch: int, h: int, w: int) -> tuple[Tensor, ...]:
    """(encoder input, condition, x_in, t, features) of a random image at this padded size."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, h, w, generator=g)
    trimap = torch.randint(0, 3, (batch, 1, h, w), generator=g).float() / 2
    enc, cond = network_inputs(image, trimap, net.backbone.trimap_encoding, evidence=net.config.evidence)
    with torch.no_grad():
        features = net.backbone(enc)
    x_in = torch.randn(batch, 1, h, w, generator=g)
    t = torch.rand(batch, generator=g)
    return enc, cond, x_in, t, features


def _one_line(e: BaseException) -> str:
    """The cause of an exporter failure in one line: its exception summary, else its message."""
    text = str(e)
    lines = text.splitlines()
    if "## Exception summary" in lines:
        after = [ln for ln in lines[lines.index("## Exception summary") + 1 :] if ln.strip()]
        text = after[0] if after else text
    else:
        text = next((ln for ln in lines if ln.strip()), type(e).__name__)
    text = re.sub(r"^<class '[\w.]+'>: ", "", text)
    return text if len(text) <= 200 else text[:197] + "..."


def _check_exporter() -> None:
    missing = [name for name in ("onnx", "onnxscript") if _find_spec(name) is None]
    if missing:
        raise ExportError(
            f"ONNX export needs {' and '.join(missing)} (torch's exporter): pip install 'diffmatte[export]'"
        )


def _find_spec(name: str) -> Any:
    import importlib.util

    return importlib.util.find_spec(name)


def _prepare_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"-o {folder}: is a file; give a folder for the export")
    ours = [folder / n for n in (CONFIG_FILE, ENCODER_FILE, DECODER_FILE)]
    if not overwrite and any(p.exists() for p in ours):
        raise ExportError(f"-o {folder}: already holds an export; pass --overwrite to replace it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"-o {folder}: cannot create the folder ({e.strerror})") from e
    if not os.access(folder, os.W_OK):
        raise ExportError(f"-o {folder}: folder is not writable")


def _export_graph(module: nn.Module, args: tuple[Tensor, ...], path: Path, names: tuple[list[str], list[str]],
                  dynamic: tuple[dict[int, Any], ...], opset: int, preset: str) -> None:
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # it lists every torchvision op it skips
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Traced with autograd on: the no-autograd paths write into preallocated buffers
            # (``out=``), which torch.export cannot reshape for symbolic sizes.
            with torch.enable_grad():
                torch.onnx.export(
                    module,
                    args,
                    str(path),
                    dynamo=True,
                    opset_version=opset,
                    input_names=names[0],
                    output_names=names[1],
                    dynamic_shapes=dynamic,
                    external_data=False,
                    report=False,
                    verbose=False,
                )
    except Exception as e:  # the exporter raises many types; the cause is what the user needs
        raise ExportError(f"preset {preset!r} cannot be exported to ONNX: {_one_line(e)}") from e
    finally:
        onnx_logger.setLevel(level)


def _check(net: DiffMatteNet, encoder: Path, decoder: Path) -> float:
    """Largest |onnxruntime - torch| of the features and one step's x0 at a size not traced."""
    import onnxruntime as ort

    batch, h, w = _CHECK
    enc, cond, x_in, t, features = _example(net, batch, h, w)
    with torch.inference_mode():
        x0 = 2.0 * torch.sigmoid(net.decoder(torch.cat([cond, x_in], dim=1), t, features)) - 1.0
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    enc_session = ort.InferenceSession(str(encoder), opts, providers=providers)
    dec_session = ort.InferenceSession(str(decoder), opts, providers=providers)
    (features_ort,) = enc_session.run(None, {"encoder_input": enc.numpy()})
    (x0_ort,) = dec_session.run(
        None, {"condition": cond.numpy(), "x_in": x_in.numpy(), "t": t.numpy(), "features": features.numpy()}
    )
    return float(max(np.abs(features_ort - features.numpy()).max(), np.abs(x0_ort - x0.numpy()).max()))


def export_onnx(
    net: DiffMatteNet,
    folder: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    source: str | None = None,
) -> ExportResult:
    """Write ``encoder.onnx``, ``decoder_step.onnx`` and ``diffmatte_onnx.json`` to ``folder``.

    ``net`` is left as it is (a plain copy is exported). Each file is written under a
    temporary name and renamed, the config last, so a folder is loadable only when complete.
    After the export, onnxruntime runs both graphs at a size that was not traced and the
    largest difference from torch must stay within 1e-4.

    Raises:
        ExportError: missing exporter packages, an unusable folder, a network the exporter
            cannot trace (one line saying why), or an export that disagrees with torch.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: the graphs need opset {MIN_OPSET} or newer")
    _check_exporter()
    out = Path(folder)
    _prepare_folder(out, overwrite)
    config = net.config
    plain = plain_execution(net)
    batch, h, w = _EXAMPLE
    enc, cond, x_in, t, features = _example(plain, batch, h, w)
    stride = config.decoder.feature_stride
    dim = torch.export.Dim
    b = dim("batch", min=1, max=1024)
    hb = dim("height_32", min=1, max=_MAX_BLOCKS)
    wb = dim("width_32", min=1, max=_MAX_BLOCKS)
    image_dims = {0: b, 2: PAD_MULTIPLE * hb, 3: PAD_MULTIPLE * wb}
    feature_dims = {0: b, 2: (PAD_MULTIPLE // stride) * hb, 3: (PAD_MULTIPLE // stride) * wb}
    tmp = {name: out / f".{name}.{os.getpid()}.tmp" for name in (ENCODER_FILE, DECODER_FILE, CONFIG_FILE)}
    try:
        _export_graph(_EncoderGraph(plain), (enc,), tmp[ENCODER_FILE], (["encoder_input"], ["features"]),
                      (image_dims,), opset, config.name)
        _export_graph(_DecoderStepGraph(plain), (cond, x_in, t, features), tmp[DECODER_FILE],
                      (["condition", "x_in", "t"] + ["features"], ["x0"]),
                      (image_dims, image_dims, {0: b}, feature_dims), opset, config.name)
        error = _check(plain, tmp[ENCODER_FILE], tmp[DECODER_FILE])
        if not error <= _CHECK_TOLERANCE:
            raise ExportError(
                f"preset {config.name!r}: the exported graphs differ from torch by {error:.2e} "
                f"(more than {_CHECK_TOLERANCE:g}) at {_CHECK[1]}x{_CHECK[2]}"
            )
        meta = _metadata(net, opset, source, error)
        tmp[CONFIG_FILE].write_text(json.dumps(meta, indent=2) + "\n")
        for name in (ENCODER_FILE, DECODER_FILE, CONFIG_FILE):
            os.replace(tmp[name], out / name)
    finally:
        for p in tmp.values():
            if p.exists():
                p.unlink()
    files = tuple(out / n for n in (ENCODER_FILE, DECODER_FILE, CONFIG_FILE))
    return ExportResult(out, files, (_CHECK[1], _CHECK[2]), error)


def _metadata(net: DiffMatteNet, opset: int, source: str | None, error: float) -> dict[str, Any]:
    config = net.config
    hp, wp = padded_size(_CHECK[1], _CHECK[2])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "preset": config.name,
        "model_config": config_dict(config),
        "schedule": config.diffusion.schedule,
        "scale": config.diffusion.scale,
        "padding": {
            "multiple": PAD_MULTIPLE,
            "rule": "if either side is not a multiple, both sides grow by multiple - side % multiple "
            "(an aligned side by a whole multiple); zeros at the bottom and right",
        },
        "trimap_encoding": net.backbone.trimap_encoding,
        "feature_stride": config.decoder.feature_stride,
        "encoder": {"file": ENCODER_FILE, "inputs": ["encoder_input"], "outputs": ["features"]},
        "decoder_step": {"file": DECODER_FILE, "inputs": ["condition", "x_in", "t", "features"], "outputs": ["x0"]},
        "opset": opset,
        "source": source,
        "exported_with": {"diffmatte": __version__, "torch": torch.__version__.split("+")[0]},
        "export_check": {"padded_size": [hp, wp], "max_abs_error": error},
    }
