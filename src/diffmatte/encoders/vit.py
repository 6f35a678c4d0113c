"""Plain ViT matting encoder (ViTDet style), as used by ViTMatte and DiffMatte.

DiffMatte (Hu et al., arXiv 2312.05915) takes this encoder unchanged from ViTMatte
(Yao et al., arXiv 2305.15272): a ViT without class token or final norm, window attention
in most blocks, global attention in a few, decomposed relative positions in every block,
and a residual convolution block after each global block. Input: ImageNet-normalised RGB
plus the raw trimap (values 0 / 0.5 / 1) as a fourth channel.

Global attention is computed in chunks of query rows so that its memory grows with
``N * chunk`` rather than ``N**2`` (the official code needs ~10 GiB per block at
2880x1920); the arithmetic is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ViTConfig", "ViTEncoder"]


@dataclass(frozen=True)
class ViTConfig:
    in_channels: int = 4  # RGB + raw trimap
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    patch_size: int = 16
    # Sizes the global blocks' relative-position tables: (2 * img_size / patch_size - 1) rows.
    img_size: int = 512
    window_size: int = 14
    global_blocks: tuple[int, ...] = (2, 5, 8, 11)
    # The pretrained absolute position embedding is a 14x14 grid plus a class-token slot.
    pretrain_grid: int = 14
    drop_path_rate: float = 0.0
    # Largest attention bias (batch * heads * queries * keys elements) built at once:
    # global attention runs in chunks of query rows under this budget (2**23 = 32 MiB fp32),
    # but never fewer than _MIN_CHUNK_QUERIES queries per chunk.
    attn_max_bias_elements: int = 2**23
    # Without autograd on CPU, a query chunk whose bias would exceed 16 MiB attends to whole
    # rows of keys at a time, at most this many bytes of bias per image and head (512 KiB: a
    # core's L2 cache), and the blocks are merged by log-sum-exp: the bias is then written and
    # read while in cache.
    attn_max_key_block_bytes: int = 2**19

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.depth < 1 or self.patch_size < 1 or self.window_size < 1:
            raise ValueError("depth, patch_size and window_size must be positive")
        if 32 % self.patch_size:
            raise ValueError(f"patch_size must divide 32 (inputs are padded to 32), got {self.patch_size}")
        if any(not 0 <= i < self.depth for i in self.global_blocks):
            raise ValueError(f"global_blocks {self.global_blocks} must index blocks 0..{self.depth - 1}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} must be a multiple of patch_size {self.patch_size}")
        if self.attn_max_bias_elements < 1 or self.attn_max_key_block_bytes < 1:
            raise ValueError("attn_max_bias_elements and attn_max_key_block_bytes must be positive")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


def _resize_rel_pos(rel_pos: Tensor, length: int) -> Tensor:
    """The (length, head_dim) table, linearly resampled when the stored one differs."""
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(rel_pos.t().unsqueeze(0), size=length, mode="linear")  # (1, hd, length)
    return resized[0].t()


def _rel_pos_embeddings(q_size: int, k_size: int, rel_pos: Tensor) -> Tensor:
    """Relative-position vectors for every (query, key) coordinate pair: (q_size, k_size, hd)."""
    table = _resize_rel_pos(rel_pos, 2 * max(q_size, k_size) - 1)
    if q_size == k_size:
        # Self-attention (every use here): the same indices in integer arithmetic, which the
        # ONNX exporter can trace for symbolic sizes (it cannot multiply by a symbolic float).
        steps = torch.arange(q_size, device=rel_pos.device)
        return table[steps[:, None] - steps[None, :] + (k_size - 1)]
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    index = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[index.long()]


class ViTDropPath(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


# Below about 256 queries per chunk the per-chunk passes over K and V dominate: at 2048x2048
# chunks of 128 queries made the encoder 30% slower than chunks of 256 (2-core x86 CPU).
_MIN_CHUNK_QUERIES = 256
# Key blocks pay where a query chunk's whole bias would not stay in the last-level cache: one
# ViT-S global block at 2048^2 took 5.7-6.6 s so and 3.8-4.4 s in key blocks (fp32; bf16 4.6-4.9
# -> 3.7 s), at 1024^2 fp32 (a 31 MiB bias) 0.29-0.30 -> 0.27 s; a 16 MiB bf16 bias (1024^2) was
# 0.24 s whole and 0.27-0.33 s in blocks, and windows' small biases lost too (0.06 -> 0.09 s).
_KEY_BLOCKS_ABOVE_BYTES = 2**24


class ViTAttention(nn.Module):
    """Multi-head self-attention with decomposed relative positions (Li et al., MViTv2)."""

    def __init__(self, config: ViTConfig, rel_pos_size: int) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.max_bias_elements = config.attn_max_bias_elements
        self.max_key_block_bytes = config.attn_max_key_block_bytes
        self.key_blocks_above_bytes = _KEY_BLOCKS_ABOVE_BYTES
        self.min_chunk_queries = _MIN_CHUNK_QUERIES
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim, bias=True)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dim))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        n = h * w
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # Contiguous once here, or SDPA copies the strided k and v again for every chunk.
        q, k, v = (t.contiguous() for t in qkv.unbind(0))  # each (B, nh, N, hd)
        rh = _rel_pos_embeddings(h, h, self.rel_pos_h)  # (h, h, hd)
        rw = _rel_pos_embeddings(w, w, self.rel_pos_w)  # (w, w, hd)
        # Chunk over whole rows of queries so each chunk's bias is (rows*w, N) instead of (N, N).
        rows = max(-(-self.min_chunk_queries // w), self.max_bias_elements // (b * self.num_heads * w * n))
        out = torch.empty_like(q)
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            qc = q[:, :, r0 * w : r1 * w]  # (B, nh, m, hd)
            qg = qc.reshape(b, self.num_heads, r1 - r0, w, self.head_dim)
            # The relative terms use the unscaled q (as the official code does).
            rel_h = torch.einsum("bnyxc,ykc->bnyxk", qg, rh[r0:r1])  # (B, nh, rows, w, h)
            rel_w = torch.einsum("bnyxc,xkc->bnyxk", qg, rw)  # (B, nh, rows, w, w)
            itemsize = qc.element_size()
            key_rows = max(1, self.max_key_block_bytes // (qc.shape[2] * w * itemsize))
            chunk_bias_bytes = b * self.num_heads * qc.shape[2] * n * itemsize
            if chunk_bias_bytes > self.key_blocks_above_bytes and key_rows < h and _key_blocks_supported(qc):
                out[:, :, r0 * w : r1 * w] = _attention_in_key_blocks(qc, k, v, rel_h, rel_w, key_rows)
                continue
            if torch.is_grad_enabled():
                bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(b, self.num_heads, qc.shape[2], n)
            else:
                # Summed into a contiguous buffer: a plain `+` keeps the einsum's strides and the
                # reshape would then copy the largest tensor of the block (out= has no autograd).
                bias = qc.new_empty(b, self.num_heads, r1 - r0, w, h, w)
                torch.add(rel_h[..., :, None], rel_w[..., None, :], out=bias)
                bias = bias.view(b, self.num_heads, qc.shape[2], n)
            out[:, :, r0 * w : r1 * w] = F.scaled_dot_product_attention(qc, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(b, h, w, c)
        return self.proj(out)


# The CPU flash kernel behind F.scaled_dot_product_attention, which also returns the
# log-sum-exp of each query's scores: what merging attention over key blocks needs.
_flash_attention_with_lse = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _key_blocks_supported(q: Tensor) -> bool:
    return (
        _flash_attention_with_lse is not None
        and not torch.is_grad_enabled()
        and q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.bfloat16)
    )


def _attention_in_key_blocks(q: Tensor, k: Tensor, v: Tensor, rel_h: Tensor, rel_w: Tensor, key_rows: int) -> Tensor:
    """Attention of one query chunk over all keys, ``key_rows`` rows of keys at a time.

    The whole-row bias of a large image is written once and read once from memory (at 2048^2
    that traffic was a third of a global block's time); per key block it stays in cache. The
    partial results are merged by their log-sum-exps, in float32.
    ``q``: (B, nh, rows * w, hd); ``k``, ``v``: (B, nh, h * w, hd); ``rel_h``: (B, nh, rows, w, h);
    ``rel_w``: (B, nh, rows, w, w).
    """
    b, nh, rows, w, h = rel_h.shape
    m = rows * w
    block = q.new_empty(b * nh * m * key_rows * w)
    out = lse = None
    for k0 in range(0, h, key_rows):
        k1 = min(h, k0 + key_rows)
        bias = block[: b * nh * m * (k1 - k0) * w].view(b, nh, rows, w, k1 - k0, w)
        torch.add(rel_h[..., k0:k1, None], rel_w[..., None, :], out=bias)
        keys = slice(k0 * w, k1 * w)
        part, part_lse = _flash_attention_with_lse(q, k[:, :, keys], v[:, :, keys], attn_mask=bias.view(b, nh, m, -1))
        part, part_lse = part.float(), part_lse.float()
        if out is None:
            out, lse = part, part_lse
            continue
        merged = torch.logaddexp(lse, part_lse)
        out.mul_(torch.exp(lse - merged)[..., None]).add_(part.mul_(torch.exp(part_lse - merged)[..., None]))
        lse = merged
    assert out is not None
    return out.to(q.dtype)


class ViTLayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW map (detectron2's channels-first LayerNorm)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class ViTResidualBlock(nn.Module):
    """Bottleneck conv block added after global blocks: 1x1 -> 3x3 -> 1x1, LN + GELU between."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.norm1 = ViTLayerNorm2d(mid)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.norm2 = ViTLayerNorm2d(mid)
        self.act2 = nn.GELU()
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=False)
        self.norm3 = ViTLayerNorm2d(channels)
        nn.init.zeros_(self.norm3.weight)  # starts as identity, like ViTDet

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.act2(self.norm2(self.conv2(out)))
        return x + self.norm3(self.conv3(out))


class ViTMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _window_partition(x: Tensor, window: int) -> tuple[Tensor, int, int]:
    """(B, H, W, C) -> (B * nWin, window, window, C), zero-padding H and W up to the window."""
    b, h, w, c = x.shape
    pad_h, pad_w = (-h) % window, (-w) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c), hp, wp


def _window_unpartition(windows: Tensor, window: int, hp: int, wp: int, h: int, w: int) -> Tensor:
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.view(b, hp // window, wp // window, window, window, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, -1)[:, :h, :w].contiguous()


class ViTBlock(nn.Module):
    def __init__(self, config: ViTConfig, index: int, drop_path: float) -> None:
        super().__init__()
        self.is_global = index in config.global_blocks
        self.window_size = 0 if self.is_global else config.window_size
        rel_pos_size = config.img_size // config.patch_size if self.is_global else config.window_size
        self.norm1 = nn.LayerNorm(config.embed_dim, eps=1e-6)
        self.attn = ViTAttention(config, rel_pos_size)
        self.drop_path = ViTDropPath(drop_path)
        self.norm2 = nn.LayerNorm(config.embed_dim, eps=1e-6)
        self.mlp = ViTMlp(config.embed_dim, int(config.embed_dim * config.mlp_ratio))
        self.residual = ViTResidualBlock(config.embed_dim) if self.is_global else None

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size:
            h, w = x.shape[1], x.shape[2]
            windows, hp, wp = _window_partition(x, self.window_size)
            x = _window_unpartition(self.attn(windows), self.window_size, hp, wp, h, w)
        else:
            x = self.attn(x)
        x = shortcut + self.drop_path(x)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if self.residual is not None:
            x = self.residual(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x


class ViTPatchEmbed(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.embed_dim, config.patch_size, stride=config.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, H/p, W/p, C)


class ViTEncoder(nn.Module):
    """ViT matting encoder: (B, 4, H, W) -> (B, embed_dim, H/16, W/16)."""

    trimap_encoding = "raw"

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.embed_dim
        self.stride = config.patch_size
        self.patch_embed = ViTPatchEmbed(config)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.pretrain_grid**2 + 1, config.embed_dim))
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()
        self.blocks = nn.ModuleList(ViTBlock(config, i, rates[i]) for i in range(config.depth))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def _position_embedding(self, h: int, w: int) -> Tensor:
        grid = self.config.pretrain_grid
        pos = self.pos_embed[:, 1:]  # the class-token slot is unused
        if (h, w) == (grid, grid):
            return pos.reshape(1, h, w, -1)
        pos = pos.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"ViT encoder expects {self.in_channels} input channels, got {x.shape[1]}")
        x = self.patch_embed(x)
        x = x + self._position_embedding(x.shape[1], x.shape[2])
        for block in self.blocks:
            x = block(x)
        return x.permute(0, 3, 1, 2)
