"""Background photos for compositing: Debian's wallpaper packages, a manifest, a split that never leaks.

`make data` installs the wallpaper packages (``WALLPAPER_PACKAGES``) and writes the manifest
with :func:`build_manifest`: one row per usable picture with its file, Debian package,
licence (the package's ``License:`` fields), size, *group* and split.

Wallpaper packages ship the same picture several times (one file per screen size, Plasma one
folder per picture with crops at other aspects, and the shared folder copies some of them), so
files are grouped by *content* before splitting, never by name: two files are one picture when
their 16x16 grey thumbnails, of the whole frame or of its central square, correlate above 0.95,
or when they sit in one Plasma picture folder; grouping is transitive. A group is named by a
hash of its content and split as a whole, so training and validation never share a picture.
Every file some earlier training run used (the shared folder, ``data/train_only_backgrounds.txt``)
is train-only: validation stays unseen by every model the project has trained.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..writers import atomic_write

__all__ = [
    "WALLPAPER_PACKAGES",
    "WALLPAPER_DIRS",
    "BackgroundEntry",
    "Fingerprint",
    "fingerprint",
    "same_picture",
    "group_pictures",
    "read_train_only",
    "build_manifest",
    "write_manifest",
    "read_manifest",
    "backgrounds_for",
]

log = logging.getLogger(__name__)

WALLPAPER_PACKAGES = (
    "gnome-backgrounds", "mate-backgrounds", "plasma-workspace-wallpapers", "ukui-wallpapers", "desktop-base",
    "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "sway-backgrounds", "cinnamon-desktop-data",
)
WALLPAPER_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers", "/usr/share/desktop-base")
_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 600  # smaller files are previews or icons
# Of the pictures no training run has seen, the share held out for validation. All of them: the
# train side is every picture the packaged model's phases used (data/train_only_backgrounds.txt).
VAL_FRACTION = 1.0


@dataclass(frozen=True)
class BackgroundEntry:
    file: str
    package: str
    licence: str
    width: int
    height: int
    group: str
    split: str  # "train" or "val"


@dataclass(frozen=True)
class Fingerprint:
    """What a picture looks like, independent of its file name, size and (centred) crop."""

    whole: np.ndarray  # 16x16 grey thumbnail of the whole picture, zero mean, unit norm
    centre: np.ndarray  # the same of its central square: equal for centre crops of one photo at other aspects

    @property
    def picture_id(self) -> str:
        """A 64-bit average hash of the central square: a short name for the picture's content."""
        small = self.centre.reshape(16, 16).reshape(8, 2, 8, 2).mean(axis=(1, 3)).ravel()
        bits = "".join("1" if v > 0 else "0" for v in small)
        return f"p{int(bits, 2):016x}"


def _normalised(grey: Image.Image) -> np.ndarray | None:
    t = np.asarray(grey.resize((16, 16), Image.BILINEAR), dtype=np.float32).ravel()
    t = t - t.mean()
    norm = float(np.linalg.norm(t))
    return t / norm if norm > 1e-3 else None  # a flat colour is no background to learn from


def fingerprint(path: Path) -> Fingerprint | None:
    """The picture's fingerprint, or None for an unreadable file or a flat colour."""
    try:
        with Image.open(path) as img:
            img.draft("L", (128, 128))
            grey = img.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    w, h = grey.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    whole, centre = _normalised(grey), _normalised(grey.crop((left, top, left + side, top + side)))
    return None if whole is None or centre is None else Fingerprint(whole, centre)


SAME_PICTURE = 0.95  # thumbnail correlation above which two files are one picture


def same_picture(a: Fingerprint, b: Fingerprint) -> bool:
    """One photo at two sizes (whole thumbnails agree) or two centre crops of it (central squares agree)."""
    return float(a.whole @ b.whole) > SAME_PICTURE or float(a.centre @ b.centre) > SAME_PICTURE


def _plasma_folder(path: Path) -> str | None:
    """Plasma ships one picture as ``<Name>/contents/images*/<size>.jpg``: the folder names the picture."""
    parts = path.parts
    for k in range(len(parts) - 2, 0, -1):
        if parts[k] == "contents" and parts[k + 1].startswith("images"):
            return str(Path(*parts[:k]))
    return None


def group_pictures(paths: list[Path], prints: list[Fingerprint]) -> list[int]:
    """A group index per file: files joined by :func:`same_picture` or a shared Plasma folder, transitively.

    Transitive (union-find), so a chain of near-duplicates is one picture however its files are
    named or ordered; the file name plays no part.
    """
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    folders: dict[str, int] = {}
    for i, p in enumerate(paths):
        folder = _plasma_folder(p)
        if folder is not None:
            parent[root(i)] = root(folders.setdefault(folder, i))
    for i in range(len(paths)):
        for j in range(i):
            if root(i) != root(j) and same_picture(prints[i], prints[j]):
                parent[root(i)] = root(j)
    roots: dict[int, int] = {}
    return [roots.setdefault(root(i), len(roots)) for i in range(len(paths))]


