"""Memory of `diffmatte video` over a long 1080p clip: the resident set, frame by frame.

Makes a 1920x1080 clip (default 240 frames = 10 s at 24 frames/s: an alphamatting
foreground moving over a panning background, H.264) and its first frame's trimap under
runs/, runs the real command on it (default model and settings, alpha to .mkv and the cutout
to .mov), and reads the child's VmRSS from /proc each time it reports a frame (-v). Writes
the JSON and a plot of RSS against the frame index.

    PATH=.venv/bin:$PATH python benchmarks/video_memory.py --json benchmarks/results/video_memory.json \
        --plot docs/video_memory.png
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

AM = Path("../shared/data/alphamatting_training_lowres")


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> Path:
    from diffmatte.data.backgrounds import backgrounds_for
    from diffmatte.data.clips import moving_clip
    from diffmatte.data.trimaps import benchmark_trimap
    from diffmatte.foreground import estimate_foreground
    from diffmatte.video.container import FrameSink

    img = np.asarray(Image.open(AM / "input_training_lowres" / "GT02.png").convert("RGB"))
    gt = np.asarray(Image.open(AM / "gt_training_lowres" / "GT02.png").convert("L")).astype(np.float32) / 255.0
    fg = estimate_foreground(img.astype(np.float32) / 255.0, gt)
    bg = np.asarray(Image.open(backgrounds_for("data/backgrounds.csv", "val")[3]).convert("RGB"))
    with FrameSink(path, "composite", Fraction(24), (size[1], size[0])) as sink:  # H.264, crf 16
        for i, f in enumerate(moving_clip(fg, gt, bg, frames, size, seed=7)):
            if i == 0:
                a0 = np.rint(f.alpha * 255).astype(np.uint8)
                Image.fromarray(benchmark_trimap(a0, 0.01 * max(size))).save(path.with_name(path.stem + "_trimap.png"))
            sink.write(f.image)
        sink.commit()
    return path


def rss_mib(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/video_memory.json"))
    ap.add_argument("--plot", type=Path, default=Path("docs/video_memory.png"))
    ap.add_argument("--work", type=Path, default=Path("runs/video_memory"))
    args = ap.parse_args()
    clip = args.work / f"clip_{args.frames}.mp4"
    if not clip.exists():
        make_clip(clip, args.frames, (1080, 1920))
    trimap = clip.with_name(clip.stem + "_trimap.png")
    cmd = ["diffmatte", "video", str(clip), "--trimap", str(trimap), "-o", str(args.work / "alpha.mkv"),
           "--cutout", str(args.work / "cut.mov"), "--overwrite", "-v"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, bufsize=1)
    rows, peak, summary = [], 0.0, ""
    assert proc.stderr is not None
    for line in proc.stderr:
        rss = rss_mib(proc.pid) if proc.poll() is None else float("nan")
        peak = max(peak, rss) if rss == rss else peak
        m = re.match(r"frame (\d+): (\d+) steps.*?([\d.]+) s$", line.strip())
        if m:
            rows.append({"frame": int(m.group(1)), "steps": int(m.group(2)), "seconds": float(m.group(3)),
                         "rss_mib": rss, "elapsed_s": time.perf_counter() - started})
        elif "frames in" in line:
            summary = line.strip()
    code = proc.wait()
    if code:
        raise SystemExit(f"diffmatte video failed ({code})")
    rss = np.array([r["rss_mib"] for r in rows])
    tenth = max(1, len(rss) // 10)
    result = {
        "command": " ".join(cmd), "machine": platform.processor() or platform.machine(), "frames": len(rows),
        "size": "1920x1080", "summary": summary, "peak_rss_mib": float(np.nanmax(rss)),
        "rss_after_first_tenth_mib": {"min": float(np.nanmin(rss[tenth:])), "max": float(np.nanmax(rss[tenth:]))},
        "rss_first_tenth_max_mib": float(np.nanmax(rss[:tenth])), "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([r["frame"] for r in rows], rss, lw=1.2)
    ax.set_xlabel("frame")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_ylim(0, max(2048, float(np.nanmax(rss)) * 1.1))
    ax.axhline(2048, color="grey", ls="--", lw=0.8)
    ax.set_title(f"diffmatte video, 1920x1080, {len(rows)} frames (alpha .mkv + cutout .mov)")
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"{len(rows)} frames; peak RSS {result['peak_rss_mib']:.0f} MiB; after the first tenth "
          f"{result['rss_after_first_tenth_mib']['min']:.0f}-{result['rss_after_first_tenth_mib']['max']:.0f} MiB; "
          f"{summary}")
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
