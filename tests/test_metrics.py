"""Tests for diffmatte.evaluation.metrics against the DIM MATLAB reference kit.

The kit lives outside the repository, in ``shared/reference/metrics`` next to
the checkout (``/work/shared`` beside ``/work/main``).  Tests that need it are
skipped when it is absent; the hand-computed tests always run.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from diffmatte.evaluation import metrics
from diffmatte.evaluation.metrics import compute_all, conn, grad, mse, sad

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
KIT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "metrics"
REF_FILE = KIT / "reference_values.json"
KIT_MISSING = f"metric reference kit not found at {KIT} (expected shared/reference/metrics beside the repo)"
needs_kit = pytest.mark.skipif(not REF_FILE.is_file(), reason=KIT_MISSING)

METRICS = {"sad": sad, "mse": mse, "grad": grad, "conn": conn}
# The kit's threshold is 1e-3; a faithful float64 port is within ~1e-6 of
# MATLAB's single-precision values, so the direct tests use a tighter bound.
RTOL = 1e-5
ATOL = 1e-10  # only matters where the reference is exactly 0


def _reference() -> dict[str, dict]:
    if not REF_FILE.is_file():
        return {}
    with open(REF_FILE) as f:
        return json.load(f)["cases"]


REFERENCE = _reference()
CASE_NAMES = sorted(REFERENCE)


def _case_params(*extra: list[str]) -> list:
    """Parameters (case[, metric]) for the kit cases, or one skipped placeholder."""
    if not CASE_NAMES:
        return [pytest.param(*(["<no kit>"] + [None] * len(extra)), marks=pytest.mark.skip(reason=KIT_MISSING))]
    if not extra:
        return CASE_NAMES
    return [pytest.param(c, m, id=f"{c}-{m}") for c in CASE_NAMES for m in extra[0]]


@functools.lru_cache(maxsize=1)
def _png_module() -> ModuleType:
    # The kit's own reader: it decodes exactly as the reference harness does.
    spec = importlib.util.spec_from_file_location("_metrics_kit_png", KIT / "_png.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=None)
def _load_case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    read = _png_module().read_gray8
    arrays = tuple(read(str(KIT / "cases" / sub / f"{name}.png")) for sub in ("pred", "alpha", "trimap"))
    for a in arrays:
        a.setflags(write=False)  # shared between tests: the metrics must not modify inputs
    return arrays  # type: ignore[return-value]


def _assert_close(got: float, want: float, what: str) -> None:
    assert math.isfinite(got), f"{what}: got {got}"
    assert abs(got - want) <= ATOL + RTOL * abs(want), (
        f"{what}: got {got!r}, MATLAB reference {want!r} (rel err {abs(got - want) / abs(want) if want else math.inf:.3g})"
    )


# --------------------------------------------------------------------------
# (1) the kit's own checker
# --------------------------------------------------------------------------


@needs_kit
def test_check_metrics_script_passes() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(KIT / "check_metrics.py"), "diffmatte.evaluation.metrics", "--path", str(SRC), "--rtol", "1e-3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"check_metrics.py exited with {proc.returncode}:\n{out}"
    assert f"{len(REFERENCE)} cases" in out and len(REFERENCE) == 33, out
    for m in METRICS:
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(m)), None)
        assert line is not None and line.rstrip().endswith("OK"), f"no OK line for {m}:\n{out}"


# --------------------------------------------------------------------------
# (2) every case and metric, directly
# --------------------------------------------------------------------------


@needs_kit
@pytest.mark.parametrize(("case", "metric"), _case_params(list(METRICS)))
def test_matches_matlab_reference(case: str, metric: str) -> None:
    got = METRICS[metric](*_load_case(case))
    _assert_close(got, REFERENCE[case][metric], f"{metric} on {case}")


@needs_kit
@pytest.mark.parametrize("case", _case_params())
def test_conn_continue_variant_matches_indexnet(case: str) -> None:
    got = conn(*_load_case(case), variant="continue")
    _assert_close(got, REFERENCE[case]["variants"]["conn_indexnet_continue"], f"conn(variant='continue') on {case}")


@needs_kit
def test_compute_all_equals_individual_functions() -> None:
    case = "realistic_480x360" if "realistic_480x360" in REFERENCE else CASE_NAMES[0]
    arrays = _load_case(case)
    assert compute_all(*arrays) == {name: f(*arrays) for name, f in METRICS.items()}


# --------------------------------------------------------------------------
# (3) small hand-computable cases
# --------------------------------------------------------------------------


def _disc(shape: tuple[int, int] = (40, 50)) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2)
    gt = np.clip((14 - r) * 60 + 128, 0, 255).astype(np.uint8)
    trimap = np.where(gt == 0, 0, np.where(gt == 255, 255, 128)).astype(np.uint8)
    return gt, trimap


def test_perfect_prediction_is_zero() -> None:
    gt, trimap = _disc()
    assert np.count_nonzero(trimap == 128) > 0
    assert compute_all(gt.copy(), gt, trimap) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_sad_and_mse_of_known_difference() -> None:
    gt = np.zeros((6, 8), np.uint8)
    pred = gt.copy()
    pred[1, :5] = 51  # 5 pixels off by 51/255 = 0.2 ...
    trimap = np.zeros_like(gt)
    trimap[1, :] = 128  # ... all inside the 8-pixel unknown row
    pred[3, :] = 255  # differences outside the unknown region are ignored
    trimap[3, :4] = (127, 129, 64, 255)  # only trimap == 128 exactly is scored
    assert sad(pred, gt, trimap) == pytest.approx(5 * 0.2 / 1000, rel=1e-12)
    assert mse(pred, gt, trimap) == pytest.approx(5 * 0.2**2 / 8 * 1000, rel=1e-12)


def test_empty_unknown_region() -> None:
    gt, _ = _disc()
    pred = 255 - gt
    trimap = np.zeros_like(gt)
    assert sad(pred, gt, trimap) == 0.0
    assert grad(pred, gt, trimap) == 0.0
    assert conn(pred, gt, trimap) == 0.0
    assert math.isnan(mse(pred, gt, trimap))  # MATLAB's 0/0


def test_grad_unit_step_peak() -> None:
    # DEFINITIONS.md: with the L2-normalised 9x9 kernel an ideal unit step
    # peaks at |grad| ~ 2.66; a constant GT has zero gradient.
    pred = np.zeros((9, 10), np.uint8)
    pred[:, 5:] = 255
    gt = np.zeros_like(pred)
    trimap = np.zeros_like(pred)
    trimap[4, 4] = 128
    assert math.sqrt(grad(pred, gt, trimap) * 1000) == pytest.approx(2.662, abs=1e-3)
    # Replicate padding: a column beyond the image edge equals the edge, so
    # the border column sees no step at all.
    trimap[:] = 0
    trimap[4, 0] = 128
    assert grad(pred, gt, trimap) == 0.0


def test_grad_uses_per_image_min_max() -> None:
    # mat2gray, not x/255: a 0/100 step and a 0/255 step normalise to the
    # same image, so the gradient error is zero.
    gt = np.zeros((12, 12), np.uint8)
    gt[:, 6:] = 255
    pred = (gt // 255 * 100).astype(np.uint8)
    trimap = np.full_like(gt, 128)
    assert grad(pred, gt, trimap) == 0.0
    assert sad(pred, gt, trimap) > 0.0


def test_conn_tie_breaks_in_column_major_order() -> None:
    # Two one-pixel components tie for largest at every threshold up to 0.4.
    # MATLAB's bwconncomp numbers them column-major, so B at (2, 0) wins and
    # A at (0, 2) gets l = 0: phi(p) = 0, phi(g) = 1 - 115/255.
    # If A won instead, l_A = 0.4 and the error would be 1 - 0.4 = 0.6.
    pred = np.zeros((3, 3), np.uint8)
    gt = pred.copy()
    pred[0, 2], gt[0, 2] = 255, 115  # A
    pred[2, 0], gt[2, 0] = 255, 255  # B
    trimap = np.full_like(pred, 128)
    assert conn(pred, gt, trimap) == pytest.approx(140 / 255 / 1000, rel=1e-12)
    assert conn(pred.T.copy(), gt.T.copy(), trimap) == pytest.approx(0.6 / 1000, rel=1e-12)


def test_conn_uses_4_connectivity() -> None:
    # A diagonal chain is three 4-components (the first, (0, 0), wins the
    # tie), so (2, 2) drops out at t = 0.1 and gets l = 0.  With
    # 8-connectivity it would stay until t = 0.5 (l = 0.4, error 0.6).
    pred = np.zeros((3, 3), np.uint8)
    gt = pred.copy()
    for i in range(3):
        pred[i, i] = gt[i, i] = 255
    gt[2, 2] = 115
    trimap = np.full_like(pred, 128)
    assert conn(pred, gt, trimap) == pytest.approx(140 / 255 / 1000, rel=1e-12)


def test_conn_empty_intersection_variants() -> None:
    # An all-zero prediction never meets the GT at t >= 0.1.  The GCA guard
    # (default) assigns l = 0 everywhere; IndexNet's "continue" gives l = 1
    # and therefore Conn = 0 (DEFINITIONS.md, "Empty intersection").
    gt, trimap = _disc()
    pred = np.zeros_like(gt)
    u = trimap == 128
    g = gt[u] / 255.0
    want_guard = float(np.sum(np.where(g >= 0.15, g, 0.0))) / 1000
    assert conn(pred, gt, trimap) == pytest.approx(want_guard, rel=1e-12)
    assert conn(pred, gt, trimap, variant="continue") == 0.0


def test_inputs_are_not_modified() -> None:
    gt, trimap = _disc()
    pred = np.roll(gt, 3, axis=1)
    copies = [a.copy() for a in (pred, gt, trimap)]
    compute_all(pred, gt, trimap)
    for before, after in zip(copies, (pred, gt, trimap), strict=True):
        np.testing.assert_array_equal(before, after)


# --------------------------------------------------------------------------
# (4) bad inputs
# --------------------------------------------------------------------------

_GOOD = np.zeros((10, 12), np.uint8)


@pytest.mark.parametrize("f", list(METRICS.values()) + [compute_all], ids=list(METRICS) + ["compute_all"])
def test_shape_mismatch_message(f) -> None:
    with pytest.raises(ValueError, match=re.escape("pred has shape (10, 12) but gt has shape (10, 13)")):
        f(_GOOD, np.zeros((10, 13), np.uint8), _GOOD)
    with pytest.raises(ValueError, match=re.escape("trimap has shape (12, 10) but pred and gt have shape (10, 12)")):
        f(_GOOD, _GOOD, np.zeros((12, 10), np.uint8))


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((_GOOD / 255.0, _GOOD, _GOOD), r"pred must be a numpy\.uint8 array.*got dtype float64; quantise"),
        ((_GOOD, _GOOD.astype(np.float32), _GOOD), r"gt must be a numpy\.uint8 array.*got dtype float32"),
        ((_GOOD, _GOOD, _GOOD.astype(np.int64)), r"trimap must be a numpy\.uint8 array.*got dtype int64"),
        ((_GOOD.astype(bool), _GOOD, _GOOD), r"pred must be a numpy\.uint8 array.*got dtype bool"),
        ((np.zeros((10, 12, 3), np.uint8), _GOOD, _GOOD), r"pred must be a 2-D \(H, W\) array, got 3-D .*x\[\.\.\., 0\]"),
        ((_GOOD, np.zeros(120, np.uint8), _GOOD), r"gt must be a 2-D \(H, W\) array, got 1-D"),
        ((np.zeros((0, 12), np.uint8),) * 3, r"pred must not be empty"),
        (([[0, 1]], _GOOD, _GOOD), r"pred must be a numpy\.uint8 array"),
    ],
    ids=["float-pred", "float32-gt", "int64-trimap", "bool-pred", "3d-pred", "1d-gt", "empty", "list"],
)
@pytest.mark.parametrize("f", list(METRICS.values()) + [compute_all], ids=list(METRICS) + ["compute_all"])
def test_bad_inputs_raise_value_error(f, args, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        f(*args)


def test_bad_conn_variant() -> None:
    with pytest.raises(ValueError, match="variant must be 'guard' or 'continue', got 'skip'"):
        conn(_GOOD, _GOOD, _GOOD, variant="skip")  # type: ignore[arg-type]


def test_public_names() -> None:
    assert sorted(metrics.__all__) == ["compute_all", "conn", "grad", "mse", "sad"]


# --------------------------------------------------------------------------
# (5) a 2-megapixel image
# --------------------------------------------------------------------------


def test_conn_on_two_megapixels_runs() -> None:
    rng = np.random.default_rng(0)
    h, w = 1080, 1920
    yy, xx = np.mgrid[:h, :w]
    gt = np.clip(765 * (1 - np.hypot(yy - h / 2, xx - w / 2) / 500) - 200, 0, 255).astype(np.uint8)
    pred = np.clip(gt.astype(np.int16) + rng.integers(-40, 41, gt.shape), 0, 255).astype(np.uint8)
    trimap = np.where(gt == 0, 0, np.where(gt == 255, 255, 128)).astype(np.uint8)
    value = conn(pred, gt, trimap)
    assert math.isfinite(value) and value > 0.0
