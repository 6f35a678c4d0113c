"""Closed-form matting's Laplacian over the unknown pixels (diffmatte.laplacian) against pymatting's."""
from __future__ import annotations

import numpy as np
import pymatting
import pytest

from diffmatte.laplacian import unknown_system


def _reference(image: np.ndarray, trimap: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    u = (trimap == 0.5).ravel()
    full = pymatting.cf_laplacian(image, 1e-7, radius, trimap != 0.5).tocsr()
    return full[u][:, u].toarray(), full[u][:, ~u] @ trimap.ravel()[~u]


@pytest.mark.parametrize("strip_rows", [None, 3, 8])
@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("layout", ["band", "island", "corner"])
def test_the_unknown_rows_equal_pymatting(radius: int, layout: str, strip_rows: int | None) -> None:
    rng = np.random.default_rng(radius)
    image = rng.random((27, 33, 3))
    image[4:12, 6:14] = 0.4  # a flat patch: its windows' inverse covariance is 1/eps, the hard case
    trimap = np.zeros((27, 33))
    if layout == "band":
        trimap[:, 16:] = 1.0
        trimap[:, 10:20] = 0.5
    elif layout == "island":  # the crop to the unknown box must change nothing
        trimap[8:18, 12:24] = 0.5
        trimap[11:15, 15:20] = 1.0
    else:  # unknown pixels on the image's edge and corner
        trimap[0:4, 0:3] = 0.5
        trimap[20:, 25:] = 0.5
        trimap[24:, 30:] = 1.0
    matrix, known_part = unknown_system(image, trimap, radius=radius, strip_rows=strip_rows)
    ref_matrix, ref_known = _reference(image, trimap, radius)
    assert matrix.shape == ref_matrix.shape
    assert np.abs(matrix.toarray() - ref_matrix).max() < 1e-6 * np.abs(ref_matrix).max()
    assert np.allclose(known_part, ref_known, atol=1e-9)
    # canonical CSR (each row's columns ascending), which the sparse products expect
    assert all(np.all(np.diff(matrix.indices[a:b]) > 0) for a, b in zip(matrix.indptr[:-1], matrix.indptr[1:], strict=False))