def read_train_only(path: str | os.PathLike[str]) -> set[str]:
    """The files a list names (one path a line, ``#`` comments): pictures some training run has seen."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"train-only list {path}: no such file")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def _package_of(path: Path) -> str:
    try:
        out = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.split(":", 1)[0].strip() if out.returncode == 0 else ""


def _licence_of(package: str) -> str:
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    if not package or not copyright_file.is_file():
        return ""
    found = re.findall(r"^License:\s*(\S.*)$", copyright_file.read_text(errors="replace"), flags=re.M)
    return " | ".join(dict.fromkeys(x.strip() for x in found))


def _shared_licences(folder: Path) -> dict[str, str]:
    manifest = folder / "MANIFEST.csv"
    if not manifest.is_file():
        return {}
    with manifest.open(newline="") as f:
        return {row["file"]: row.get("license", "") for row in csv.DictReader(f)}


def build_manifest(dirs: tuple[str, ...] = WALLPAPER_DIRS, extra_dirs: tuple[str, ...] = (),
                   val_fraction: float = VAL_FRACTION, train_only: set[str] | None = None) -> list[BackgroundEntry]:
    """Every usable picture under ``dirs`` (wallpaper packages) and ``extra_dirs`` (folders with a MANIFEST.csv).

    A picture (a group of files, :func:`group_pictures`) is ``train`` if any of its files is in
    ``extra_dirs`` or in ``train_only`` (files some earlier training run used: it can never
    validate again); the others are drawn with ``val_fraction`` from a hash of their content id.
    """
    files: list[tuple[Path, str, str]] = []  # (path, package, licence)
    licences: dict[str, str] = {}
    for d in dirs:
        for dirpath, dirnames, filenames in os.walk(d):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(_EXTENSIONS):
                    p = Path(dirpath) / name
                    pkg = _package_of(p)
                    if pkg not in licences:
                        licences[pkg] = _licence_of(pkg)
                    files.append((p, pkg, licences[pkg]))
    extra_files: set[str] = set()
    for d in extra_dirs:
        shared = _shared_licences(Path(d))
        for p in sorted(Path(d).iterdir()):
            if p.suffix.lower() in _EXTENSIONS:
                files.append((p, f"shared:{Path(d).name}", shared.get(p.name, "")))
                extra_files.add(str(p))
    kept: list[tuple[Path, str, str, int, int]] = []
    prints: list[Fingerprint] = []
    for p, pkg, lic in files:
        try:
            with Image.open(p) as img:
                w, h = img.size
        except (OSError, ValueError):
            log.warning("skipping %s: not a readable image", p)
            continue
        if min(w, h) < MIN_SIDE:
            continue
        fp = fingerprint(p)
        if fp is None:
            continue
        kept.append((p, pkg, lic, w, h))
        prints.append(fp)
    groups = group_pictures([k[0] for k in kept], prints)
    seen = (train_only or set()) | extra_files
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keys: dict[int, tuple[str, str]] = {}
    for g, idx in members.items():
        # the group's name is its largest file's content id: the same picture, the same name
        largest = max(idx, key=lambda i: (kept[i][3] * kept[i][4], str(kept[i][0])))
        key = prints[largest].picture_id
        if any(str(kept[i][0]) in seen for i in idx):
            split = "train"
        else:
            digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            split = "val" if digest < val_fraction else "train"
        keys[g] = (key, split)
    return [BackgroundEntry(str(p), pkg, lic, w, h, *keys[g]) for (p, pkg, lic, w, h), g in zip(kept, groups, strict=True)]


def write_manifest(entries: list[BackgroundEntry], path: str | os.PathLike[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "package", "licence", "width", "height", "group", "split"])
            for e in entries:
                writer.writerow([e.file, e.package, e.licence, e.width, e.height, e.group, e.split])

    atomic_write(path, write)


def read_manifest(path: str | os.PathLike[str]) -> list[BackgroundEntry]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"background manifest {path}: no such file (run `make data` to build it)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return [BackgroundEntry(r["file"], r["package"], r["licence"], int(r["width"]), int(r["height"]),
                                r["group"], r["split"]) for r in rows]
    except (KeyError, ValueError) as e:
        raise InputError(f"background manifest {path}: malformed row ({e})") from e


def _located(file: str, manifest: Path) -> Path:
    """A manifest's file: as written (absolute, or relative to the current folder), else relative to the manifest."""
    p = Path(file)
    if p.is_absolute() or p.is_file():
        return p
    return manifest.parent / p


def backgrounds_for(path: str | os.PathLike[str], split: str) -> list[Path]:
    """One file per picture (group) of a split that exists here; an empty split is an error.

    Of a picture's copies the smallest with a long side of at least 1600 px is taken (the
    largest if none is that big): big enough for 2 MP composites, quick to decode.
    """
    entries = [dataclasses.replace(e, file=str(_located(e.file, Path(path)))) for e in read_manifest(path)]
    entries = [e for e in entries if e.split == split and Path(e.file).is_file()]
    if not entries:
        raise InputError(f"background manifest {path}: no {split} background exists here (run `make data`)")
    best: dict[str, BackgroundEntry] = {}
    for e in entries:
        cur = best.get(e.group)
        size, cur_size = max(e.width, e.height), max(cur.width, cur.height) if cur else 0
        if cur is None or (size >= 1600 and (cur_size < 1600 or size < cur_size)) or (cur_size < 1600 and size > cur_size):
            best[e.group] = e
    return [Path(best[g].file) for g in sorted(best)]
