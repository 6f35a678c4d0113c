"""The DUNet decoder's inference fast path: the same numbers as ``DUNet.forward`` (to float
rounding) in less time and memory.

:mod:`diffmatte.models.dunet` is the network as the paper and the official code have it, and
what training runs. Sampling runs the decoder once per step, so a pipeline runs it through a
:class:`FastDecoder` instead, configured by one frozen :class:`InferenceOptions`:

* ``channels_last``: NHWC activations and weights; the 3x3 convolutions are 25-35% faster a
  step on x86 CPUs.
* ``fused_upsample``: the up blocks' shortcut conv3x3(bilinear 2x(x)) without building the
  upsampled map (the largest tensor of a step): one conv to the 4 output phases and a pixel
  shuffle; for wide inputs, a 1x1 conv per tap and a fixed stencil ("tap first").
* ``fold_batch_norm``: eval-mode batch norms folded into the convolutions before them.
* ``band_pixels``: the two finest up blocks and the head (most of the memory, half the
  arithmetic) in horizontal bands with a halo, so memory stays bounded on large images.
* In-place activations throughout (no autograd here).

The weights the fast path derives (phase weights, folded norms, NHWC copies) are kept between
steps, keyed by the storage and version of the parameters and buffers they come from, so a
training step, ``load_state_dict`` or ``.to()`` makes new ones. A training-mode forward moves
the running statistics without bumping their versions, but it bumps ``num_batches_tracked``'s,
which is in the key too. The network itself is never changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dunet import DUNet, DUNetBlock, DUNetHead, timestep_embedding

__all__ = ["FAST", "PLAIN", "FastDecoder", "InferenceOptions"]


@dataclass(frozen=True)
class InferenceOptions:
    """How a pipeline runs its decoder at inference. Speed and memory only: every combination
    gives the plain network's numbers to float rounding."""

    channels_last: bool = True  # on CPU only; CUDA keeps NCHW
    fused_upsample: bool = True
    fold_batch_norm: bool = True
    # Output pixels per band of the decoder tail for float32 activations (half-precision
    # autocast gets twice the pixels in the same bytes); None: no bands. Each band recomputes
    # a halo, so larger bands are faster: a ViT-S step at 1024² is 3% (fp32) and 6% (bf16)
    # faster with 2^18 than 2^17, but fp32 peak RSS grows 966 -> 1142 MiB.
    band_pixels: int | None = 1 << 17
    # Bands never hold fewer output rows than this: on wide images bands of 2^17 pixels (64
    # rows at 2048 px) made a ViT-S step at 2048² take 8.79-8.86 s, 128-row bands 7.86-7.97 s.
    min_band_rows: int = 128

    def __post_init__(self) -> None:
        if self.band_pixels is not None and self.band_pixels < 1:
            raise ValueError(f"band_pixels must be positive or None, got {self.band_pixels}")
        if self.min_band_rows < 1:
            raise ValueError(f"min_band_rows must be at least 1, got {self.min_band_rows}")


# Every speed path on: what a pipeline uses unless told otherwise.
FAST = InferenceOptions()
# Every speed path off: the plain network's way (the official code's), for comparisons.
PLAIN = InferenceOptions(channels_last=False, fused_upsample=False, fold_batch_norm=False, band_pixels=None)

