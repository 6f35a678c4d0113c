"""The data engine: generators, benchmark trimaps, background manifest and split, synthetic dataset, valset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmatte.data import DataConfig, build_train_dataset
from diffmatte.data.backgrounds import backgrounds_for, build_manifest, read_manifest, read_train_only, write_manifest
from diffmatte.data.engine import GENERATORS, synthetic_composite
from diffmatte.data.synthetic.hair import make_hair
from diffmatte.data.synthetic.procedural import render_strokes, soft_threshold
from diffmatte.data.synthetic.recolour import recolour
from diffmatte.data.synthetic.structures import KINDS as STRUCTURE_KINDS
from diffmatte.data.synthetic.structures import make_structure
from diffmatte.data.synthetic.transparent import KINDS as TRANSPARENT_KINDS
from diffmatte.data.synthetic.transparent import make_transparent
from diffmatte.data.trimaps import benchmark_trimap, whole_object_trimap
from diffmatte.data.valset import build_valset
from diffmatte.errors import InputError


def _photo(seed: int = 0, h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], axis=-1) * 200
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def backgrounds(tmp_path: Path) -> list[Path]:
    out = []
    for i in range(4):
        p = tmp_path / "bg" / f"bg{i}.jpg"
        p.parent.mkdir(exist_ok=True)
        grid = np.random.default_rng(100 + i).integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(grid).resize((900, 700), Image.BICUBIC).save(p)  # distinct pictures
        out.append(p)
    return out


# -- generators ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPARENT_KINDS)
def test_transparent_is_mostly_see_through_and_seeded(kind: str) -> None:
    a = make_transparent(np.random.default_rng(3), 160, 192, _photo(), kind)
    b = make_transparent(np.random.default_rng(3), 160, 192, _photo(), kind)
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.fg, b.fg)
    assert a.whole_unknown
    assert a.alpha.shape == (160, 192) and a.fg.shape == (160, 192, 3)
    assert a.alpha.min() >= 0 and a.alpha.max() <= 1 and a.fg.min() >= 0 and a.fg.max() <= 1
    present = a.alpha[a.alpha > 0.01]
    assert present.size > 200
    # the point of the generator: most of the object lets the background through
    assert np.median(present) < 0.6


def test_hair_has_subpixel_strands_outside_the_body() -> None:
    layer = make_hair(np.random.default_rng(1), 256, 256, _photo())
    assert layer.opaque is not None
    outside = ~layer.opaque
    frac = (layer.alpha > 0.02) & (layer.alpha < 0.98) & outside
    assert frac.sum() > 500  # thousands of anti-aliased strand pixels, not a blob outline
    assert not layer.whole_unknown


def test_render_strokes_gives_partial_alpha_for_thin_lines() -> None:
    thin = render_strokes(32, 64, [(np.array([[2.0, 16.2], [60.0, 16.2]]), 0.25, 1.0)])
    wide = render_strokes(32, 64, [(np.array([[2.0, 16.0], [60.0, 16.0]]), 3.0, 1.0)])
    assert 0.1 < thin.sum(axis=0)[10:50].mean() < 0.5  # ~0.25 px of coverage per column
    assert 2.5 < wide.sum(axis=0)[10:50].mean() < 3.5


@pytest.mark.parametrize("kind", STRUCTURE_KINDS)
def test_structures(kind: str) -> None:
    layer = make_structure(np.random.default_rng(5), 160, 160, _photo(), kind)
    assert layer.alpha.shape == (160, 160)
    frac = ((layer.alpha > 0.02) & (layer.alpha < 0.98)).mean()
    assert frac > 0.005
    assert layer.kind == kind


def test_motion_blur_foreground_is_the_blurred_premultiplied_colour() -> None:
    from diffmatte.data.synthetic.structures import _blurred

    layer = make_structure(np.random.default_rng(2), 128, 128, _photo(), "motion")
    inside = layer.alpha > 0.995
    assert inside.any() and ((layer.alpha > 0.05) & (layer.alpha < 0.95)).sum() > 100
    for kind in ("motion", "defocus"):
        # One colour throughout: blurred premultiplied colour / blurred alpha is that colour
        # everywhere the smear reaches, however thin; a colour blurred with the alpha
        # (not divided by it) would darken towards the smear's edge.
        colour = np.array([0.9, 0.3, 0.1], np.float32)
        flat = _blurred(np.random.default_rng(3), 96, 96, np.broadcast_to(colour, (96, 96, 3)).copy(), kind)
        smear = (flat.alpha > 0.01) & (flat.alpha < 0.9)
        assert smear.sum() > 50, kind
        np.testing.assert_allclose(flat.fg[smear], np.broadcast_to(colour, flat.fg[smear].shape), atol=2e-3)
        # Two colours: in the smear between them the colour is their alpha-weighted mix.
        two = np.zeros((96, 96, 3), np.float32)
        two[:, :48] = (1.0, 0.0, 0.0)
        two[:, 48:] = (0.0, 0.0, 1.0)
        mixed = _blurred(np.random.default_rng(3), 96, 96, two, kind)
        seen = mixed.fg[(mixed.alpha > 0.2)]
        assert np.allclose(seen[:, 1], 0.0, atol=1e-3) and np.allclose(seen[:, 0] + seen[:, 2], 1.0, atol=2e-3), kind


def test_recolour_keeps_the_shape_and_takes_other_colours() -> None:
    shape = np.zeros((50, 40), np.uint8)
    shape[10:40, 10:30] = 255
    layer = recolour(np.random.default_rng(0), 100, 100, shape, _photo())
    assert layer.alpha.shape == (100, 100)
    assert 0.05 < (layer.alpha > 0.5).mean() < 0.5
    assert layer.fg.std() > 0.02  # colours from the photo, not a flat fill


def test_soft_threshold_edge_is_one_pixel_wide() -> None:
    xx = np.tile(np.arange(40, dtype=np.float32), (8, 1))
    a = soft_threshold(xx * 0.1, 2.0)  # edge at x = 20
    row = a[4]
    assert row[:19].min() == 1.0 and row[21:].max() == 0.0


# -- trimaps ------------------------------------------------------------------------------


def test_benchmark_trimap_band_grows_with_radius() -> None:
    alpha = np.zeros((100, 100), np.uint8)
    alpha[30:70, 30:70] = 255
    narrow, wide = benchmark_trimap(alpha, 2), benchmark_trimap(alpha, 10)
    assert (wide == 128).sum() > (narrow == 128).sum() > 0
    assert narrow[50, 50] == 255 and narrow[5, 5] == 0
    assert (wide[30:70, 30] == 128).all()  # the hard edge itself is unknown
    assert wide[50, 38] == 128 and wide[50, 45] == 255 and narrow[50, 38] == 255


def test_whole_object_trimap_marks_all_of_a_transparent_object_unknown() -> None:
    alpha = np.zeros((80, 80), np.uint8)
    alpha[20:60, 20:60] = 40  # faint glass
    opaque = np.zeros((80, 80), bool)
    alpha[50:60, 30:50] = 255
    opaque[50:60, 30:50] = True
    t = whole_object_trimap(alpha, opaque, 3)
    assert (t[20:50, 20:60] == 128).all()
    assert (t == 255).sum() > 0 and (t[alpha == 40] != 255).all()
    assert t[0, 0] == 0


# -- backgrounds --------------------------------------------------------------------------


def test_manifest_groups_resized_copies_and_never_splits_them(tmp_path: Path) -> None:
    folder = tmp_path / "wall"
    folder.mkdir()
    for i in range(12):
        grid = np.random.default_rng(i).integers(0, 256, (5, 5, 3), dtype=np.uint8)
        img = Image.fromarray(grid).resize((1000, 800), Image.BICUBIC)  # pictures with distinct layouts
        img.save(folder / f"pic{i}_1000.jpg")
        img.resize((800, 640)).save(folder / f"pic{i}_800.jpg")  # the same picture at another size
    Image.new("RGB", (900, 900), (10, 10, 10)).save(folder / "flat.png")  # flat: no use
    Image.fromarray(_photo(99, 100, 100)).save(folder / "icon.png")  # too small
    entries = build_manifest(dirs=(str(folder),), val_fraction=0.5)
    assert len(entries) == 24
    assert len({e.group for e in entries}) == 12
    for g in {e.group for e in entries}:
        assert len({e.split for e in entries if e.group == g}) == 1
    path = tmp_path / "m.csv"
    write_manifest(entries, path)
    assert read_manifest(path) == entries
    train, val = backgrounds_for(path, "train"), backgrounds_for(path, "val")
    assert len(train) + len(val) == 12  # one file per picture
    assert not {p.name.split("_")[0] for p in train} & {p.name.split("_")[0] for p in val}


def _picture(seed: int, size: tuple[int, int] = (1200, 800)) -> Image.Image:
    grid = np.random.default_rng(seed).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize(size, Image.BICUBIC)


def test_split_is_by_content_not_by_file_name(tmp_path: Path) -> None:
    # The real failure cases of the name-keyed grouping: Plasma ships many pictures under the
    # same file names (one folder each), one picture at several sizes and aspect crops, and the
    # shared folder copies some wallpapers under new names.
    wall, shared = tmp_path / "wallpapers", tmp_path / "shared"
    shared.mkdir()
    for k, name in enumerate(("Altai", "Autumn", "Kite", "Volna", "Flow", "Cascade")):
        images = wall / name / "contents" / "images"
        images.mkdir(parents=True)
        pic = _picture(k, (1600, 900))
        pic.save(images / "1920x1080.jpg")  # same name, different picture, in every folder
        pic.resize((1280, 720)).save(images / "1280x720.jpg")  # same picture, another size
        pic.crop((200, 0, 1400, 900)).save(images / "1200x900.jpg")  # a centre crop at another aspect
    _picture(0, (1600, 900)).resize((1200, 675)).save(shared / "plasma_altai.jpg")  # a copy under a new name
    _picture(1, (1600, 900)).save(tmp_path / "seen_elsewhere.jpg")
    entries = build_manifest(dirs=(str(wall),), extra_dirs=(str(shared),), val_fraction=1.0,
                             train_only={str(wall / "Autumn" / "contents" / "images" / "1280x720.jpg")})
    by_folder: dict[str, set[str]] = {}
    for e in entries:
        by_folder.setdefault(Path(e.file).parts[-4] if "contents" in e.file else "shared", set()).add(e.group)
    assert all(len(groups) == 1 for groups in by_folder.values())  # sizes and crops are one picture
    assert len({next(iter(g)) for k, g in by_folder.items() if k != "shared"}) == 6  # names play no part
    assert by_folder["shared"] == by_folder["Altai"]  # the renamed copy is found by its content
    split = {e.group: e.split for e in entries}
    assert split[next(iter(by_folder["Altai"]))] == "train"  # a shared-folder copy: phases 1-3 trained on it
    assert split[next(iter(by_folder["Autumn"]))] == "train"  # one file on the train-only list takes its picture
    assert {split[next(iter(by_folder[k]))] for k in ("Kite", "Volna", "Flow", "Cascade")} == {"val"}
    # group names are content ids: renaming every file changes none of them
    renamed = tmp_path / "renamed"
    for e in entries:
        if "contents" in e.file:
            dst = renamed / f"x{abs(hash(e.file))}" / "pic.jpg"
            dst.parent.mkdir(parents=True)
            Image.open(e.file).save(dst)
    assert {e.group for e in build_manifest(dirs=(str(renamed),))} == {e.group for e in entries}


def test_near_duplicates_chain_into_one_picture(tmp_path: Path) -> None:
    # A, A slightly brightened, and that brightened further: grouping is transitive.
    folder = tmp_path / "w"
    folder.mkdir()
    base = np.asarray(_picture(7), np.float32)
    for k in range(4):
        Image.fromarray(np.clip(base * (1 + 0.15 * k) + 6 * k, 0, 255).astype(np.uint8)).save(folder / f"v{k}.png")
    _picture(8).save(folder / "other.png")
    entries = build_manifest(dirs=(str(folder),))
    groups = {Path(e.file).stem: e.group for e in entries}
    assert len({groups[f"v{k}"] for k in range(4)}) == 1 and groups["other"] != groups["v0"]


SHIPPED_MANIFEST = Path(__file__).resolve().parents[1] / "data" / "backgrounds.csv"
TRAIN_ONLY = SHIPPED_MANIFEST.with_name("train_only_backgrounds.txt")


def test_the_committed_split_holds_out_only_pictures_no_run_trained_on() -> None:
    # The validation set that chooses checkpoints (runs/valset) draws its backgrounds from this
    # manifest's val split: no file of a val picture was in any training phase (the shared folder,
    # phases 1-3; the list, phases 4-5), and each picture lies on one side only.
    entries = read_manifest(SHIPPED_MANIFEST)
    seen = read_train_only(TRAIN_ONLY)
    sides: dict[str, set[str]] = {}
    for e in entries:
        sides.setdefault(e.group, set()).add(e.split)
        if e.split == "val":
            assert e.file not in seen and not e.package.startswith("shared:"), e.file
    assert all(len(s) == 1 for s in sides.values())
    assert {e.file for e in entries if e.split == "train"} >= {e.file for e in entries if e.file in seen}
    assert sum(s == {"val"} for s in sides.values()) >= 10


def test_manifest_errors_are_specific(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_manifest(tmp_path / "missing.csv")
    path = tmp_path / "m.csv"
    write_manifest([], path)
    with pytest.raises(InputError, match="no val background"):
        backgrounds_for(path, "val")


# -- composites, dataset, validation set ------------------------------------------------------


@pytest.mark.parametrize("generator", GENERATORS[:3])
def test_synthetic_composite_is_the_compositing_equation(generator: str, backgrounds: list[Path]) -> None:
    c = synthetic_composite(np.random.default_rng(0), 120, 150, backgrounds, (1, 1, 1, 0), generator=generator)
    assert c.image.shape == (120, 150, 3) and c.alpha.shape == (120, 150) and c.image.dtype == np.uint8
    assert set(np.unique(c.trimap)) <= {0, 128, 255} and (c.trimap == 128).any()
    # where the alpha is opaque the image is the foreground
    solid = c.alpha == 255
    if solid.any():
        assert np.abs(c.image[solid].astype(int) - c.fg[solid].astype(int)).max() <= 1
    # every fractional alpha is inside the unknown region
    assert (c.trimap[(c.alpha > 0) & (c.alpha < 255)] == 128).mean() > 0.95


def test_refractive_glass_shows_the_displaced_background_through_a_low_alpha(backgrounds: list[Path]) -> None:
    from diffmatte.data.engine import seen_through

    rng = np.random.default_rng(3)
    c = synthetic_composite(rng, 160, 200, backgrounds, (1, 1, 1, 0), generator="refractive")
    assert c.kind == "refractive"
    inside = c.trimap == 128
    assert inside.mean() > 0.1 and (c.trimap == 255).mean() < 0.1  # the whole object is unknown
    assert np.median(c.alpha[inside]) < 0.15 * 255  # near transparent in the body
    # the image is not alpha * F + (1 - alpha) * B with B straight behind: B is displaced first
    ramp = np.broadcast_to(np.linspace(0, 1, 50, dtype=np.float32)[None, :, None], (40, 50, 3)).copy()
    shift = np.zeros((40, 50, 2), np.float32)
    shift[..., 1] = 10.0
    moved = seen_through(ramp, shift, None)
    assert np.allclose(moved[:, :30], ramp[:, 10:40], atol=1e-5)  # each pixel shows the one 10 px to its right
    tinted = seen_through(ramp, np.zeros_like(shift), np.full((40, 50, 3), 0.5, np.float32))
    assert np.allclose(tinted, ramp * 0.5, atol=1e-6)


def test_synthetic_dataset_is_keyed_and_cropped(backgrounds: list[Path]) -> None:
    bg_dir = backgrounds[0].parent
    cfg = DataConfig(bg_dir=str(bg_dir), fg_dir="", synth_count=6, crop_size=64, synth_long_side=(96, 160),
                     num_workers=0)
    with pytest.raises(InputError, match="fg_dir"):
        build_train_dataset(cfg, seed=1)
    fg = bg_dir.parent / "fg"
    fg.mkdir()
    rgba = np.zeros((80, 80, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[20:60, 20:60, 3] = 255
    Image.fromarray(rgba).save(fg / "square.png")
    ds, _ = build_train_dataset(DataConfig(**{**cfg.__dict__, "fg_dir": str(fg)}), seed=1)
    assert len(ds) == 4 + 6
    a, b = ds[7], ds[7]
    assert a["image"].shape == (3, 64, 64) and a["alpha"].shape == (1, 64, 64)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert not np.array_equal(ds[7]["alpha"].numpy(), ds[8]["alpha"].numpy())


def test_data_config_checks_engine_fields() -> None:
    with pytest.raises(ValueError, match="synth_weights"):
        DataConfig(synth_weights=(0, 0, 0, 0))
    with pytest.raises(ValueError, match="synth_long_side"):
        DataConfig(synth_long_side=(500, 100))
    with pytest.raises(ValueError, match="benchmark_trimap_prob"):
        DataConfig(benchmark_trimap_prob=2.0)


def test_valset_uses_only_val_backgrounds(tmp_path: Path, backgrounds: list[Path], monkeypatch) -> None:
    import diffmatte.data.valset as V

    monkeypatch.setattr(V, "MEGAPIXELS", (0.02, 0.03))  # tiny, for speed
    entries = build_manifest(dirs=(str(backgrounds[0].parent),), val_fraction=0.5)
    for i, e in enumerate(entries):  # force a known split: two and two
        entries[i] = type(e)(**{**e.__dict__, "split": "val" if i < 2 else "train"})
    manifest = tmp_path / "m.csv"
    write_manifest(entries, manifest)
    gt = tmp_path / "gt"
    for sub in ("input_training_lowres", "gt_training_lowres"):
        (gt / sub).mkdir(parents=True)
    Image.fromarray(_photo(7, 60, 80)).save(gt / "input_training_lowres" / "GT19.png")
    alpha = np.zeros((60, 80), np.uint8)
    alpha[15:45, 20:60] = 255
    alpha[15:45, 18:20] = 128
    Image.fromarray(alpha).save(gt / "gt_training_lowres" / "GT19.png")
    out = tmp_path / "valset"
    rows = build_valset(out, manifest, gt, gt_names=("GT19",), procedural={"transparent": 2, "hair": 1})
    names = [r["name"] for r in rows]
    assert names == ["GT19", "transparent_01", "transparent_02", "hair_01"]
    val_files = {e.file for e in entries if e.split == "val"}
    assert rows[0]["background"] in val_files
    for sub in ("image", "alpha", "trimap", "fg"):
        assert sorted(p.stem for p in (out / sub).glob("*.png")) == sorted(names)
    meta = json.loads((out / "manifest.json").read_text())
    assert [r["name"] for r in meta["images"]] == names
    # deterministic: a rebuild gives the same pixels
    first = np.asarray(Image.open(out / "image" / "transparent_01.png"))
    build_valset(out, manifest, gt, gt_names=("GT19",), procedural={"transparent": 2, "hair": 1})
    assert np.array_equal(first, np.asarray(Image.open(out / "image" / "transparent_01.png")))


def test_data_cli_refuses_to_write_over_files_it_did_not_make(tmp_path: Path, capsys) -> None:
    from diffmatte.cli import main

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.png").write_bytes(b"x")
    for argv, message in (
        (["data", "backgrounds", "-o", str(notes)], "is not a background manifest"),
        (["data", "valset", "-o", str(foreign), "--manifest", str(notes), "--gt", str(tmp_path)], "no input_training_lowres"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err
    gt = tmp_path / "gt"
    for sub in ("input_training_lowres", "gt_training_lowres"):
        (gt / sub).mkdir(parents=True)
    with pytest.raises(SystemExit):
        main(["data", "valset", "-o", str(foreign), "--manifest", str(notes), "--gt", str(gt)])
    assert "is not a validation set made by this command" in capsys.readouterr().err
    assert notes.read_text() == "mine" and (foreign / "holiday.png").read_bytes() == b"x"


def test_the_manifest_alone_feeds_the_data_engine(tmp_path: Path, backgrounds: list[Path]) -> None:
    # A manifest without foreground cutouts: synthetic composites only (it used to be refused
    # as composites without data.fg_dir).
    entries = build_manifest(dirs=(str(backgrounds[0].parent),), val_fraction=0.5)
    entries = [type(e)(**{**e.__dict__, "split": "train"}) for e in entries]
    manifest = tmp_path / "m.csv"
    write_manifest(entries, manifest)
    cfg = DataConfig(bg_manifest=str(manifest), synth_count=3, crop_size=64, synth_long_side=(96, 160),
                     synth_weights=(1, 1, 1, 0), num_workers=0)
    ds, _ = build_train_dataset(cfg, seed=1)
    assert len(ds) == 3 and ds[0]["image"].shape == (3, 64, 64)
    with pytest.raises(InputError, match="fg_dir"):
        build_train_dataset(DataConfig(bg_manifest=str(manifest), num_workers=0), seed=1)
