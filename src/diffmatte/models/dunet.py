"""DUNet: DiffMatte's time-conditioned U-Net decoder.

It sees the encoder's features (computed once per image), the decoder condition
(normalised RGB and one-hot trimap, both mapped through ``2c - 1``) and the noisy alpha
``x_t``, and predicts logits whose ``2 * sigmoid - 1`` is the clean-alpha estimate x0 in
(-1, 1). Only this module runs at every sampling step (Hu et al., arXiv 2312.05915, §3).

The time embedding is a sinusoid of the raw ``t`` in [0, 1] with period scale 1e4, as the
official code has it: most of its 32 channels are nearly constant over [0, 1], but the
published weights depend on exactly this embedding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DUNetConfig", "DUNet", "timestep_embedding"]


@dataclass(frozen=True)
class DUNetConfig:
    # Encoder-side widths: the 7-channel decoder input, then each down block's output.
    downsample_in: tuple[int, ...] = (7, 32, 64, 128)
    # Decoder-side widths: the encoder feature, the middle block's output, then each up block's.
    upsample_in: tuple[int, ...] = (384, 256, 128, 64, 32)
    model_channels: int = 32  # size of the sinusoidal time embedding
    emb_channels: int = 32
    head_channels: int = 16

    def __post_init__(self) -> None:
        if len(self.upsample_in) != len(self.downsample_in) + 1:
            raise ValueError(
                f"upsample_in needs one entry more than downsample_in, got {len(self.upsample_in)} "
                f"and {len(self.downsample_in)}"
            )
        if self.model_channels % 2:
            raise ValueError(f"model_channels must be even, got {self.model_channels}")
        if min(self.downsample_in + self.upsample_in) < 1:
            raise ValueError("all channel counts must be positive")

    @property
    def in_channels(self) -> int:
        return self.downsample_in[0]

    @property
    def feature_channels(self) -> int:
        return self.upsample_in[0]

    @property
    def feature_stride(self) -> int:
        """Stride of the encoder feature this decoder expects: the down blocks' plus one."""
        return 2 ** len(self.downsample_in)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of times ``t`` (B,) -> (B, dim), cosines first."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class DUNetDownsample(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.op = _conv3x3(cin, cout, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


# A 3x3 conv after a 2x bilinear upsampling (align_corners=False) equals, away from the
# border, four 3x3 convs on the input, one per output phase (row parity, column parity). Per
# axis, phase p's taps on x[i-1], x[i], x[i+1] are _PHASE_TAPS[p] @ (k0, k1, k2): upsampled
# u[2i] = x[i-1]/4 + 3x[i]/4 and u[2i+1] = 3x[i]/4 + x[i+1]/4, convolved with k.
_PHASE_TAPS = (
    ((0.75, 0.25, 0.0), (0.25, 0.75, 0.75), (0.0, 0.0, 0.25)),  # even outputs
    ((0.25, 0.0, 0.0), (0.75, 0.75, 0.25), (0.0, 0.25, 0.75)),  # odd outputs
)


def _phase_weight(weight: Tensor) -> Tensor:
    """(Cout, Cin, 3, 3) -> (4 Cout, Cin, 3, 3) in float32, ordered for ``pixel_shuffle(., 2)``.

    Products and sums only (no matmul), so bf16 autocast leaves the arithmetic in float32.
    """
    taps = torch.tensor(_PHASE_TAPS, dtype=torch.float32, device=weight.device)  # (phase, out tap, in tap)
    w = weight.float()
    rows = (w[:, :, None, None, :, :] * taps[None, None, :, :, :, None]).sum(4)  # (o, i, py, a, c)
    both = (rows[..., None, None, :] * taps[None, None, None, None]).sum(-1)  # (o, i, py, a, px, d)
    return both.permute(0, 2, 4, 1, 3, 5).reshape(-1, w.shape[1], 3, 3)


def _tap_weights(weight: Tensor) -> tuple[Tensor, Tensor]:
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


