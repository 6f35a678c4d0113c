"""The network as the pipeline runs it: one interface for torch weights and ONNX graphs.

:class:`~diffmatte.pipeline.DiffMatte` holds a :class:`Network`: ``encode`` once per image,
``denoise`` once per sampling step, both inside ``session()``. :class:`TorchNetwork` is the
torch side (a :class:`DiffMatteNet` in eval mode, its fast decoder, autocast for bf16);
:class:`diffmatte.onnx.network.OnnxNetwork` runs an export with onnxruntime. The pipeline
never asks which one it holds.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Protocol

import torch
from torch import Tensor

from ..runtime import Precision, PrecisionChoice, autocast, resolve_precision
from .configuration import DiffMatteConfig
from .fast_decoder import FAST, FastDecoder, InferenceOptions
from .modeling_diffmatte import DiffMatteNet, EncodedImage

__all__ = ["Network", "TorchNetwork"]


class Network(Protocol):
    precision: Precision

    @property
    def config(self) -> DiffMatteConfig: ...

    @property
    def device(self) -> torch.device: ...

    def session(self) -> contextlib.AbstractContextManager[None]:
        """The context one image is matted in (encode, then every step)."""
        ...

    def encode(self, image: Tensor, trimap: Tensor) -> EncodedImage: ...

    def denoise(self, encoded: EncodedImage, x_in: Tensor, t: Tensor) -> Tensor:
        """x0_hat (B, 1, H, W) float32 in (-1, 1), as :meth:`DiffMatteNet.denoise`."""
        ...

    def with_precision(self, precision: PrecisionChoice) -> "Network":
        """This network in ``precision`` (itself when nothing changes)."""
        ...


@contextlib.contextmanager
def _eval_mode(net: torch.nn.Module) -> Iterator[None]:
    """Run ``net`` in eval mode, then give every submodule back the mode it had."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


class TorchNetwork:
    """A :class:`DiffMatteNet` run for inference: eval mode per image, the fast decoder, autocast.

    ``net`` is used as it is given: a session puts back the mode it had, and its weights are
    never converted (the fast decoder keeps its own copies). ``precision`` "auto" picks bf16
    where the device multiplies it natively (:func:`diffmatte.runtime.resolve_precision`).
    """

    def __init__(self, net: DiffMatteNet, precision: PrecisionChoice = "fp32", options: InferenceOptions = FAST) -> None:
        self.net = net
        self.options = options
        self.precision: Precision = resolve_precision(precision, self.device.type)
        self._decoder = FastDecoder(net.decoder, options)

    @property
    def config(self) -> DiffMatteConfig:
        return self.net.config

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def with_precision(self, precision: PrecisionChoice) -> "TorchNetwork":
        if resolve_precision(precision, self.device.type) == self.precision:
            return self
        return TorchNetwork(self.net, precision, self.options)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        # The fast path's weights are derived before the encoder's temporaries exist, so the
        # heap does not grow around them (FastDecoder.prepare).
        with _eval_mode(self.net):
            self._decoder.prepare()
            yield

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.device.type, self.precision)

    def encode(self, image: Tensor, trimap: Tensor) -> EncodedImage:
        with self._autocast():
            return self.net.encode(image, trimap)

    def denoise(self, encoded: EncodedImage, x_in: Tensor, t: Tensor) -> Tensor:
        with self._autocast():
            return self.net.denoise(encoded, x_in, t, self._decoder).float()