# Inputs at least this wide take the tap-first upsampling; measured on 2 cores, fp32 and bf16:
# 17-21% off a ViT-S/Res34 decoder step at 1024²; narrower inputs (lite0's 96 and 48) lose
# with it (docs/performance.md).
_TAP_FIRST_MIN_CIN = 128
# Elements of tap maps computed at once (32 MiB in fp32). Peak RSS of a ViT-S predict at
# 2048² (1 step): 2295 MiB with this, 2479 with 2^25, 2358 unchunked; the allocator keeps
# freed memory, so block sizes matter as much as totals. The halo rows cost ~4% of the 1x1
# work of the blocks that are chunked.
_TAP_CHUNK_ELEMENTS = 1 << 23
# The tail run in bands: the up blocks writing stride 2 and stride 1.
_TAIL_BLOCKS = 2
# Rows of halo at the tail's input resolution (stride 4). A kept output row depends on input
# rows within 1.75 of it (transposed conv and bilinear shortcut, then 3x3 convs at strides 2
# and 1), so 2 rows are exact (measured: 1 is off by 3e-3, 2..6 agree to 1e-7). Halo rows are
# recomputed per band: a ViT-S step at 2048² (bands of 2^17 pixels, 16 input rows) took
# 8.79-8.86 s with 3 rows and 8.22-8.43 s with 2.
_TAIL_HALO = 2

# A 3x3 conv after a 2x bilinear upsampling (align_corners=False) equals, away from the
# border, four 3x3 convs on the input, one per output phase (row parity, column parity). Per
# axis, phase p's taps on x[i-1], x[i], x[i+1] are _PHASE_TAPS[p] @ (k0, k1, k2): upsampled
# u[2i] = x[i-1]/4 + 3x[i]/4 and u[2i+1] = 3x[i]/4 + x[i+1]/4, convolved with k.
_PHASE_TAPS = (
    ((0.75, 0.25, 0.0), (0.25, 0.75, 0.75), (0.0, 0.0, 0.25)),  # even outputs
    ((0.25, 0.0, 0.0), (0.75, 0.75, 0.25), (0.0, 0.25, 0.75)),  # odd outputs
)


def phase_weight(weight: Tensor) -> Tensor:
    """(Cout, Cin, 3, 3) -> (4 Cout, Cin, 3, 3) in float32, ordered for ``pixel_shuffle(., 2)``.

    Products and sums only (no matmul), so bf16 autocast leaves the arithmetic in float32.
    """
    taps = torch.tensor(_PHASE_TAPS, dtype=torch.float32, device=weight.device)  # (phase, out tap, in tap)
    w = weight.float()
    rows = (w[:, :, None, None, :, :] * taps[None, None, :, :, :, None]).sum(4)  # (o, i, py, a, c)
    both = (rows[..., None, None, :] * taps[None, None, None, None]).sum(-1)  # (o, i, py, a, px, d)
    return both.permute(0, 2, 4, 1, 3, 5).reshape(-1, w.shape[1], 3, 3)


