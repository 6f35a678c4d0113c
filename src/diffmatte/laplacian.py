"""Closed-form matting's Laplacian (Levin et al. 2008) restricted to the unknown pixels, built fast.

The fused matte (:mod:`diffmatte.fusion`) needs only the rows of the unknown pixels: the block
``L_uu`` between unknown pixels and the product ``L_uk alpha_k`` with the known ones. pymatting
builds the whole matrix in a numba kernel that a fresh process compiles or loads from its cache
first (about a second before any arithmetic). Here the same matrix comes from whole-image
array operations in PyTorch, with no JIT.

Each window ``k`` (radius ``r``, ``m = (2r+1)^2`` pixels, centres inside the image, skipped when
every pixel in it is known) adds to ``L_ij`` for ``i, j`` in the window::

    delta_ij - (1 + (I_i - mu_k)^T D_k (I_j - mu_k)) / m,   D_k = (cov_k + eps / m)^-1

Expanding the product, the sum over the windows that hold both ``i`` and ``j = i + d`` needs only
box sums of ``[1, D_k, D_k mu_k, mu_k^T D_k mu_k]`` over a rectangle of centres that depends on the
offset ``d`` alone, so each of the ``(4r+1)^2`` diagonals of the matrix is a few whole-image
products. Float64 throughout: ``D_k`` reaches ``m / eps`` in flat windows, and the expanded
terms cancel to the small entries the matrix holds.

The rows are built in horizontal strips (each with the 4r rows around it that its windows
reach), so that no array is larger than about 16 MB: glibc hands larger blocks back to the
system when they are freed, and a 0.5 MP image's dozens of such arrays then cost more in page
faults than in arithmetic (3.7 s against 0.56 s in one piece, in a process that has not called
diffmatte.runtime.keep_freed_memory; the CLI has).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

__all__ = ["unknown_system"]

# the window statistics' channels, in order: count, D (00 01 02 11 12 22), v = D mu, c = mu^T D mu
_N, _D, _V, _C = 0, slice(1, 7), slice(7, 10), 10
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


# bytes of the window statistics (11 float64 channels) per pixel, and the most a strip may hold
_STATS_BYTES = 11 * 8
_STRIP_BYTES = 16 << 20


def unknown_system(image: np.ndarray, trimap: np.ndarray, epsilon: float = 1e-7, radius: int = 1,
                   strip_rows: int | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(L_uu, L_uk @ alpha_k)`` of closed-form matting's Laplacian, equal to pymatting's ``cf_laplacian``.

    Args:
        image: (h, w, 3) float in [0, 1].
        trimap: (h, w) in {0, 0.5, 1}; 0.5 is unknown.
        strip_rows: rows built at a time; None: as many as fit in about 16 MB of statistics.

    Returns:
        ``L_uu`` as CSR over the unknown pixels in raster order, and the known pixels' part of
        each unknown row times the trimap, (n_unknown,) float64.
    """
    image, trimap = _crop_to_unknown(image, trimap, 2 * radius)
    h, w = trimap.shape
    margin = 4 * radius  # rows read diagonals up to 2r away, which read windows r further, each r tall
    if strip_rows is None:
        strip_rows = max(8 * radius, _STRIP_BYTES // (_STATS_BYTES * (w + 4 * radius)) - 2 * margin)
    unknown_all = trimap == 0.5
    n_u = int(unknown_all.sum())
    # each unknown pixel's row of L_uu over the whole image: the strips share one numbering
    index_all = np.full((h, w), -1, np.int64)
    index_all[unknown_all] = np.arange(n_u)
    matrices, known_parts = [], []
    for y0 in range(0, h, strip_rows):
        y1 = min(h, y0 + strip_rows)
        top, bottom = max(0, y0 - margin), min(h, y1 + margin)
        img = torch.from_numpy(np.ascontiguousarray(image[top:bottom], np.float64)).permute(2, 0, 1)
        tri = torch.from_numpy(np.ascontiguousarray(trimap[top:bottom], np.float64))
        unknown = tri == 0.5
        rows = torch.zeros_like(unknown)
        rows[y0 - top:y1 - top] = unknown[y0 - top:y1 - top]
        if not bool(rows.any()):
            continue
        # windows within r of a cut are wrong (half outside the strip) and read by no row built here
        stats = _window_stats(img, ~unknown, epsilon, radius)
        matrix, known_part = _assemble(_half_diagonals(stats, img, radius), tri, rows,
                                       torch.from_numpy(index_all[top:bottom]), n_u, radius)
        matrices.append(matrix)
        known_parts.append(known_part)
    if not matrices:
        return sp.csr_matrix((n_u, n_u)), np.zeros(n_u)
    return sp.vstack(matrices, format="csr"), np.concatenate(known_parts)


def _crop_to_unknown(image: np.ndarray, trimap: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """The box of the unknown pixels grown by ``span`` (2r), clipped to the image.

    Only windows that hold an unknown pixel matter, and their pixels lie within 2r of one, so the
    crop changes no entry (windows centred on the box's edge hold no unknown pixel).
    """
    ys, xs = np.nonzero(np.any(trimap == 0.5, axis=1))[0], np.nonzero(np.any(trimap == 0.5, axis=0))[0]
    if not ys.size:
        return image, trimap
    box = (slice(max(ys[0] - span, 0), ys[-1] + span + 1), slice(max(xs[0] - span, 0), xs[-1] + span + 1))
    return image[box], trimap[box]


def _half_diagonals(stats: torch.Tensor, img: torch.Tensor, radius: int) -> dict[tuple[int, int], torch.Tensor]:
    """L(i, i + d) at every pixel i, for the offsets d >= 0 in raster order (the rest by symmetry)."""
    span = 2 * radius
    _, h, w = img.shape
    pad = F.pad(img[None], (span,) * 4)[0]  # I_j for j = i + d, zero (and never weighted) outside
    padded = F.pad(stats[None], (span,) * 4)[0]
    half: dict[tuple[int, int], torch.Tensor] = {}
    for dy in range(0, span + 1):
        # centres k with |k - i| <= r and |k - (i + d)| <= r: rows i_y + [max(0, dy) - r, min(0, dy) + r],
        # likewise columns; summed rows first, then columns (separable)
        rows = sum(padded[:, span + ky:span + ky + h] for ky in range(dy - radius, radius + 1))
        for dx in range(-span if dy else 0, span + 1):
            s = sum(rows[:, :, span + kx:span + kx + w] for kx in range(max(0, dx) - radius, min(0, dx) + radius + 1))
            half[(dy, dx)] = _diagonal(s, img, pad, (dy, dx), radius)
    return half


def _assemble(half: dict[tuple[int, int], torch.Tensor], tri: torch.Tensor, rows: torch.Tensor,
              index: torch.Tensor, n_columns: int, radius: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The rows of the unknown pixels marked in ``rows`` as CSR, and their known part times the trimap.

    ``index`` holds each unknown pixel's row number in the whole matrix of ``n_columns`` (-1 for
    known pixels).
    Everything is read at (row pixel, offset) from grids padded by 2r, through flat indices: row
    i holds its neighbours i + d in raster order, so column indices ascend.
    """
    span = 2 * radius
    h, w = tri.shape
    offsets = [(dy, dx) for dy in range(-span, span + 1) for dx in range(-span, span + 1)]
    n_rows = int(rows.sum())
    unknown = index >= 0
    index_pad = F.pad(index[None], (span,) * 4, value=-1)[0].reshape(-1)
    known_pad = F.pad(torch.where(unknown, 0.0, tri)[None], (span,) * 4)[0].reshape(-1)
    cells = torch.nonzero(F.pad(rows[None], (span,) * 4)[0].reshape(-1)).squeeze(1)
    step = torch.tensor([dy * (w + 2 * span) + dx for dy, dx in offsets])
    at = cells[:, None] + step[None, :]  # (n_u, offsets): where each neighbour sits in the padded grid
    diagonals = torch.stack([F.pad(half[d][None], (span,) * 4)[0].reshape(-1) for d in half])
    # L(i, i + d) for d >= 0 is diagonal d at i; for d < 0 it is diagonal -d read at i + d (symmetry)
    which = torch.tensor([list(half).index(d if d in half else (-d[0], -d[1])) for d in offsets])
    where = torch.where(torch.tensor([d in half for d in offsets])[None, :], cells[:, None], at)
    values = diagonals.reshape(-1)[which[None, :] * diagonals.shape[1] + where]
    known_part = (values * known_pad[at]).sum(1)
    column = index_pad[at]
    keep = column >= 0  # unknown neighbours (known ones and the padding are -1)
    indptr = torch.zeros(n_rows + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(keep.sum(1), 0)
    matrix = sp.csr_matrix((values[keep].numpy(), column[keep].numpy().astype(np.int32),
                            indptr.numpy().astype(np.int32)), shape=(n_rows, n_columns))
    return matrix, known_part.numpy()


def _window_stats(img: torch.Tensor, known: torch.Tensor, epsilon: float, radius: int) -> torch.Tensor:
    """(11, h, w): per window centre, active * [1, D (6), D mu (3), mu^T D mu] (0 where inactive)."""
    _, h, w = img.shape
    size = 2 * radius + 1
    m = size * size

    def box(x: torch.Tensor) -> torch.Tensor:  # sums over the window centred at each pixel
        return F.avg_pool2d(F.pad(x[None], (radius,) * 4), size, stride=1, divisor_override=1)[0]

    mu = box(img) / m
    second = box(torch.stack([img[a] * img[b] for a, b in _PAIRS])) / m
    cov = [second[n] - mu[a] * mu[b] + (epsilon / m if a == b else 0.0) for n, (a, b) in enumerate(_PAIRS)]
    a00, a01, a02, a11, a12, a22 = cov
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    det = a00 * c00 + a01 * c01 + a02 * c02
    inv = torch.stack([c00, c01, c02, a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01]) / det
    d00, d01, d02, d11, d12, d22 = inv
    v = torch.stack([d00 * mu[0] + d01 * mu[1] + d02 * mu[2],
                     d01 * mu[0] + d11 * mu[1] + d12 * mu[2],
                     d02 * mu[0] + d12 * mu[1] + d22 * mu[2]])
    c = (mu * v).sum(0, keepdim=True)
    active = box(known.double()[None])[0] < m
    interior = torch.zeros((h, w), dtype=torch.bool)
    interior[radius:h - radius, radius:w - radius] = True
    active &= interior
    stats = torch.cat([torch.ones((1, h, w), dtype=torch.float64), inv, v, c])
    return stats * active


def _diagonal(s: torch.Tensor, img: torch.Tensor, pad: torch.Tensor, d: tuple[int, int], radius: int) -> torch.Tensor:
    """L(i, i + d) at every pixel i from ``s``, the window statistics summed over the centres holding both."""
    dy, dx = d
    span = 2 * radius
    _, h, w = img.shape
    ij = pad[:, span + dy:span + dy + h, span + dx:span + dx + w]
    ii = img
    sd, sv = s[_D], s[_V]
    quad = torch.zeros((h, w), dtype=torch.float64)
    for n, (a, b) in enumerate(_PAIRS):
        quad += sd[n] * (ii[a] * ij[b] if a == b else ii[a] * ij[b] + ii[b] * ij[a])
    lin = (ii * sv).sum(0) + (ij * sv).sum(0)
    m = (2 * radius + 1) ** 2
    out = -(s[_N] + quad - lin + s[_C]) / m
    if dy == 0 and dx == 0:
        out += s[_N]
    return out
