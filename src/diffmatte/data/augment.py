"""Training augmentations of the DIM / GCA-Matting pipeline that DiffMatte trains with (SPEC §7).

Every function takes NumPy arrays and, when it is random, a ``numpy.random.Generator``;
nothing reads global random state, so a sample is a pure function of its seed. Images are
(H, W, 3) uint8 until colour jitter, alphas (H, W) uint8, trimaps (H, W) uint8 in
{0, 128, 255}. Resizes pick a random interpolation, as the official pipeline does, so the
network does not learn one resampler's artefacts.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from ..writers import to_uint8

__all__ = [
    "RESIZE_FILTERS",
    "WARP_FILTERS",
    "random_filter",
    "resize",
    "downscale_to",
    "merge_foregrounds",
    "random_affine_matrix",
    "warp_affine",
    "erode",
    "generate_trimap",
    "upscale_for_crop",
    "crop_origin",
    "color_jitter",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "composite",
]

# nearest, linear, cubic, Lanczos: the official pipeline's four cv2 interpolations
RESIZE_FILTERS = (Image.NEAREST, Image.BILINEAR, Image.BICUBIC, Image.LANCZOS)
# PIL's affine warp has no Lanczos
WARP_FILTERS = (Image.NEAREST, Image.BILINEAR, Image.BICUBIC)

TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255


def random_filter(rng: np.random.Generator, filters: tuple[int, ...] = RESIZE_FILTERS) -> int:
    return filters[int(rng.integers(len(filters)))]


def resize(a: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Resize a uint8 (H, W) or (H, W, 3) array to ``size`` = (width, height)."""
    if (a.shape[1], a.shape[0]) == tuple(size):
        return a
    return np.asarray(Image.fromarray(a).resize(size, resample))