class DUNetUpsample(nn.Module):
    """conv3x3(bilinear 2x upsample(x)).

    At inference the upsampled map (Cin channels at 4x the pixels: the largest tensor of a
    decoder step) is never built: one conv to 4 Cout channels at the input resolution and a
    pixel shuffle give the same values (to float rounding) with the same arithmetic. Two
    output rows and columns at each border see the conv's zero padding and the upsampling's
    edge clamping together; they are recomputed the direct way from 2-pixel input strips.
    ``fused = False`` always takes the direct way.

    With ``tap_first`` (wide inputs), the channel mixing is done once per tap instead of once
    per phase and tap: a 1x1 conv to 9 Cout maps (a quarter of the phase conv's arithmetic),
    then a fixed grouped 3x3 stencil to the 4 phases. The stencil costs 36 / Cin of the 1x1
    conv, and grouped convs run far below GEMM speed, so it only pays for wide inputs.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv3x3(cin, cout)
        self.fused = True
        self.tap_first = cin >= _TAP_FIRST_MIN_CIN
        # Phase weights are derived from conv.weight, which changes only in training and on
        # loading; kept between decoder steps, keyed by what would make them stale.
        self._phase_cache: tuple[tuple, tuple[Tensor, ...]] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.training or not self.fused or min(x.shape[-2:]) < 4:
            return self._direct(x)
        weights = self.phase_weights(_memory_format(x))
        if self.tap_first:
            y = _tap_first_phases(x, *weights, groups=self.conv.out_channels)
        else:
            y = F.conv2d(x, weights[0], padding=1)
        y = F.pixel_shuffle(y, 2)
        y[..., :2, :] = self._direct(x[..., :2, :])[..., :2, :]
        y[..., -2:, :] = self._direct(x[..., -2:, :])[..., -2:, :]
        y[..., :, :2] = self._direct(x[..., :, :2])[..., :, :2]
        y[..., :, -2:] = self._direct(x[..., :, -2:])[..., :, -2:]
        return y

    def phase_weights(self, memory_format: torch.memory_format) -> tuple[Tensor, ...]:
        """The weights of the fused path, in the conv weight's dtype (autocast casts them as it
        casts ``conv.weight``), computed once per weight version and layout."""
        w = self.conv.weight
        key = (w.device, w.data_ptr(), w._version, w.dtype, memory_format, self.tap_first)
        if self._phase_cache is None or self._phase_cache[0] != key:
            raw = _tap_weights(w.detach()) if self.tap_first else (_phase_weight(w.detach()),)
            weights = tuple(t.to(w.dtype).contiguous(memory_format=memory_format) for t in raw)
            self._phase_cache = (key, weights)
        return self._phase_cache[1]

    def _direct(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))


def _memory_format(x: Tensor) -> torch.memory_format:
    """channels_last for NHWC activations (the decoder's layout on CPU), else contiguous."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def _tap_first_phases(x: Tensor, per_tap: Tensor, stencil: Tensor, groups: int) -> Tensor:
    """The 4 Cout phase maps from the per-tap 1x1 conv and the stencil, in row chunks.

    The 9 Cout tap maps are 2.25x the size of the result; chunks of rows (each with the one
    row of context the stencil needs) keep them from adding to the memory peak on large
    images.
    """
    b, _, h, w = x.shape
    rows = max(1, _TAP_CHUNK_ELEMENTS // max(1, b * per_tap.shape[0] * w))
    if rows >= h:
        return F.conv2d(F.conv2d(x, per_tap), stencil, padding=1, groups=groups)
    out = torch.empty((b, stencil.shape[0], h, w), dtype=x.dtype, device=x.device, memory_format=_memory_format(x))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        lo, hi = max(0, r0 - 1), min(h, r1 + 1)
        # The stencil's zero padding is the image border's only where the chunk has no halo
        # row on that side; elsewhere the padded rows' outputs are cut off.
        phases = F.conv2d(F.conv2d(x[..., lo:hi, :], per_tap), stencil, padding=1, groups=groups)
        out[..., r0:r1, :] = phases[..., r0 - lo : r1 - lo, :]
    return out


def _fold_batch_norm(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d, out_dim: int) -> tuple[Tensor, Tensor]:
    """(weight, bias) of a conv whose output an eval-mode batch norm then scales and shifts."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    shift = bn.bias - bn.running_mean * scale
    if bias is not None:
        shift = shift + bias * scale
    return (weight * scale.view(shape)).contiguous(memory_format=_memory_format(weight)), shift


class _FoldedBatchNorm:
    """Convs with their following eval-mode batch norms folded in, for inference without
    autograd: the norms' passes over the maps (3% of a decoder step) and their outputs go.
    Kept between steps, keyed by the parameters' and buffers' storage and version; dropped by
    every training-mode forward, whose running-statistics updates leave the version as it is."""

    def __init__(self) -> None:
        self._cache: tuple[tuple, tuple[Tensor, ...]] | None = None

    def forget(self) -> None:
        self._cache = None

    def get(self, pairs: list[tuple[nn.Module, nn.BatchNorm2d]]) -> tuple[Tensor, ...]:
        tensors = [t for conv, bn in pairs for t in (*conv.parameters(), *bn.parameters(), *bn.buffers())]
        key = tuple((t.device, t.data_ptr(), t._version, t.dtype) for t in tensors)
        key += tuple(_memory_format(conv.weight) for conv, _ in pairs)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                folded = tuple(
                    t
                    for conv, bn in pairs
                    for t in _fold_batch_norm(conv.weight, conv.bias, bn, 1 if isinstance(conv, nn.ConvTranspose2d) else 0)
                )
            self._cache = (key, folded)
        return self._cache[1]


class DUNetBlock(nn.Module):
    """Residual block that halves (down) or doubles (up) the resolution, with a time shift."""

    def __init__(self, cin: int, cout: int, emb_channels: int, up: bool) -> None:
        super().__init__()
        if up:
            self.conv1: nn.Module = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)
            self.upsample = DUNetUpsample(cin, cout)
        else:
            self.conv1 = _conv3x3(cin, cout, stride=2)
            self.downsample = DUNetDownsample(cin, cout)
        self.up = up
        self.bn1 = nn.BatchNorm2d(cout)
        self.emb_layers = nn.Sequential(nn.Linear(emb_channels, cout), nn.ReLU())
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.fold_batch_norm = True
        self._folded = _FoldedBatchNorm()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        # Without autograd, work in place: full-resolution maps are the memory peak.
        inplace = not torch.is_grad_enabled()
        shift = self.emb_layers(emb)[:, :, None, None]
        if inplace and not self.training and self.fold_batch_norm:
            w1, b1, w2, b2 = self.folded_weights()
            conv1 = F.conv_transpose2d(x, w1, b1, stride=2, padding=1) if self.up else F.conv2d(x, w1, b1, stride=2, padding=1)
            out = F.relu_(conv1).add_(shift)
            out = F.conv2d(out, w2, b2, padding=1)
        else:
            if self.training:
                self._folded.forget()
            out = F.relu(self.bn1(self.conv1(x)), inplace=inplace)
            out = out.add_(shift) if inplace else out + shift
            out = self.bn2(self.conv2(out))
        shortcut = self.upsample(x) if self.up else self.downsample(x)
        out = out.add_(shortcut) if inplace else out + shortcut
        return F.relu(out, inplace=inplace)

    def folded_weights(self) -> tuple[Tensor, ...]:
        """(conv1 weight, bias, conv2 weight, bias) with bn1 and bn2 folded in."""
        return self._folded.get([(self.conv1, self.bn1), (self.conv2, self.bn2)])


class DUNetHead(nn.Module):
    def __init__(self, cin: int, mid: int) -> None:
        super().__init__()
        self.matting_convs = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, 1, 1),
        )
        self.fold_batch_norm = True
        self._folded = _FoldedBatchNorm()

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() or self.training or not self.fold_batch_norm:
            if self.training:
                self._folded.forget()
            return self.matting_convs(x)
        w, b = self.folded_weights()
        return self.matting_convs[3](F.relu_(F.conv2d(x, w, b, padding=1)))

    def folded_weights(self) -> tuple[Tensor, ...]:
        """The 3x3 conv's (weight, bias) with the batch norm folded in."""
        conv, bn = self.matting_convs[0], self.matting_convs[1]
        return self._folded.get([(conv, bn)])


class DUNet(nn.Module):
    """forward(decoder_input, t, features) -> logits (B, 1, H, W); x0 = 2 * sigmoid(logits) - 1.

    ``decoder_input`` is (B, downsample_in[0], H, W) with H, W multiples of the feature
    stride, ``t`` is (B,) in [0, 1], ``features`` is (B, upsample_in[0], H / s, W / s).
    The step-independent part (the image/trimap condition) enters only through the first
    down block together with x_t, so nothing can be cached across steps without changing
    the network.
    """

    def __init__(self, config: DUNetConfig) -> None:
        super().__init__()
        self.config = config
        down, upw = config.downsample_in, config.upsample_in
        e = config.emb_channels
        self.time_embed = nn.Sequential(nn.Linear(config.model_channels, e), nn.ReLU(), nn.Linear(e, e))
        self.down_blks = nn.ModuleList(DUNetBlock(down[i], down[i + 1], e, up=False) for i in range(len(down) - 1))
        self.mid_blk = DUNetBlock(upw[0], upw[1], e, up=True)
        self.up_blks = nn.ModuleList(
            DUNetBlock(upw[i + 1] + down[-(i + 1)], upw[i + 2], e, up=True) for i in range(len(down) - 1)
        )
        self.matting_head = DUNetHead(upw[-1], config.head_channels)

    def forward(
        self, decoder_input: Tensor, t: Tensor, features: Tensor, max_band_pixels: int | None = None
    ) -> Tensor:
        """Logits (B, 1, H, W).

        ``max_band_pixels`` bounds memory: the two finest up blocks and the head (most of
        the memory and half the arithmetic) then run in horizontal bands of at most that
        many output pixels, each with a halo of rows that is cropped off again. Eval-mode
        batch norm is per pixel, so the result equals the unbanded one.
        """
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(decoder_input.dtype))
        skips = []
        x = decoder_input
        for blk in self.down_blks:
            x = blk(x, emb)
            skips.append(x)
        x = self.mid_blk(features, emb)
        n_tail = min(_TAIL_BLOCKS, len(self.up_blks))
        for blk in self.up_blks[: len(self.up_blks) - n_tail]:
            x = blk(torch.cat([x, skips.pop()], dim=1), emb)
        tail_skips = skips[::-1]  # finest last, in the order the tail blocks take them
        del skips
        scale = 2**n_tail
        h_out, w_out = x.shape[-2] * scale, x.shape[-1] * scale
        if max_band_pixels is None or x.shape[0] * h_out * w_out <= max_band_pixels:
            return self._tail(x, tail_skips, emb)
        if self.training:
            raise ValueError("banded decoding is for inference: training-mode batch norm is not per pixel")
        rows = max(scale, max_band_pixels // (x.shape[0] * w_out) // scale * scale)
        bands = []
        for top in range(0, h_out, rows):
            bottom = min(h_out, top + rows)
            r0 = max(0, top // scale - _TAIL_HALO)
            r1 = min(x.shape[-2], bottom // scale + _TAIL_HALO)
            band_skips = [s[..., r0 * 2**k : r1 * 2**k, :] for k, s in enumerate(tail_skips)]
            y = self._tail(x[..., r0:r1, :], band_skips, emb)
            bands.append(y[..., top - r0 * scale : bottom - r0 * scale, :])
        return torch.cat(bands, dim=-2)

    def prepare_inference(self, memory_format: torch.memory_format = torch.contiguous_format) -> None:
        """Compute the up blocks' fused-path weights and the folded batch norms now rather than
        inside the first step.

        Long-lived tensors allocated amid a step's large temporaries split the freed memory
        that the allocator keeps, and later steps then grow the heap: a ViT-S predict at
        1024², 10 steps, peaked at 985-997 MiB so and at 947-984 MiB (median 964) with the
        weights made before the encoder runs.
        """
        for m in self.modules():
            if isinstance(m, DUNetUpsample) and m.fused:
                m.phase_weights(memory_format)
            if isinstance(m, (DUNetBlock, DUNetHead)) and m.fold_batch_norm:
                m.folded_weights()

    def _tail(self, x: Tensor, skips: list[Tensor], emb: Tensor) -> Tensor:
        for blk, skip in zip(self.up_blks[len(self.up_blks) - len(skips) :], skips, strict=True):
            x = blk(torch.cat([x, skip], dim=1), emb)
        return self.matting_head(x)


# Inputs at least this wide take the tap-first upsampling (DUNetUpsample); measured on
# 2 cores, fp32 and bf16: 17-21% off a ViT-S/Res34 decoder step at 1024^2; narrower inputs
# (lite0's 96 and 48) lose with it (docs/performance.md).
_TAP_FIRST_MIN_CIN = 128
# Elements of tap maps computed at once (32 MiB in fp32). Peak RSS of a ViT-S predict at
# 2048^2 (1 step): 2295 MiB with this, 2479 with 2^25, 2358 unchunked; the allocator keeps
# freed memory, so block sizes matter as much as totals. The halo rows cost ~4% of the 1x1
# work of the blocks that are chunked.
_TAP_CHUNK_ELEMENTS = 1 << 23

# The tail run in bands: the up blocks writing stride 2 and stride 1.
_TAIL_BLOCKS = 2
# Rows of halo at the tail's input resolution (stride 4). A kept output row depends on
# input rows within 1.75 of it (transposed conv and bilinear shortcut, then 3x3 convs at
# strides 2 and 1), so 2 rows are exact (measured: 1 is off by 3e-3, 2..6 agree to 1e-7).
# Halo rows are recomputed per band: a ViT-S step at 2048^2 (bands of 2^17 pixels, 16 input
# rows) took 8.79-8.86 s with 3 rows and 8.22-8.43 s with 2.
_TAIL_HALO = 2
