"""Background photos for compositing: Debian's wallpaper packages, a manifest, a split that never leaks.

`make data` installs the wallpaper packages (``WALLPAPER_PACKAGES``) and writes the manifest
with :func:`build_manifest`: one row per usable picture with its file, Debian package,
licence (the package's ``License:`` fields), size, *group* and split.

Wallpaper packages ship the same picture several times (one file per screen size, and the
shared folder copies some of them), so pictures are grouped by content before splitting:
two files whose 16x16 grey thumbnails correlate above 0.97 are one group. The split is
drawn per group from a hash of the group's first file name, so a picture and its resized
copies are always on the same side and training and validation never share a background.
"""
from __future__ import annotations

import csv
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
VAL_FRACTION = 0.2


@dataclass(frozen=True)
class BackgroundEntry:
    file: str
    package: str
    licence: str
    width: int
    height: int
    group: str
    split: str  # "train" or "val"


def _thumbnail(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as img:
            img.draft("L", (64, 64))
            t = np.asarray(img.convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32).ravel()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    t = t - t.mean()
    norm = float(np.linalg.norm(t))
    return t / norm if norm > 1e-3 else None  # a flat colour is no background to learn from


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
                   val_fraction: float = VAL_FRACTION) -> list[BackgroundEntry]:
    """Every usable picture under ``dirs`` (wallpaper packages) and ``extra_dirs`` (folders with a MANIFEST.csv)."""
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
    for d in extra_dirs:
        shared = _shared_licences(Path(d))
        for p in sorted(Path(d).iterdir()):
            if p.suffix.lower() in _EXTENSIONS:
                files.append((p, f"shared:{Path(d).name}", shared.get(p.name, "")))
    kept: list[tuple[Path, str, str, int, int, np.ndarray]] = []
    for p, pkg, lic in files:
        try:
            with Image.open(p) as img:
                w, h = img.size
        except (OSError, ValueError):
            log.warning("skipping %s: not a readable image", p)
            continue
        if min(w, h) < MIN_SIDE:
            continue
        thumb = _thumbnail(p)
        if thumb is None:
            continue
        kept.append((p, pkg, lic, w, h, thumb))
    # group near-identical pictures (resized copies) so a split never separates them
    groups: list[int] = []
    leaders: list[int] = []
    for i, item in enumerate(kept):
        for g, j in enumerate(leaders):
            if float(item[5] @ kept[j][5]) > 0.97:
                groups.append(g)
                break
        else:
            groups.append(len(leaders))
            leaders.append(i)
    entries = []
    for (p, pkg, lic, w, h, _), g in zip(kept, groups, strict=True):
        key = kept[leaders[g]][0].name
        digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        entries.append(BackgroundEntry(str(p), pkg, lic, w, h, key, "val" if digest < val_fraction else "train"))
    return entries


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


def backgrounds_for(path: str | os.PathLike[str], split: str) -> list[Path]:
    """One file per picture (group) of a split that exists here; an empty split is an error.

    Of a picture's copies the smallest with a long side of at least 1600 px is taken (the
    largest if none is that big): big enough for 2 MP composites, quick to decode.
    """
    entries = [e for e in read_manifest(path) if e.split == split and Path(e.file).is_file()]
    if not entries:
        raise InputError(f"background manifest {path}: no {split} background exists here (run `make data`)")
    best: dict[str, BackgroundEntry] = {}
    for e in entries:
        cur = best.get(e.group)
        size, cur_size = max(e.width, e.height), max(cur.width, cur.height) if cur else 0
        if cur is None or (size >= 1600 and (cur_size < 1600 or size < cur_size)) or (cur_size < 1600 and size > cur_size):
            best[e.group] = e
    return [Path(best[g].file) for g in sorted(best)]
