"""Tests for ``diffmatte evaluate``: dataset checks, methods, cache, reports and the CLI.

Every dataset here is synthetic and tiny (48 x 56 px: DiffMatte needs 32 px per side, lkm 41) and made in ``tmp_path``: a horizontal
alpha ramp between two colours, with a trimap whose unknown band covers the ramp.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from diffmatte import evaluation as ev
from diffmatte.cli import cli
from diffmatte.errors import CheckpointError, InputError
from diffmatte.evaluation.baselines import estimate_alpha
from diffmatte.evaluation.comparison import compare

H, W = 48, 56
FG_COLOUR = np.array([220.0, 60.0, 40.0])
BG_COLOUR = np.array([30.0, 90.0, 200.0])


# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------


def _arrays(seed: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image RGB uint8, alpha uint8, trimap uint8 in {0, 128, 255}) of a ramp matte."""
    rng = np.random.default_rng(seed)
    xx = np.broadcast_to(np.arange(w, dtype=np.float64), (h, w))
    alpha = np.clip((xx - 0.35 * w) / (0.3 * w), 0.0, 1.0)
    image = alpha[..., None] * FG_COLOUR + (1 - alpha[..., None]) * BG_COLOUR + rng.normal(0, 2, (h, w, 3))
    trimap = np.full((h, w), 128, np.uint8)
    trimap[xx < 0.25 * w] = 0
    trimap[xx > 0.75 * w] = 255
    return np.clip(image, 0, 255).round().astype(np.uint8), np.rint(alpha * 255).astype(np.uint8), trimap


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_composition(root: Path, names=("a", "b"), dirs=("merged", "trimaps", "alpha_copy")) -> Path:
    for i, name in enumerate(names):
        image, alpha, trimap = _arrays(i)
        _save(root / dirs[0] / f"{name}.png", image)
        _save(root / dirs[1] / f"{name}.png", trimap)
        _save(root / dirs[2] / f"{name}.png", alpha)
    return root


def make_alphamatting(root: Path, names=("GT01", "GT02"), sets=("Trimap1", "Trimap2")) -> Path:
    for i, name in enumerate(names):
        image, alpha, trimap = _arrays(i)
        _save(root / "input_training_lowres" / f"{name}.png", image)
        # alphamatting.com stores the ground truth as 3-channel RGB with R = G = B.
        _save(root / "gt_training_lowres" / f"{name}.png", np.repeat(alpha[..., None], 3, axis=2))
        for s in sets:
            _save(root / "trimap_training_lowres" / s / f"{name}.png", trimap)
    return root


