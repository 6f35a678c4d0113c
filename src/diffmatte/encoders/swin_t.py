"""Swin-T encoder with prior tokens, as used by DiffMatte's Swin-T model.

DiffMatte (Hu et al., "Diffusion for Natural Image Matting", arXiv 2312.05915) reuses the
PAST encoder of MatteFormer (Park et al., "MatteFormer: Transformer-Based Image Matting via
Prior-Tokens", CVPR 2022): a Swin-T whose window attention additionally attends to
"prior tokens", the masked means of the block input over the trimap's three regions.

Input: ``(B, 6, H, W)`` = ImageNet-normalised RGB ⊕ one-hot trimap [bg, unknown, fg], with
H and W multiples of 32. Output: the stage-4 map ``(B, 768, H/32, W/32)``.

Parity notes (behaviour of the official code that the weights depend on, kept on purpose):

* Feature maps smaller than the window are zero-padded up to the window; the window is not
  shrunk and the odd blocks still shift (original Swin would do neither).
* The prior triple order is [unknown, trimap channel 0, trimap channel 2], i.e.
  [unknown, background, foreground]; the official code calls the last two "fg"/"bg".
* Block ``b`` of a stage attends to ``b + 1`` prior triples: the ``b`` triples carried from
  the previous block plus the one computed from its own input. Prior tokens are only keys
  and values for the window queries; they are updated by v-projection → ``proj`` → residual
  and the block's MLP, without attending to anything.
* The bias-table rows for prior columns start at ``(2·window − 1)²``; the official code
  hard-codes 169, which is the same value for the only supported window (7).

Not kept: the official ``.squeeze()`` on the prior outputs drops the batch dimension when
B = 1 (harmless in eval, but in training it turns drop-path into a per-channel mask);
here drop-path is always per sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SwinTConfig", "SwinTEncoder"]

# Added to the denominator of the masked means so that an empty trimap region gives 0.
_PRIOR_EPS = 1e-9
# Logit offset for pairs of tokens from different regions of a shifted window.
_SHIFT_MASK_VALUE = -100.0
# Number of prior tokens per triple: unknown, background, foreground.
_PRIORS_PER_SET = 3


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SwinTConfig:
    """Hyper-parameters of the Swin-T prior-token encoder (defaults = DiffMatte's Swin-T)."""

    # image channels + 3; the last three channels are the one-hot trimap [bg, unknown, fg]
    in_channels: int = 6
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.3  # stochastic depth, active only in training
    patch_size: int = 4

    def __post_init__(self) -> None:
        # Frozen and hashable: sequences are normalised to tuples.
        for name in ("depths", "num_heads"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"{name} must be a sequence of positive ints, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if not _is_int(self.in_channels) or self.in_channels < _PRIORS_PER_SET + 1:
            raise ValueError(
                f"in_channels must be an int >= 4 (image channels + 3 one-hot trimap channels), "
                f"got {self.in_channels!r}"
            )
        if not _is_int(self.embed_dim) or self.embed_dim < 1:
            raise ValueError(f"embed_dim must be a positive int, got {self.embed_dim!r}")
        if not self.depths or not all(_is_int(d) and d >= 1 for d in self.depths):
            raise ValueError(f"depths must be a non-empty tuple of positive ints, got {self.depths!r}")
        if len(self.num_heads) != len(self.depths) or not all(_is_int(h) and h >= 1 for h in self.num_heads):
            raise ValueError(
                f"num_heads must hold one positive int per stage ({len(self.depths)}), got {self.num_heads!r}"
            )
        for stage, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**stage
            if dim % heads:
                raise ValueError(f"stage {stage}: dim {dim} is not divisible by num_heads {heads}")
        if not _is_int(self.window_size) or self.window_size < 2:
            raise ValueError(f"window_size must be an int >= 2, got {self.window_size!r}")
        if not isinstance(self.mlp_ratio, (int, float)) or isinstance(self.mlp_ratio, bool) or not (
            int(self.embed_dim * self.mlp_ratio) >= 1
        ):
            raise ValueError(f"mlp_ratio must be a positive number, got {self.mlp_ratio!r}")
        if not isinstance(self.drop_path_rate, (int, float)) or not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate!r}")
        if not _is_int(self.patch_size) or self.patch_size < 1:
            raise ValueError(f"patch_size must be a positive int, got {self.patch_size!r}")

    @property
    def stride(self) -> int:
        return self.patch_size * 2 ** (len(self.depths) - 1)

    @property
    def out_channels(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


def _drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: drop the whole residual branch per sample (dim 0)."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask / keep


def _relative_position_index(window_size: int, num_prior_tokens: int) -> Tensor:
    """Bias-table row for every (query, key) pair of a window with appended prior tokens.

    Window keys use the usual Swin relative-offset row; prior key j uses row
    (2·ws − 1)² + j for every query, i.e. one learned bias per prior token and head.
    """
    ws = window_size
    grid = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    coords = torch.stack(grid).flatten(1)  # (2, ws²)
    offsets = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # shifted to be >= 0
    spatial = offsets[0] * (2 * ws - 1) + offsets[1]
    prior = (2 * ws - 1) ** 2 + torch.arange(num_prior_tokens)
    return torch.cat([spatial, prior.expand(ws * ws, -1)], dim=1).to(torch.int64)


def _shift_mask(height: int, width: int, window_size: int, shift: int, device: torch.device) -> Tensor:
    """Additive mask (num_windows, ws², ws²) that keeps a shifted window from mixing the
    regions that the cyclic roll brought together; height/width are already window-padded."""
    labels = torch.zeros(height, width, device=device)
    bounds = ((0, -window_size), (-window_size, -shift), (-shift, None))
    region = 0
    for h0, h1 in bounds:
        for w0, w1 in bounds:
            labels[h0:h1, w0:w1] = region
            region += 1
    windows = _partition(labels[None, :, :, None], window_size).squeeze(-1)  # (nW, ws²)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, _SHIFT_MASK_VALUE)


def _partition(x: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (B·nW, ws², C), windows in row-major order per sample."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def _unpartition(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of `_partition`: (B·nW, ws², C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, height // window_size, width // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


class PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> tokens (B, H/p · W/p, D)."""
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        # Declared before `norm` so the state-dict order follows the official one.
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        b, _, c = x.shape
        x = x.view(b, height, width, c)
        # Concatenation order (row, col) = (0,0), (1,0), (0,1), (1,1) fixes the weight layout.
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PriorWindowAttention(nn.Module):
    """Window self-attention whose keys/values also include the prior tokens."""

    def __init__(self, dim: int, num_heads: int, window_size: int, num_prior_tokens: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.num_prior_tokens = num_prior_tokens
        num_rows = (2 * window_size - 1) ** 2 + num_prior_tokens
        self.relative_position_bias_table = nn.Parameter(torch.empty(num_rows, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", _relative_position_index(window_size, num_prior_tokens))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, windows: Tensor, priors: Tensor, shift_mask: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """windows (B·nW, ws², C) and priors (B, P, C), both already normalised;
        shift_mask (nW, ws², ws²) or None. Returns the attended windows and the projected
        prior values (B, P, C)."""
        batch, num_priors, dim = priors.shape
        if num_priors != self.num_prior_tokens:
            raise ValueError(f"expected {self.num_prior_tokens} prior tokens, got {num_priors}")
        n = windows.shape[1]
        num_windows = windows.shape[0] // batch
        heads, head_dim = self.num_heads, dim // self.num_heads

        qkv = self.qkv(windows).view(batch, num_windows, n, 3, heads, head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (B, nW, h, N, d)
        # The priors are identical for every window of a sample: project them once and
        # broadcast, instead of appending copies to each window as the official code does.
        prior_qkv = self.qkv(priors).view(batch, num_priors, 3, heads, head_dim)
        _, prior_k, prior_v = prior_qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, P, d)
        expand = (batch, num_windows, heads, num_priors, head_dim)
        k = torch.cat([k, prior_k.unsqueeze(1).expand(expand)], dim=3)
        v = torch.cat([v, prior_v.unsqueeze(1).expand(expand)], dim=3)

        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n + num_priors, heads).permute(2, 0, 1)  # (h, N, N + P)
        if shift_mask is not None:
            # Prior columns are never masked.
            bias = bias.unsqueeze(0) + F.pad(shift_mask, (0, num_priors)).unsqueeze(1)  # (nW, h, N, N+P)
            bias = bias.expand(batch, -1, -1, -1, -1).flatten(0, 1)
        # 4-D inputs let SDPA use its fused kernels (5-D falls back to the slower math path).
        # Its default scale head_dim**-0.5 equals Swin's; only the window tokens are queries.
        out = F.scaled_dot_product_attention(
            q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), attn_mask=bias.to(q.dtype)
        )  # (B·nW, h, N, d)
        out = out.transpose(1, 2).reshape(batch * num_windows, n, dim)

        prior_out = prior_v.transpose(1, 2).reshape(batch, num_priors, dim)
        return self.proj(out), self.proj(prior_out)


class PriorSwinBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        drop_path: float,
        num_prior_sets: int,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim)
        self.attn = PriorWindowAttention(dim, num_heads, window_size, _PRIORS_PER_SET * num_prior_sets)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self, x: Tensor, size: tuple[int, int], regions: Tensor, memory: Tensor, shift_mask: Optional[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """x (B, H·W, C); regions (B, 3, H·W) 0/1 masks [unknown, bg, fg]; memory (B, P−3, C)
        prior tokens carried from the previous block. Returns x and the updated (B, P, C)."""
        height, width = size
        batch, _, dim = x.shape
        ws = self.window_size

        # The new prior triple: masked means of the block input over the trimap regions.
        current = torch.bmm(regions, x) / (regions.sum(dim=-1, keepdim=True) + _PRIOR_EPS)
        memory = torch.cat([memory, current], dim=1)

        shortcut = x
        x = self.norm1(x).view(batch, height, width, dim)
        priors = self.norm1(memory)

        # Zero-pad to whole windows, also when the map is smaller than one window.
        pad_h, pad_w = (-height) % ws, (-width) % ws
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        padded_h, padded_w = height + pad_h, width + pad_w
        if self.shift_size:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows, prior_out = self.attn(_partition(x, ws), priors, shift_mask if self.shift_size else None)
        x = _unpartition(windows, ws, padded_h, padded_w)
        if self.shift_size:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = x[:, :height, :width].reshape(batch, height * width, dim)

        x = shortcut + _drop_path(x, self.drop_path, self.training)
        x = x + _drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)
        # Prior tokens share the block's weights but skip attention: value path + MLP.
        memory = memory + _drop_path(prior_out, self.drop_path, self.training)
        memory = memory + _drop_path(self.mlp(self.norm2(memory)), self.drop_path, self.training)
        return x, memory


class SwinStage(nn.Module):
    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop_paths: list[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.blocks = nn.ModuleList(
            PriorSwinBlock(
                dim,
                num_heads,
                window_size,
                shift_size=0 if i % 2 == 0 else self.shift_size,
                mlp_ratio=mlp_ratio,
                drop_path=drop_paths[i],
                num_prior_sets=i + 1,
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor, size: tuple[int, int], regions: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Runs the blocks and the optional patch merging; returns tokens and their size."""
        height, width = size
        ws = self.window_size
        padded_h, padded_w = -(-height // ws) * ws, -(-width // ws) * ws
        shift_mask = _shift_mask(padded_h, padded_w, ws, self.shift_size, x.device).to(x.dtype)
        # Each stage starts an empty prior memory; block b appends its own triple.
        memory = x.new_zeros(x.shape[0], 0, x.shape[2])
        for block in self.blocks:
            x, memory = block(x, size, regions, memory, shift_mask)
        if self.downsample is None:
            return x, size
        return self.downsample(x, height, width), (height // 2, width // 2)


class SwinTEncoder(nn.Module):
    """DiffMatte's Swin-T backbone (MatteFormer PAST encoder); returns the stage-4 map."""

    trimap_encoding = "onehot"

    def __init__(self, config: SwinTConfig) -> None:
        super().__init__()
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        self.stride = config.stride
        self.patch_embed = PatchEmbed(config.in_channels, config.embed_dim, config.patch_size)
        # Stochastic-depth rate grows linearly over all blocks of all stages.
        rates = torch.linspace(0, config.drop_path_rate, sum(config.depths)).tolist()
        self.layers = nn.ModuleList()
        start = 0
        for stage, (depth, heads) in enumerate(zip(config.depths, config.num_heads, strict=True)):
            self.layers.append(
                SwinStage(
                    dim=config.embed_dim * 2**stage,
                    depth=depth,
                    num_heads=heads,
                    window_size=config.window_size,
                    mlp_ratio=config.mlp_ratio,
                    drop_paths=rates[start : start + depth],
                    downsample=stage < len(config.depths) - 1,
                )
            )
            start += depth

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        batch, _, height, width = x.shape
        if height % self.stride or width % self.stride:
            raise ValueError(f"H and W must be multiples of {self.stride}, got {height}x{width}")
        trimap = x[:, -_PRIORS_PER_SET:]  # one-hot [bg, unknown, fg]
        tokens = self.patch_embed(x)
        scale = self.config.patch_size
        size = (height // scale, width // scale)
        for stage in self.layers:
            # Nearest downsampling by an integer factor = taking every scale-th pixel.
            # Region order [unknown, bg, fg] is the official prior-token order.
            regions = trimap[:, [1, 0, 2], ::scale, ::scale].reshape(batch, _PRIORS_PER_SET, -1)
            tokens, size = stage(tokens, size, regions.to(tokens.dtype))
            scale *= 2
        return tokens.transpose(1, 2).reshape(batch, self.out_channels, size[0], size[1])