def downscale_to(max_side: int, *arrays: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Shrink same-sized arrays so the longer side is at most ``max_side`` (0: unchanged)."""
    h, w = arrays[0].shape[:2]
    if not max_side or max(h, w) <= max_side:
        return list(arrays)
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return [resize(a, size, random_filter(rng)) for a in arrays]


def merge_foregrounds(
    fg1: np.ndarray, a1: np.ndarray, fg2: np.ndarray, a2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lay foreground 1 over foreground 2: alpha = 1 - (1 - a1)(1 - a2), fg = fg1 a1 + fg2 (1 - a1)."""
    w1 = a1.astype(np.float32)[..., None] / 255.0
    w2 = a2.astype(np.float32)[..., None] / 255.0
    alpha = 1.0 - (1.0 - w1) * (1.0 - w2)
    fg = fg1.astype(np.float32) * w1 + fg2.astype(np.float32) * (1.0 - w1)
    return to_uint8(fg / 255.0), to_uint8(alpha[..., 0])


def random_affine_matrix(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.8, 1.25),
    shear_degrees: float = 10.0,
    rotation_degrees: float = 30.0,
    rotation_min_side: int = 1024,
    flip_prob: float = 0.5,
) -> np.ndarray:
    """3x3 matrix mapping input to output pixel coordinates, about the image centre.

    Scale is drawn per axis, shear along x, flips per axis. Rotation happens only when the
    longer side is at least ``rotation_min_side``, as in the official pipeline (there it is
    1024, so small images are never rotated).
    """
    sx, sy = rng.uniform(*scale_range, size=2)
    shear = math.radians(rng.uniform(-shear_degrees, shear_degrees))
    fx = -1.0 if rng.random() < flip_prob else 1.0
    fy = -1.0 if rng.random() < flip_prob else 1.0
    angle = 0.0
    if max(width, height) >= rotation_min_side:
        angle = math.radians(rng.uniform(-rotation_degrees, rotation_degrees))
    cx, cy = width / 2.0, height / 2.0  # PIL puts pixel centres at i + 0.5
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=np.float64)
    flip_scale = np.diag([fx * sx, fy * sy, 1.0])
    shear_m = np.array([[1, math.tan(shear), 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
    return back @ rot @ shear_m @ flip_scale @ to_centre


def warp_affine(a: np.ndarray, matrix: np.ndarray, resample: int) -> np.ndarray:
    """Apply ``matrix`` (input -> output coordinates) keeping the size; outside is 0."""
    inv = np.linalg.inv(matrix)  # PIL asks, for each output pixel, where to read the input
    coeffs = tuple(inv[:2].reshape(-1).tolist())
    img = Image.fromarray(a)
    return np.asarray(img.transform(img.size, Image.AFFINE, coeffs, resample=resample))


def erode(mask: np.ndarray, kernel: int) -> np.ndarray:
    """Binary erosion by a disc of diameter ``kernel``; the image border does not erode."""
    radius = (kernel - 1) / 2.0
    if radius <= 0 or mask.all() or not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(mask) > radius


def generate_trimap(
    alpha: np.ndarray,
    rng: np.random.Generator,
    size: int = 640,
    kernel_range: tuple[int, int] = (1, 30),
) -> np.ndarray:
    """Trimap from an alpha by eroding its opaque and its transparent parts by random amounts.

    The erosion happens on the alpha resized to ``size`` x ``size``, so the unknown band
    has the same width relative to the image whatever its resolution (official GenMask).
    """
    h, w = alpha.shape
    small = resize(alpha, (size, size), Image.NEAREST)
    k_fg, k_bg = rng.integers(kernel_range[0], kernel_range[1], size=2)
    fg = erode(small == 255, int(k_fg))
    bg = erode(small == 0, int(k_bg))
    trimap = np.full(small.shape, TRIMAP_UNKNOWN, dtype=np.uint8)
    trimap[fg] = TRIMAP_FG
    trimap[bg] = TRIMAP_BG
    return resize(trimap, (w, h), Image.NEAREST)


def upscale_for_crop(height: int, width: int, crop: int) -> tuple[int, int] | None:
    """(width, height) to enlarge an image to before cropping, or None if it is large enough."""
    if min(height, width) > crop:
        return None
    ratio = 1.1 * crop / min(height, width)
    return max(crop + 1, int(width * ratio)), max(crop + 1, int(height * ratio))


def crop_origin(trimap: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """Top-left (y, x) of a crop centred on a random unknown pixel; None if there is no unknown pixel.

    Centres are searched on every 4th pixel, away from the border by half a crop; with
    fewer than 10 such centres the crop is placed uniformly at random instead.
    """
    h, w = trimap.shape
    if not (trimap == TRIMAP_UNKNOWN).any():
        return None
    half = crop // 2
    ys, xs = np.nonzero(trimap[::4, ::4] == TRIMAP_UNKNOWN)
    ys, xs = ys * 4, xs * 4
    inside = (ys >= half) & (ys < h - (crop - half)) & (xs >= half) & (xs < w - (crop - half))
    ys, xs = ys[inside], xs[inside]
    if len(ys) < 10:
        return int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    i = int(rng.integers(len(ys)))
    return int(ys[i]) - half, int(xs[i]) - half


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> HSV with hue in degrees [0, 360), S and V in [0, 1]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    span = v - rgb.min(axis=-1)
    s = np.where(v > 0, span / np.maximum(v, 1e-12), 0.0)
    safe = np.maximum(span, 1e-12)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(span > 0, (h * 60.0) % 360.0, 0.0)
    return np.stack([h, s, v], axis=-1).astype(np.float32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0] / 60.0, hsv[..., 1], hsv[..., 2]
    i = np.floor(h).astype(np.int64) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(hsv.shape, dtype=np.float32)
    for k, (r, g, b) in enumerate(choices):
        sel = i == k
        out[sel] = np.stack([r[sel], g[sel], b[sel]], axis=-1)
    return out


def color_jitter(rgb: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random hue shift and saturation/value offsets, the offsets smaller for vivid, bright objects.

    rgb (H, W, 3) float32 in [0, 1]; the means are taken where alpha > 0. Values pushed
    out of [0, 1] are reflected back in. An empty alpha leaves the image unchanged.
    """
    visible = alpha > 0
    if not visible.any():
        return rgb
    hsv = rgb_to_hsv(rgb)
    hsv[..., 0] = (hsv[..., 0] + float(rng.integers(-40, 40))) % 360.0
    for c in (1, 2):
        mean = float(hsv[..., c][visible].mean())
        channel = np.abs(hsv[..., c] + rng.uniform(-0.1, 0.1) * (1.1 - mean))
        hsv[..., c] = np.where(channel > 1.0, 2.0 - channel, channel)
    return np.clip(hsv_to_rgb(hsv), 0.0, 1.0)


def composite(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """fg a + bg (1 - a); float arrays, fg/bg (H, W, 3), alpha (H, W) in [0, 1]."""
    a = alpha[..., None]
    return fg * a + bg * (1.0 - a)