def counting_method(name: str = "count", fn=None) -> tuple[ev.Method, list[int]]:
    """A method that returns ``fn(image, trimap)`` (default: the trimap) and counts its calls."""
    calls: list[int] = []

    def predict(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        calls.append(1)
        return (fn or (lambda i, t: t.astype(np.float32)))(image, trimap)

    return ev.Method(ev.MethodSpec(name), predict), calls


def invoke(*args: str):
    return CliRunner().invoke(cli, ["evaluate", *map(str, args)])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
# dataset discovery and validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dirs", [("merged", "trimaps", "alpha_copy"), ("image", "trimap", "alpha")])
def test_composition_layout(tmp_path: Path, dirs: tuple[str, str, str]) -> None:
    ds = ev.load_dataset(make_composition(tmp_path, dirs=dirs))
    assert ds.layout == "composition-1k"
    assert ds.images == ["a", "b"]
    assert ds.trimap_sets == (dirs[1],)
    assert [s.alpha.parent.name for s in ds.samples] == [dirs[2]] * 2


def test_alphamatting_layout_sets_and_selection(tmp_path: Path) -> None:
    root = make_alphamatting(tmp_path, names=("GT01", "GT02", "GT03"))
    ds = ev.load_dataset(root)
    assert ds.layout == "alphamatting"
    assert ds.trimap_sets == ("Trimap1", "Trimap2")
    assert [(s.name, s.trimap_set) for s in ds.samples][:2] == [("GT01", "Trimap1"), ("GT01", "Trimap2")]
    sub = ev.load_dataset(root, trimap_sets=["Trimap2"], images=["GT02-GT03"])
    assert [(s.name, s.trimap_set) for s in sub.samples] == [("GT02", "Trimap2"), ("GT03", "Trimap2")]


@pytest.mark.parametrize(
    ("patterns", "selected"),
    [
        (["GT19-GT21"], ["GT19", "GT20", "GT21"]),
        (["GT26-27"], ["GT26", "GT27"]),
        (["GT0[1-2]", "GT27"], ["GT01", "GT02", "GT27"]),
        (["GT2?"], [f"GT{i}" for i in range(20, 28)]),
        ([], [f"GT{i:02d}" for i in range(1, 28)]),
    ],
)
def test_select_names(patterns: list[str], selected: list[str]) -> None:
    names = [f"GT{i:02d}" for i in range(1, 28)]
    assert ev.select_names(names, patterns) == (selected, [])


def test_select_names_exact_name_with_hyphen_and_no_match() -> None:
    names = ["boy-1518482_0", "boy-1518482_1"]
    assert ev.select_names(names, ["boy-1518482_1"]) == (["boy-1518482_1"], [])
    assert ev.select_names(names, ["GT30"])[1] == ["image selection 'GT30' matches no image"]


def test_bad_dataset_lists_every_problem(tmp_path: Path) -> None:
    root = make_alphamatting(tmp_path, names=("GT01", "GT02", "GT03", "GT04"))
    (root / "gt_training_lowres" / "GT01.png").unlink()  # missing alpha
    _save(root / "trimap_training_lowres" / "Trimap2" / "GT02.png", np.zeros((H + 1, W), np.uint8))  # size
    bad_values = _arrays(3)[2]
    bad_values[0, 0] = 64
    _save(root / "trimap_training_lowres" / "Trimap1" / "GT03.png", bad_values)  # not 0/128/255
    _save(root / "gt_training_lowres" / "GT09.png", np.zeros((H, W), np.uint8))  # orphan
    (root / "trimap_training_lowres" / "Trimap1" / "GT04.png").write_bytes(b"not a png")  # unreadable
    with pytest.raises(ev.DatasetError) as info:
        ev.load_dataset(root)
    problems = "\n".join(info.value.problems)
    assert len(info.value.problems) == 5, problems
    assert "alpha missing for: GT01" in problems
    assert "GT02: sizes differ" in problems and f"trimap (Trimap2) {W}x{H + 1}" in problems
    assert "GT03.png: trimap values other than 0, 128, 255 (64)" in problems
    assert "alpha without an image: GT09" in problems
    assert "GT04.png: not a readable image" in problems
    # A selection that avoids the broken images is fine (orphans outside it do not count).
    assert ev.load_dataset(root, images=["GT02"], trimap_sets=["Trimap1"]).images == ["GT02"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root.mkdir(), "neither the Composition-1k layout"),
        (lambda root: (root / "merged").mkdir(parents=True), "no trimap folder (trimaps/ or trimap/)"),
        (lambda root: [(root / d).mkdir(parents=True) for d in ("image", "trimap", "alpha")], "no images found"),
    ],
)
def test_unusable_folder(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "data"
    make(root)
    with pytest.raises(ev.DatasetError, match=re.escape(message)):
        ev.load_dataset(root)


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cf", "cf-amg", "knn", "knn-amg", "lkm", "rw"])
def test_baselines_recover_a_ramp(method: str) -> None:
    image, alpha, trimap = _arrays(0)
    pred = estimate_alpha(method, image, trimap)
    assert pred.shape == (H, W) and pred.dtype == np.float64
    assert np.all(pred[trimap == 0] == 0) and np.all(pred[trimap == 255] == 1)
    assert 0 <= pred.min() and pred.max() <= 1
    # Loose bound: all four solve this two-colour ramp to within a few percent.
    assert np.abs(pred - alpha / 255.0).mean() < 0.05


def test_baselines_without_unknown_foreground_or_background() -> None:
    image = np.zeros((4, 4, 3))
    known = np.array([[0, 0, 255, 255]] * 4, np.uint8)
    assert np.array_equal(estimate_alpha("cf", image, known), known / 255.0)
    no_fg = np.array([[0, 0, 128, 128]] * 4, np.uint8)
    assert np.array_equal(estimate_alpha("knn", image, no_fg), np.zeros((4, 4)))
    no_bg = np.array([[128, 128, 255, 255]] * 4, np.uint8)
    assert np.array_equal(estimate_alpha("rw", image, no_bg), np.ones((4, 4)))
    with pytest.raises(InputError, match="at least 41 px"):
        estimate_alpha("lkm", np.zeros((40, 60, 3)), np.array([[0, 128, 255] * 20] * 40, np.uint8))
    with pytest.raises(InputError, match="no known pixel"):
        estimate_alpha("lkm", image, np.full((4, 4), 128, np.uint8))
    with pytest.raises(ValueError, match="unknown classical method"):
        estimate_alpha("bayes", image, known)


def test_baselines_keep_pymatting_prints_off_stdout(monkeypatch, capsys, caplog) -> None:
    from diffmatte.evaluation import baselines

    def chatty(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        print("PERFORMANCE WARNING:\n    shift = 1e-4")  # as pymatting's ichol does
        return np.full(trimap.shape, 0.25)

    monkeypatch.setattr(baselines, "_solver", lambda method: chatty)
    image, _, trimap = _arrays(0)
    with caplog.at_level("INFO", logger="diffmatte.evaluation.baselines"):
        alpha = estimate_alpha("cf", image, trimap)
    assert capsys.readouterr().out == ""
    assert "pymatting: PERFORMANCE WARNING: shift = 1e-4" in caplog.text
    assert np.all(alpha[trimap == 128] == 0.25)


# --------------------------------------------------------------------------------------------
# methods, predictions, cache
# --------------------------------------------------------------------------------------------


def test_build_methods_one_per_model_and_steps(tiny_vit_file: Path) -> None:
    methods = ev.build_methods(["cf", "diffmatte"], models=[str(tiny_vit_file), str(tiny_vit_file)], steps=[2, 1, 2])
    assert [m.spec.label for m in methods] == ["cf", "diffmatte:tiny@1", "diffmatte:tiny@2"]
    assert methods[1].spec.model_sha256 == methods[2].spec.model_sha256 and len(methods[1].spec.model_sha256) == 64
    with pytest.raises(InputError, match="steps must be"):
        ev.build_methods(["diffmatte"], models=[str(tiny_vit_file)], steps=[0])
    with pytest.raises(CheckpointError):
        ev.build_methods(["diffmatte"], models=[str(tiny_vit_file.parent / "missing.safetensors")])


def test_quantised_prediction_is_what_gets_scored(tmp_path: Path) -> None:
    ds = ev.load_dataset(make_composition(tmp_path, names=("a",)))
    gt = np.asarray(Image.open(ds.samples[0].alpha)).astype(np.float64) / 255.0
    # 0.3 / 255 off everywhere: rounds back to the ground truth, so every metric is exactly 0.
    nearly, _ = counting_method("nearly", lambda i, t: np.clip(gt + 0.3 / 255, 0, 1))
    # 0.7 / 255 up inside the unknown band: one grey level there, so SAD = n / 255 / 1000.
    off_by_one, _ = counting_method("off", lambda i, t: np.where(t == 0.5, gt + 0.7 / 255, gt))
    result = ev.evaluate(ds, [nearly, off_by_one])
    perfect, shifted = result.scores
    assert (perfect.sad, perfect.mse, perfect.grad, perfect.conn) == (0.0, 0.0, 0.0, 0.0)
    _, alpha, trimap = _arrays(0)
    n_raised = int(((trimap == 128) & (alpha < 255)).sum())  # 255 stays 255 (saturation)
    assert shifted.sad == pytest.approx(n_raised / 255 / 1000)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (np.zeros((H, W + 1), np.float32), rf"shape \({H}, {W + 1}\), the image is \({H}, {W}\)"),
        (np.full((H, W), np.nan, np.float32), "NaN or infinite"),
        (np.zeros((H, W), np.uint8), "must be float alpha"),
    ],
)
def test_bad_prediction_is_an_error(tmp_path: Path, output: np.ndarray, message: str) -> None:
    ds = ev.load_dataset(make_composition(tmp_path, names=("a",)))
    method, _ = counting_method("broken", lambda i, t: output)
    with pytest.raises(ev.PredictionError, match=message):
        ev.evaluate(ds, [method], cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.png"))  # nothing wrong is cached


def test_cache_computes_only_what_is_new(tmp_path: Path) -> None:
    ds = ev.load_dataset(make_alphamatting(tmp_path / "data"))
    cache = tmp_path / "cache"
    method, calls = counting_method()
    first = ev.evaluate(ds, [method], cache_dir=cache)
    assert (first.computed, first.cached, len(calls)) == (4, 0, 4)
    again = ev.evaluate(ds, [method], cache_dir=cache)
    assert (again.computed, again.cached, len(calls)) == (0, 4, 4)
    assert [(s.sad, s.conn, s.seconds, s.cpu_seconds) for s in again.scores] == [
        (s.sad, s.conn, s.seconds, s.cpu_seconds) for s in first.scores
    ]
    # A touched image invalidates its own two predictions (one per trimap set) and no others.
    image = ds.samples[0].image
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    touched = ev.evaluate(ds, [method], cache_dir=cache)
    assert (touched.computed, len(calls)) == (2, 6)
    # Another seed (or steps, model, method) is another key.
    reseeded = ev.Method(ev.MethodSpec("count", seed=1), method.predict)
    assert ev.evaluate(ds, [reseeded], cache_dir=cache).computed == 4


def test_cf_amg_solves_the_same_system_as_cf() -> None:
    image, _, trimap = _arrays(3, 64, 80)
    assert np.abs(estimate_alpha("cf-amg", image, trimap) - estimate_alpha("cf", image, trimap)).max() < 2e-3


def test_comparison_reports_medians_wins_and_means_with_foreground(tmp_path: Path) -> None:
    # Four images; on "d" the trimap has no foreground and the baseline answers all zero. The
    # plain mean then favours the model, the median, the wins and the mean over trimaps with
    # foreground do not: exactly what the comparison has to show.
    root = make_composition(tmp_path / "data", names=("a", "b", "c", "d"), dirs=("image", "trimap", "alpha"))
    image, alpha, trimap = _arrays(9)
    trimap[trimap == 255] = 128
    _save(root / "trimap" / "d.png", trimap)
    (root / "manifest.json").write_text(json.dumps({"images": [
        {"name": "a", "subset": "hair"}, {"name": "b", "subset": "hair"},
        {"name": "c", "subset": "glass"}, {"name": "d", "subset": "glass"}]}))
    ds = ev.load_dataset(root)
    assert ds.subsets == {"a": "hair", "b": "hair", "c": "glass", "d": "glass"}
    errors = {"a": 0.02, "b": 0.03, "c": 0.04, "d": 0.3}  # the model's absolute error per image

    def model(img: np.ndarray, tri: np.ndarray) -> np.ndarray:
        name = next(n for n in "abcd" if np.array_equal(tri, ev_trimaps[n]))
        gt = np.clip((np.arange(tri.shape[1]) - 0.35 * tri.shape[1]) / (0.3 * tri.shape[1]), 0, 1)
        return np.clip(np.broadcast_to(gt, tri.shape) + errors[name], 0, 1).astype(np.float32)

    from diffmatte.io import read_trimap_levels, trimap_from_array

    ev_trimaps = {n: trimap_from_array(read_trimap_levels(root / "trimap" / f"{n}.png")) for n in "abcd"}
    methods = [ev.Method(ev.MethodSpec("model"), model),
               ev.Method(ev.MethodSpec("cf"), lambda img, tri: estimate_alpha("cf", img, tri).astype(np.float32))]
    result = ev.evaluate(ds, methods)
    assert [s.fg_constraint for s in result.scores if s.spec.method == "cf"] == [True, True, True, False]
    rows = {(r.subset, r.label): r for r in compare(result)}
    model_all, cf_all = rows[("all", "model")], rows[("all", "cf")]
    sad = {(s.spec.method, s.image): s.sad for s in result.scores}
    assert model_all.mean_sad == pytest.approx(np.mean([sad["model", n] for n in "abcd"]))
    assert model_all.median_sad == pytest.approx(np.median([sad["model", n] for n in "abcd"]))
    assert (model_all.n_constrained, cf_all.mean_sad_constrained) == (3, pytest.approx(np.mean([sad["cf", n] for n in "abc"])))
    assert model_all.mean_sad < cf_all.mean_sad  # carried by "d" alone
    assert str(model_all.against_constrained["cf"]) == "0-3" and str(model_all.against["cf"]) == "1-3"
    assert rows[("glass", "cf")].n == 2 and rows[("hair", "model")].against["cf"].losses == 2
    paths = ev.write_reports(result, tmp_path / "out")
    doc = json.loads(paths["summary_json"].read_text())
    assert {(c["subset"], c["label"]) for c in doc["comparisons"]} == set(rows)
    assert "vs cf (all / with fg)" in paths["summary_md"].read_text()
    assert {r["subset"] for r in read_csv(paths["per_image"])} == {"hair", "glass"}


def test_reports_are_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    import dataclasses

    ds = ev.load_dataset(make_alphamatting(tmp_path / "data"))
    method, _ = counting_method()
    result = ev.evaluate(ds, [method])
    out = tmp_path / "results"
    paths = ev.write_reports(result, out)
    before = {k: p.read_bytes() for k, p in paths.items()}
    # A last score that cannot be written fails the CSV half-way through its rows.
    broken = dataclasses.replace(result.scores[-1], cached=None)
    bad = dataclasses.replace(result, scores=(*result.scores[:-1], broken))
    with pytest.raises(TypeError):
        ev.write_reports(bad, out)
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(p.name for p in paths.values())


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


def test_cli_diffmatte_and_cf_in_one_run_then_cached(tmp_path: Path, tiny_vit_file: Path) -> None:
    data, out = make_alphamatting(tmp_path / "data"), tmp_path / "results"
    args = ["--data", data, "-o", out, "--method", "diffmatte,cf", "--model", tiny_vit_file, "--steps", "1,2"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    # 2 images x 2 trimap sets x (diffmatte@1, diffmatte@2, cf)
    assert "12 predictions computed, 0 taken from the cache" in first.output

    rows = read_csv(out / "per_image.csv")
    assert len(rows) == 12
    assert {(r["method"], r["steps"]) for r in rows} == {("diffmatte", "1"), ("diffmatte", "2"), ("cf", "")}
    assert {r["model"] for r in rows if r["method"] == "diffmatte"} == {"tiny"}
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["label"], r["trimap_set"]) for r in summary["results"]] == [
        (label, s) for label in ("diffmatte:tiny@1", "diffmatte:tiny@2", "cf") for s in ("Trimap1", "Trimap2")
    ]
    assert all(r["n"] == 2 and r["sad"] >= 0 for r in summary["results"])
    assert "--method diffmatte,cf" in summary["command"]
    table = (out / "summary.md").read_text()
    assert "| diffmatte | tiny | 2 | Trimap2 | 2 |" in table and "| cf | - | - | Trimap1 | 2 |" in table
    for plot in ("methods.png", "steps.png"):
        with Image.open(out / "plots" / plot) as im:
            assert im.format == "PNG" and im.width > 100

    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "0 predictions computed, 12 taken from the cache" in second.output
    metrics = ("sad", "mse", "grad", "conn", "seconds", "cpu_seconds")
    assert [[r[m] for m in metrics] for r in read_csv(out / "per_image.csv")] == [[r[m] for m in metrics] for r in rows]


