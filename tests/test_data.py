"""Tests for the training data: file checks, augmentations, datasets and resumable order."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from diffmatte.data import (
    CompositeDataset,
    DataConfig,
    EpochSampler,
    KeyedConcat,
    TripletDataset,
    ValidationSet,
    build_train_dataset,
    scan_triplets,
    seed_worker,
)
from diffmatte.data import augment as A
from diffmatte.data.files import ScanReport, find_images
from diffmatte.errors import InputError

from .helpers import disc_alpha, make_dim_layout, random_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
AM = SHARED / "alphamatting_training_lowres"

SMALL = dict(crop_size=32, max_side=96, trimap_size=96, erosion_range=(1, 7), num_workers=0)


def make_rgba_cutouts(root: Path) -> Path:
    """Nested RGBA PNGs with .txt descriptions beside them, as in fg_cutouts_tuxpaint."""
    for i, sub in enumerate(("animals/birds", "food", "food/fruit")):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        rgba = np.dstack([random_image(40 + i * 7, 50, i), disc_alpha(40 + i * 7, 50)])
        Image.fromarray(rgba, "RGBA").save(d / f"item{i}.png")
        (d / f"item{i}.txt").write_text("a description")
    return root


def make_triplets(root: Path, n: int = 3, with_trimaps: bool = True) -> Path:
    for sub in ("image", "alpha", "trimap"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        h, w = 64, 72 + 8 * i
        a = disc_alpha(h, w)
        Image.fromarray(random_image(h, w, i)).save(root / "image" / f"GT{i:02d}.png")
        Image.fromarray(np.dstack([a, a, a])).save(root / "alpha" / f"GT{i:02d}.png")  # alphas stored as RGB
        if with_trimaps:
            t = np.where(a == 255, 255, np.where(a == 0, 0, 128)).astype(np.uint8)
            Image.fromarray(t).save(root / "trimap" / f"GT{i:02d}.png")
    return root


def _check_sample(s: dict[str, torch.Tensor], crop: int) -> None:
    assert s["image"].shape == (3, crop, crop) and s["image"].dtype == torch.float32
    assert s["alpha"].shape == (1, crop, crop) and s["trimap"].shape == (1, crop, crop)
    assert 0 <= s["image"].min() and s["image"].max() <= 1
    assert 0 <= s["alpha"].min() and s["alpha"].max() <= 1
    assert set(torch.unique(s["trimap"]).tolist()) <= {0.0, 0.5, 1.0}


# -- files ------------------------------------------------------------------------------------


def test_dim_layout_composites(tmp_path: Path) -> None:
    cfg = DataConfig(root=str(make_dim_layout(tmp_path)), **SMALL)
    ds, report = build_train_dataset(cfg, seed=0)
    assert isinstance(ds, CompositeDataset) and len(ds) == 3 and not report.skipped
    for key in range(6):
        _check_sample(ds[key], 32)


def test_rgba_cutouts_are_read_as_they_are(tmp_path: Path) -> None:
    make_rgba_cutouts(tmp_path / "cutouts")
    make_dim_layout(tmp_path / "dim")
    cfg = DataConfig(fg_dir=str(tmp_path / "cutouts"), bg_dir=str(tmp_path / "dim" / "bg"), **SMALL)
    ds, _ = build_train_dataset(cfg, seed=0)
    assert [p.fg.name for p in ds.pairs] == ["item0.png", "item1.png", "item2.png"]  # type: ignore[attr-defined]
    assert all(p.alpha is None for p in ds.pairs)  # type: ignore[attr-defined]
    _check_sample(ds[0], 32)


def test_find_images_ignores_other_files_and_rejects_ambiguous_names(tmp_path: Path) -> None:
    make_dim_layout(tmp_path)
    assert sorted(find_images(tmp_path / "bg")) == ["bg0", "bg1"]
    Image.fromarray(random_image(8, 8, 0)).save(tmp_path / "bg" / "bg0.png")
    with pytest.raises(InputError, match="same name"):
        find_images(tmp_path / "bg")


def test_triplets_with_and_without_trimaps(tmp_path: Path) -> None:
    make_triplets(tmp_path / "a")
    make_triplets(tmp_path / "b", with_trimaps=False)
    for root, trimap_dir in ((tmp_path / "a", str(tmp_path / "a" / "trimap")), (tmp_path / "b", "")):
        cfg = DataConfig(image_dir=str(root / "image"), image_alpha_dir=str(root / "alpha"), image_trimap_dir=trimap_dir, **SMALL)
        ds, _ = build_train_dataset(cfg, seed=0)
        assert isinstance(ds, TripletDataset) and len(ds) == 3
        _check_sample(ds[4], 32)


def test_composites_and_triplets_together(tmp_path: Path) -> None:
    make_dim_layout(tmp_path / "dim")
    make_triplets(tmp_path / "tri")
    cfg = DataConfig(
        root=str(tmp_path / "dim"), image_dir=str(tmp_path / "tri" / "image"),
        image_alpha_dir=str(tmp_path / "tri" / "alpha"), **SMALL,
    )
    ds, _ = build_train_dataset(cfg, seed=0)
    assert isinstance(ds, KeyedConcat) and len(ds) == 6
    for key in (0, 4, 6 + 5):  # a composite, a triplet, a triplet in epoch 1
        _check_sample(ds[key], 32)


def test_image_repeat_oversamples_triplets(tmp_path: Path) -> None:
    make_dim_layout(tmp_path / "dim")
    make_triplets(tmp_path / "tri")
    cfg = DataConfig(
        root=str(tmp_path / "dim"), image_dir=str(tmp_path / "tri" / "image"),
        image_alpha_dir=str(tmp_path / "tri" / "alpha"), image_repeat=4, **SMALL,
    )
    ds, _ = build_train_dataset(cfg, seed=0)
    assert len(ds) == 3 + 3 * 4
    # Repeats of one triplet are different augmentations of it, not copies.
    assert not torch.equal(ds[3]["image"], ds[6]["image"])
    with pytest.raises(ValueError, match="image_repeat"):
        DataConfig(image_repeat=0)


# -- bad input --------------------------------------------------------------------------------


def _break(case: str, root: Path) -> Path:
    """Damage a DIM layout; returns the file the error must name."""
    if case == "missing alpha":
        (root / "alpha" / "obj1.png").unlink()
        return root / "fg" / "obj1.png"
    if case == "size mismatch":
        Image.fromarray(disc_alpha(10, 10)).save(root / "alpha" / "obj2.png")
        return root / "fg" / "obj2.png"
    if case == "unreadable fg":
        (root / "fg" / "obj0.png").write_bytes(b"not a png at all")
        return root / "fg" / "obj0.png"
    if case == "truncated bg":
        data = (root / "bg" / "bg1.jpg").read_bytes()
        (root / "bg" / "bg1.jpg").write_bytes(data[:20])
        return root / "bg" / "bg1.jpg"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing alpha", "size mismatch", "unreadable fg", "truncated bg"])
def test_bad_files_stop_with_their_name_or_are_skipped(tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    root = make_dim_layout(tmp_path)
    bad = _break(case, root)
    cfg = DataConfig(root=str(root), **SMALL)
    with pytest.raises(InputError, match=str(bad).replace(".", r"\.")):
        build_train_dataset(cfg, seed=0)
    with caplog.at_level(logging.WARNING, logger="diffmatte.data"):
        ds, report = build_train_dataset(cfg, seed=0, skip_bad=True)
    assert [p for p, _ in report.skipped] == [bad]
    assert str(bad) in caplog.text and "1 bad files skipped" in caplog.text
    _check_sample(ds[0], 32)


def test_rgb_foreground_without_alpha_folder_is_an_error(tmp_path: Path) -> None:
    root = make_dim_layout(tmp_path)
    with pytest.raises(InputError, match=r"obj0\.png: foreground has no alpha channel"):
        build_train_dataset(DataConfig(fg_dir=str(root / "fg"), bg_dir=str(root / "bg"), **SMALL), seed=0)


def test_folders_without_usable_pairs(tmp_path: Path) -> None:
    root = make_dim_layout(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable foreground/alpha pairs"):
        build_train_dataset(DataConfig(fg_dir=str(root / "fg"), alpha_dir=str(tmp_path / "empty"), bg_dir=str(root / "bg")), 0, skip_bad=True)
    with pytest.raises(InputError, match="no usable background images"):
        build_train_dataset(DataConfig(fg_dir=str(root / "fg"), alpha_dir=str(root / "alpha"), bg_dir=str(tmp_path / "empty")), 0)
    with pytest.raises(InputError, match="no such directory"):
        build_train_dataset(DataConfig(fg_dir=str(tmp_path / "nope"), bg_dir=str(root / "bg")), 0)
    with pytest.raises(InputError, match="no training data"):
        build_train_dataset(DataConfig(), 0)
    with pytest.raises(InputError, match="needs both"):
        build_train_dataset(DataConfig(fg_dir=str(root / "fg")), 0)


def test_triplet_size_mismatch_names_the_file(tmp_path: Path) -> None:
    root = make_triplets(tmp_path)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "trimap" / "GT01.png")
    with pytest.raises(InputError, match=r"GT01\.png"):
        scan_triplets(str(root / "image"), str(root / "alpha"), str(root / "trimap"), ScanReport(), skip_bad=False)


# -- augmentations ----------------------------------------------------------------------------


def test_merge_foregrounds_formula() -> None:
    fg1, fg2 = np.full((2, 2, 3), 200, np.uint8), np.full((2, 2, 3), 100, np.uint8)
    a1, a2 = np.array([[0, 255], [128, 0]], np.uint8), np.array([[255, 0], [128, 0]], np.uint8)
    fg, a = A.merge_foregrounds(fg1, a1, fg2, a2)
    w1, w2 = a1 / 255.0, a2 / 255.0
    assert np.array_equal(a, np.rint((1 - (1 - w1) * (1 - w2)) * 255).astype(np.uint8))
    assert np.array_equal(fg[..., 0], np.rint(200 * w1 + 100 * (1 - w1)).astype(np.uint8))


def test_generate_trimap_erodes_inside_the_known_regions() -> None:
    alpha = disc_alpha(80, 100, soft=2)
    for seed in range(5):
        t = A.generate_trimap(alpha, np.random.default_rng(seed), size=100, kernel_range=(1, 12))
        assert set(np.unique(t)) <= {0, 128, 255}
        assert (alpha[t == 255] == 255).all() and (alpha[t == 0] == 0).all()
        assert ((alpha > 0) & (alpha < 255) <= (t == 128)).all()  # every soft pixel is unknown


def test_erode_matches_a_disc_and_keeps_borders() -> None:
    mask = np.ones((21, 21), bool)
    mask[10, 10] = False
    eroded = A.erode(mask, 5)  # removes a disc of radius 2 around the hole
    assert not eroded[10, 8] and not eroded[8, 10] and eroded[10, 7] and eroded[0, 0]
    assert A.erode(np.ones((4, 4), bool), 9).all()


def test_crop_origin_centres_on_unknown_pixels() -> None:
    trimap = np.zeros((200, 300), np.uint8)
    trimap[100:120, 150:170] = 128  # 25 candidate centres on the 4-pixel grid
    rng = np.random.default_rng(0)
    for _ in range(10):
        y, x = A.crop_origin(trimap, 64, rng)
        assert (trimap[y : y + 64, x : x + 64] == 128).any()
    assert A.crop_origin(np.zeros((50, 50), np.uint8), 32, rng) is None
    few = np.zeros((200, 300), np.uint8)
    few[0:2, 0:2] = 128  # unknown only where no crop can be centred: a uniform random crop
    assert {A.crop_origin(few, 64, rng) for _ in range(5)} != {(0, 0)}
    assert A.upscale_for_crop(40, 100, 64) == (176, 70)
    assert A.upscale_for_crop(65, 100, 64) is None


def test_affine_identity_and_flip() -> None:
    a = random_image(9, 13, 0)
    ident = np.eye(3)
    assert np.array_equal(A.warp_affine(a, ident, Image.NEAREST), a)
    flip = A.random_affine_matrix(13, 9, np.random.default_rng(0), (1, 1), 0, 0, 1024, flip_prob=1.0)
    assert np.array_equal(A.warp_affine(a, flip, Image.NEAREST), a[::-1, ::-1])


def test_hsv_round_trip_and_jitter_range() -> None:
    rgb = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    assert np.allclose(A.hsv_to_rgb(A.rgb_to_hsv(rgb)), rgb, atol=1e-5)
    alpha = np.full((16, 16), 255, np.uint8)
    out = A.color_jitter(rgb, alpha, np.random.default_rng(1))
    assert out.shape == rgb.shape and 0 <= out.min() and out.max() <= 1 and not np.allclose(out, rgb)
    assert A.color_jitter(rgb, np.zeros_like(alpha), np.random.default_rng(1)) is rgb


# -- determinism and order --------------------------------------------------------------------


def test_samples_are_pure_functions_of_seed_and_key(tmp_path: Path) -> None:
    cfg = DataConfig(root=str(make_dim_layout(tmp_path)), **SMALL)
    ds, _ = build_train_dataset(cfg, seed=3)
    again, _ = build_train_dataset(cfg, seed=3)
    other, _ = build_train_dataset(cfg, seed=4)
    a, b, c = ds[7], again[7], other[7]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["image"], c["image"])
    assert not torch.equal(ds[1]["image"], ds[1 + len(ds)]["image"])  # same item, next epoch: new augmentation


def test_worker_processes_give_the_same_batches(tmp_path: Path) -> None:
    cfg = DataConfig(root=str(make_dim_layout(tmp_path, n_fg=4)), **SMALL)
    ds, _ = build_train_dataset(cfg, seed=0)

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = EpochSampler(ds, seed=0)
        sampler.set_position(1)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers, worker_init_fn=seed_worker)
        return [b["image"] for b in loader]

    main, workers = batches(0), batches(2)
    assert len(main) == 2 and all(torch.equal(x, y) for x, y in zip(main, workers, strict=True))


def test_epoch_sampler_resumes_mid_epoch_and_splits_ranks() -> None:
    data = list(range(10))
    full = EpochSampler(data, seed=5)  # type: ignore[arg-type]
    full.set_position(2)
    keys = list(full)
    assert sorted(k - 20 for k in keys) == data  # keys carry the epoch: 2 * len + index
    tail = EpochSampler(data, seed=5)  # type: ignore[arg-type]
    tail.set_position(2, start=4)
    assert list(tail) == keys[4:] and len(tail) == 6
    ranks = [EpochSampler(data, num_replicas=2, rank=r, seed=5) for r in (0, 1)]  # type: ignore[arg-type]
    shares = [set(s) for s in ranks]
    assert not shares[0] & shares[1] and len(shares[0] | shares[1]) == 10


# -- the shared data, as it is ------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED / "fg_cutouts_tuxpaint").is_dir(), reason="shared data not present")
def test_shared_cutouts_over_shared_backgrounds() -> None:
    cfg = DataConfig(
        fg_dir=str(SHARED / "fg_cutouts_tuxpaint"), bg_dir=str(SHARED / "backgrounds"),
        crop_size=64, max_side=256, trimap_size=320, erosion_range=(1, 15),
    )
    ds, report = build_train_dataset(cfg, seed=0)
    assert len(ds.pairs) == 149 and len(ds.backgrounds) == 46 and not report.skipped  # type: ignore[attr-defined]
    _check_sample(ds[0], 64)


@pytest.mark.skipif(not AM.is_dir(), reason="shared data not present")
def test_shared_alphamatting_triplets_and_validation_set() -> None:
    triplets = scan_triplets(
        str(AM / "input_training_lowres"), str(AM / "gt_training_lowres"),
        str(AM / "trimap_training_lowres" / "Trimap1"), ScanReport(), skip_bad=False,
    )
    assert len(triplets) == 27
    ds = TripletDataset(triplets, DataConfig(crop_size=64, max_side=256), seed=0)
    _check_sample(ds[0], 64)
    image, alpha, trimap, name = ValidationSet(triplets, max_side=128)[0]
    assert name == "GT01" and image.shape[0] == 3 and max(image.shape[1:]) == 128
    assert alpha.shape == trimap.shape == tuple(image.shape[1:]) and set(np.unique(trimap)) <= {0, 128, 255}