def tap_weights(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(Cout, Cin, 3, 3) -> a 1x1 conv to one Cout map per tap, and the fixed stencil that
    turns those 9 maps into the 4 output phases (a 3x3 conv with ``groups=Cout``), both
    ordered for ``pixel_shuffle(., 2)``."""
    cout, cin = weight.shape[:2]
    taps = torch.tensor(_PHASE_TAPS, dtype=torch.float32, device=weight.device)  # (phase, offset, tap) per axis
    per_tap = weight.float().permute(0, 2, 3, 1).reshape(cout * 9, cin, 1, 1)  # channel o * 9 + tap
    by_tap = taps.permute(0, 2, 1)  # (phase, tap, offset)
    # stencil[py, px, kr, kc, a, d] = taps[py, a, kr] * taps[px, d, kc]; products, not einsum, as above
    stencil = by_tap[:, None, :, None, :, None] * by_tap[None, :, None, :, None, :]
    stencil = stencil.reshape(4, 9, 3, 3).repeat(cout, 1, 1, 1)  # group o -> phases o * 4 + p
    return per_tap, stencil


def tap_first_phases(x: Tensor, per_tap: Tensor, stencil: Tensor, groups: int) -> Tensor:
    """The 4 Cout phase maps from the per-tap 1x1 conv and the stencil, in row chunks.

    The 9 Cout tap maps are 2.25x the size of the result; chunks of rows (each with the one
    row of context the stencil needs) keep them from adding to the memory peak on large
    images.
    """
    b, _, h, w = x.shape
    rows = max(1, _TAP_CHUNK_ELEMENTS // max(1, b * per_tap.shape[0] * w))
    if rows >= h:
        return F.conv2d(F.conv2d(x, per_tap), stencil, padding=1, groups=groups)
    out = torch.empty((b, stencil.shape[0], h, w), dtype=x.dtype, device=x.device, memory_format=memory_format_of(x))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        lo, hi = max(0, r0 - 1), min(h, r1 + 1)
        # The stencil's zero padding is the image border's only where the chunk has no halo
        # row on that side; elsewhere the padded rows' outputs are cut off.
        phases = F.conv2d(F.conv2d(x[..., lo:hi, :], per_tap), stencil, padding=1, groups=groups)
        out[..., r0:r1, :] = phases[..., r0 - lo : r1 - lo, :]
    return out


def fold_batch_norm(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d, out_dim: int) -> tuple[Tensor, Tensor]:
    """(weight, bias) of a conv whose output an eval-mode batch norm then scales and shifts."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    shift = bn.bias - bn.running_mean * scale
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale.view(shape), shift


def memory_format_of(x: Tensor) -> torch.memory_format:
    """channels_last for NHWC activations, else contiguous."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


class FastDecoder:
    """``fast(decoder_input, t, features)`` -> the logits ``decoder(decoder_input, t, features)``
    gives, for inference (no autograd; batch norms as in eval mode).

    The pipeline builds one per network and calls :meth:`prepare` before each image's encoder
    runs, so the derived weights exist before the large temporaries of the first step:
    long-lived tensors allocated amid them split the freed memory that the allocator keeps,
    and later steps then grow the heap (a ViT-S predict at 1024², 10 steps, peaked at 985-997
    MiB so and at 947-984 MiB with the weights made first).
    """

    def __init__(self, decoder: DUNet, options: InferenceOptions) -> None:
        self.decoder = decoder
        self.options = options
        self._cache: dict[tuple[int, str], tuple[tuple, tuple[Tensor, ...]]] = {}

    def memory_format(self, device: torch.device) -> torch.memory_format:
        return torch.channels_last if self.options.channels_last and device.type == "cpu" else torch.contiguous_format

    def prepare(self) -> None:
        """Derive every weight the steps use now (see the class docstring)."""
        device = next(self.decoder.parameters()).device
        fmt = self.memory_format(device)
        for blk in self._blocks():
            self._block_weights(blk, fmt)
            if blk.up and self.options.fused_upsample:
                self._phase_weights(blk, fmt)
        self._head_weights(self.decoder.matting_head, fmt)

    @torch.no_grad()
    def __call__(self, decoder_input: Tensor, t: Tensor, features: Tensor) -> Tensor:
        dec = self.decoder
        fmt = self.memory_format(decoder_input.device)
        x = decoder_input.contiguous(memory_format=fmt)
        features = features.contiguous(memory_format=fmt)
        emb = dec.time_embed(timestep_embedding(t, dec.config.model_channels).to(x.dtype))
        skips = []
        for blk in dec.down_blks:
            x = self._block(blk, x, emb, fmt)
            skips.append(x)
        x = self._block(dec.mid_blk, features, emb, fmt)
        n_tail = min(_TAIL_BLOCKS, len(dec.up_blks))
        for blk in dec.up_blks[: len(dec.up_blks) - n_tail]:
            x = self._block(blk, torch.cat([x, skips.pop()], dim=1), emb, fmt)
        tail_skips = skips[::-1]  # finest last, in the order the tail blocks take them
        del skips
        scale = 2**n_tail
        h_out, w_out = x.shape[-2] * scale, x.shape[-1] * scale
        band = self._band_pixels(x.shape[0], w_out, x)
        if band is None or x.shape[0] * h_out * w_out <= band:
            return self._tail(x, tail_skips, emb, fmt)
        rows = max(scale, band // (x.shape[0] * w_out) // scale * scale)
        bands = []
        for top in range(0, h_out, rows):
            bottom = min(h_out, top + rows)
            r0 = max(0, top // scale - _TAIL_HALO)
            r1 = min(x.shape[-2], bottom // scale + _TAIL_HALO)
            band_skips = [s[..., r0 * 2**k : r1 * 2**k, :] for k, s in enumerate(tail_skips)]
            y = self._tail(x[..., r0:r1, :], band_skips, emb, fmt)
            bands.append(y[..., top - r0 * scale : bottom - r0 * scale, :])
        return torch.cat(bands, dim=-2)

    # -- the pieces ---------------------------------------------------------------------------
    def _band_pixels(self, batch: int, width: int, x: Tensor) -> int | None:
        band = self.options.band_pixels
        if band is None:
            return None
        if _half_precision_autocast(x.device.type):
            band *= 2
        return max(band, self.options.min_band_rows * batch * width)

    def _tail(self, x: Tensor, skips: list[Tensor], emb: Tensor, fmt: torch.memory_format) -> Tensor:
        ups = self.decoder.up_blks
        for blk, skip in zip(ups[len(ups) - len(skips) :], skips, strict=True):
            x = self._block(blk, torch.cat([x, skip], dim=1), emb, fmt)
        return self._head(self.decoder.matting_head, x, fmt)

    def _block(self, blk: DUNetBlock, x: Tensor, emb: Tensor, fmt: torch.memory_format) -> Tensor:
        w1, b1, w2, b2, w_short = self._block_weights(blk, fmt)
        shift = blk.emb_layers(emb)[:, :, None, None]
        if blk.up:
            out = F.conv_transpose2d(x, w1, b1, stride=2, padding=1)
        else:
            out = F.conv2d(x, w1, b1, stride=2, padding=1)
        if not self.options.fold_batch_norm:
            out = _eval_batch_norm(out, blk.bn1)
        out = F.relu_(out).add_(shift)
        out = F.conv2d(out, w2, b2, padding=1)
        if not self.options.fold_batch_norm:
            out = _eval_batch_norm(out, blk.bn2)
        if blk.up:
            shortcut = self._upsample(blk, x, w_short, fmt)
        else:
            shortcut = F.conv2d(x, w_short, stride=2, padding=1)
        return F.relu_(out.add_(shortcut))

    def _upsample(self, blk: DUNetBlock, x: Tensor, weight: Tensor, fmt: torch.memory_format) -> Tensor:
        """conv3x3(bilinear 2x(x)) with ``weight``; fused: from the phase weights at input size.

        Two output rows and columns at each border see the conv's zero padding and the
        upsampling's edge clamping together; they are recomputed the direct way from 2-pixel
        input strips.
        """

        def direct(z: Tensor) -> Tensor:
            return F.conv2d(F.interpolate(z, scale_factor=2.0, mode="bilinear", align_corners=False), weight, padding=1)

        if not self.options.fused_upsample or min(x.shape[-2:]) < 4:
            return direct(x)
        phases = self._phase_weights(blk, fmt)
        if len(phases) == 2:
            y = tap_first_phases(x, *phases, groups=weight.shape[0])
        else:
            y = F.conv2d(x, phases[0], padding=1)
        y = F.pixel_shuffle(y, 2)
        y[..., :2, :] = direct(x[..., :2, :])[..., :2, :]
        y[..., -2:, :] = direct(x[..., -2:, :])[..., -2:, :]
        y[..., :, :2] = direct(x[..., :, :2])[..., :, :2]
        y[..., :, -2:] = direct(x[..., :, -2:])[..., :, -2:]
        return y

    def _head(self, head: DUNetHead, x: Tensor, fmt: torch.memory_format) -> Tensor:
        w, b, w_out, b_out = self._head_weights(head, fmt)
        y = F.conv2d(x, w, b, padding=1)
        if not self.options.fold_batch_norm:
            y = _eval_batch_norm(y, head.matting_convs[1])
        return F.conv2d(F.relu_(y), w_out, b_out)

    # -- derived weights ------------------------------------------------------------------------
    def _derived(self, module: nn.Module, kind: str, tensors: list[Tensor | None], fmt: torch.memory_format,
                 make: Callable[[], tuple[Tensor | None, ...]]) -> tuple[Tensor, ...]:
        key = tuple((t.device, t.data_ptr(), t._version, t.dtype) for t in tensors if t is not None) + (fmt,)
        hit = self._cache.get((id(module), kind))
        if hit is not None and hit[0] == key:
            return hit[1]
        with torch.no_grad():
            made = tuple(_in_layout(t, fmt) for t in make())
        self._cache[(id(module), kind)] = (key, made)  # type: ignore[assignment]
        return made  # type: ignore[return-value]

    def _block_weights(self, blk: DUNetBlock, fmt: torch.memory_format) -> tuple[Tensor, ...]:
        """(conv1 weight, bias, conv2 weight, bias, shortcut weight), batch norms folded in if asked."""
        short = blk.upsample.conv if blk.up else blk.downsample.op
        tensors = [blk.conv1.weight, blk.conv1.bias, blk.conv2.weight, blk.conv2.bias, short.weight]
        fold = self.options.fold_batch_norm
        if fold:
            tensors += [t for bn in (blk.bn1, blk.bn2) for t in (*bn.parameters(), *bn.buffers())]

        def make() -> tuple[Tensor | None, ...]:
            if not fold:
                return blk.conv1.weight, blk.conv1.bias, blk.conv2.weight, blk.conv2.bias, short.weight
            w1, b1 = fold_batch_norm(blk.conv1.weight, blk.conv1.bias, blk.bn1, 1 if blk.up else 0)
            w2, b2 = fold_batch_norm(blk.conv2.weight, blk.conv2.bias, blk.bn2, 0)
            return w1, b1, w2, b2, short.weight

        return self._derived(blk, "block", tensors, fmt, make)

    def _phase_weights(self, blk: DUNetBlock, fmt: torch.memory_format) -> tuple[Tensor, ...]:
        """The fused upsampling's weights in the conv weight's dtype (autocast casts them as it
        casts the conv's): the phase conv, or the per-tap conv and the stencil for wide inputs."""
        w = blk.upsample.conv.weight
        tap_first = w.shape[1] >= _TAP_FIRST_MIN_CIN

        def make() -> tuple[Tensor | None, ...]:
            raw = tap_weights(w.detach()) if tap_first else (phase_weight(w.detach()),)
            return tuple(t.to(w.dtype) for t in raw)

        return self._derived(blk, "phases", [w], fmt, make)

    def _head_weights(self, head: DUNetHead, fmt: torch.memory_format) -> tuple[Tensor, ...]:
        conv, bn, out = head.matting_convs[0], head.matting_convs[1], head.matting_convs[3]
        tensors = [conv.weight, conv.bias, out.weight, out.bias]
        if self.options.fold_batch_norm:
            tensors += [*bn.parameters(), *bn.buffers()]

        def make() -> tuple[Tensor | None, ...]:
            w, b = fold_batch_norm(conv.weight, conv.bias, bn, 0) if self.options.fold_batch_norm else (conv.weight, conv.bias)
            return w, b, out.weight, out.bias

        return self._derived(head, "head", tensors, fmt, make)

    def _blocks(self) -> list[DUNetBlock]:
        dec = self.decoder
        return [*dec.down_blks, dec.mid_blk, *dec.up_blks]


def _eval_batch_norm(x: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    """``bn`` as in eval mode, whatever mode its module is in."""
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _in_layout(t: Tensor | None, fmt: torch.memory_format) -> Tensor | None:
    if t is None:  # a conv without bias
        return None
    return t.detach().contiguous(memory_format=fmt) if t.dim() == 4 else t.detach()


def _half_precision_autocast(device_type: str) -> bool:
    # Devices without autocast (meta, used for FLOP counting) raise on the query.
    if not torch.amp.is_autocast_available(device_type):
        return False
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type).itemsize == 2