def test_cli_fp32_and_bf16_side_by_side(tmp_path: Path, tiny_vit_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("diffmatte.pipeline.cpu_has_fast_bf16", lambda: True)  # no emulation warning
    data, out = make_alphamatting(tmp_path / "data", names=("GT01",)), tmp_path / "results"
    args = ["--data", data, "-o", out, "--model", tiny_vit_file, "--steps", "1", "--trimap-set", "Trimap1"]
    result = invoke(*args, "--precision", "fp32,bf16")
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "per_image.csv")
    assert [r["model"] for r in rows] == ["tiny", "tiny bf16"]
    assert "--precision fp32,bf16" in json.loads((out / "summary.json").read_text())["command"]
    # fp32 keeps its cache key: a plain fp32 run afterwards computes nothing.
    again = invoke(*args)
    assert "0 predictions computed, 1 taken from the cache" in again.output, again.output


def test_cli_composition_layout_with_a_subset(tmp_path: Path) -> None:
    data, out = make_composition(tmp_path / "data", names=("a", "b", "c")), tmp_path / "results"
    result = invoke("--data", data, "-o", out, "--method", "cf", "--images", "a,c")
    assert result.exit_code == 0, result.output
    assert [r["image"] for r in read_csv(out / "per_image.csv")] == ["a", "c"]
    assert not (out / "plots" / "steps.png").exists()  # no DiffMatte, no steps plot


def test_cli_bad_dataset_exits_2_before_any_work(tmp_path: Path) -> None:
    data, out = make_alphamatting(tmp_path / "data"), tmp_path / "results"
    (data / "gt_training_lowres" / "GT01.png").unlink()
    _save(data / "trimap_training_lowres" / "Trimap1" / "GT02.png", np.zeros((H, W + 3), np.uint8))
    result = invoke("--data", data, "-o", out, "--method", "cf")
    assert result.exit_code == 2
    assert "2 problems" in result.output
    assert "alpha missing for: GT01" in result.output and "GT02: sizes differ" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "cf", "--model", "x.safetensors"], "--method does not include diffmatte"),
        (["--method", "bayes"], "unknown method bayes"),
        (["--method", "cf", "--steps", "0"], "steps must be integers >= 1"),
        (["--method", "cf", "--steps", "1,ten"], "comma-separated integers"),
        (["--method", "cf", "--trimap-set", "Trimap9"], "Trimap9 not found; the dataset has: Trimap1, Trimap2"),
        (["--method", "cf", "--images", "GT30-GT40"], "'GT30-GT40' matches no image"),
        (["--model", "missing.safetensors"], "neither a packaged model"),
        (["--precision", "fp16"], "choose auto, fp32, bf16 or fp32,bf16"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    data, out = make_alphamatting(tmp_path / "data", names=("GT01",)), tmp_path / "results"
    result = invoke("--data", data, "-o", out, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_model_names_tell_run_folders_apart(tmp_path: Path) -> None:
    from diffmatte.evaluation.methods import _model_names

    resolved = {
        "a" * 64: (str(tmp_path / "run-uti/last/ema.safetensors"), tmp_path / "run-uti/last/ema.safetensors"),
        "b" * 64: (str(tmp_path / "run-plain/last/ema.safetensors"), tmp_path / "run-plain/last/ema.safetensors"),
        "c" * 64: (str(tmp_path / "other.safetensors"), tmp_path / "other.safetensors"),
        "d" * 64: ("default", Path("/site-packages/diffmatte/weights/default.safetensors")),
    }
    names = _model_names(resolved)
    assert names == {"a" * 64: "run-uti/last/ema", "b" * 64: "run-plain/last/ema", "c" * 64: "other",
                     "d" * 64: "default"}
    # The same path under two hashes (a file rewritten between runs) falls back to the hash.
    same = tmp_path / "x/ema.safetensors"
    names = _model_names({"e" * 64: (str(same), same), "f" * 64: (str(same), same)})
    assert names == {"e" * 64: "ema-eeeeeeee", "f" * 64: "ema-ffffffff"}


def test_a_solver_that_does_not_converge_leaves_that_image_empty_and_the_run_goes_on(tmp_path: Path, monkeypatch) -> None:
    from diffmatte.evaluation import baselines

    def stuck(image, trimap):  # what pymatting's cg raises after 10000 iterations
        raise ValueError("Conjugate gradient descent did not converge within 10000 iterations")

    monkeypatch.setattr(baselines, "_solver", lambda method: stuck)
    image, _, trimap = _arrays(0)
    with pytest.raises(baselines.NoSolution, match="cf: Conjugate gradient"):
        estimate_alpha("cf", image, trimap)
    ds = ev.load_dataset(make_alphamatting(tmp_path / "data", sets=("Trimap1",)))
    first = [True]

    def sometimes(img: np.ndarray, tri: np.ndarray) -> np.ndarray:
        if first.pop() if first else False:
            return estimate_alpha("cf", img, tri)  # raises NoSolution on the first image
        return tri.astype(np.float32)

    result = ev.evaluate(ds, [ev.Method(ev.MethodSpec("cf"), sometimes)], cache_dir=tmp_path / "cache")
    sads = [s.sad for s in result.scores]
    assert np.isnan(sads[0]) and np.isfinite(sads[1])
    paths = ev.write_reports(result, tmp_path / "out")
    assert json.loads(paths["summary_json"].read_text())["results"][0]["sad"] == pytest.approx(sads[1])


def test_knn_amg_solves_the_same_system_as_knn() -> None:
    image, _, trimap = _arrays(3, 64, 80)
    assert np.abs(estimate_alpha("knn-amg", image, trimap) - estimate_alpha("knn", image, trimap)).max() < 2e-3
