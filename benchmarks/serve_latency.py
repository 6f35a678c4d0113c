"""`diffmatte serve` figures (issue 16): paint-to-refine latency and accuracy, and a load test.

Part ``edit``: on alphamatting.com training images (../shared, native ~800 px and upscaled 2x),
a first full matte, then one correction stroke (a disc of foreground or background painted where
the ground truth is all foreground or all background and the first matte is furthest from it).
For that edit it times the windowed re-matte (``refine_window``, 512 px window) against a full
re-run with the same trimap, steps and seed, and reports how far apart they are inside the
window (SAD / 1000 as in matting papers, mean and max absolute difference), how much the full
re-run moved pixels outside the window (what windowing leaves as they were), and both mattes'
SAD against the ground truth inside the window. It also times POST /api/refine end to end
(PNG upload and decode, re-matte, PNG encode) on a server in this process.

Times are the best of 2 (full re-run), 3 (windowed) and 2 (/api/refine) runs after a warm-up
run of the same size: the 2-core machine is shared, and the best run is the one least disturbed.
The load average at the start and end is recorded in the JSON.

Part ``load``: `diffmatte serve` in a subprocess (queue 4), 20 concurrent /api/matte requests
with small images; counts 200s and 503s, their latencies, and the server's peak RSS against its
RSS after one warm-up request.

    /work/bench-slot python benchmarks/serve_latency.py                # both parts, 2 threads
    /work/bench-slot python benchmarks/serve_latency.py --part edit --images GT02,GT04
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
DATA = REPO.parent / "shared" / "data" / "alphamatting_training_lowres"
sys.path.insert(0, str(REPO / "tests"))

from serve_helpers import png, request  # noqa: E402


def _print_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


def _load(name: str, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from diffmatte.io import load_pair, read_alpha

    image, trimap = load_pair(DATA / "input_training_lowres" / f"{name}.png",
                              DATA / "trimap_training_lowres" / "Trimap1" / f"{name}.png")
    gt = read_alpha(DATA / "gt_training_lowres" / f"{name}.png")
    if scale != 1:
        h, w = trimap.shape
        size = (round(w * scale), round(h * scale))
        image = np.asarray(Image.fromarray((image * 255 + 0.5).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC),
                           dtype=np.float32) / 255
        trimap = np.asarray(Image.fromarray((trimap * 2).astype(np.uint8)).resize(size, Image.Resampling.NEAREST),
                            dtype=np.float32) / 2
        gt = np.asarray(Image.fromarray(gt).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    return image, trimap, gt


def _stroke(
    trimap: np.ndarray, gt: np.ndarray, alpha: np.ndarray, radius: int
) -> tuple[np.ndarray, tuple[int, int, int], float]:
    """The trimap after one disc of paint where the ground truth is uniform and the matte worst."""
    from scipy import ndimage

    # The largest disc (from ``radius`` down) that fits inside uniform ground truth somewhere
    # in the unknown band: a careful user's brush.
    while True:
        disc = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius
        all_fg = ndimage.binary_erosion(gt >= 0.999, disc)
        all_bg = ndimage.binary_erosion(gt <= 0.001, disc)
        candidates = (trimap == 0.5) & (all_fg | all_bg)
        if candidates.any():
            break
        if radius <= 1:
            raise SystemExit("no place for a correction stroke")
        radius //= 2
    error = np.abs(alpha - gt)
    y, x = np.unravel_index(np.argmax(np.where(candidates, error, -1)), error.shape)
    value = 1.0 if all_fg[y, x] else 0.0
    out = trimap.copy()
    ys, xs = np.nonzero(disc)
    ys, xs = ys + y - radius, xs + x - radius
    keep = (ys >= 0) & (ys < out.shape[0]) & (xs >= 0) & (xs < out.shape[1])
    out[ys[keep], xs[keep]] = value
    return out, (int(y), int(x), radius), value


def part_edit(names: list[str], scales: list[float], steps_list: list[int], window: int, model_name: str) -> list[dict]:
    from diffmatte import load_model
    from diffmatte.refine import edit_box, refine_window
    from diffmatte.runtime import keep_freed_memory
    from diffmatte.server import BackgroundServer, ServerConfig

    keep_freed_memory()  # as `diffmatte serve` does
    model = load_model(model_name)
    header = ["image", "size", "steps", "window", "full re-run s", "windowed s", "speed-up", "/api/refine s",
              "window SAD vs full", "mean abs diff", "max abs diff", "full re-run: max change outside",
              "SAD vs GT: windowed", "SAD vs GT: full"]
    _print_row(header)
    print("|" + "---|" * len(header), flush=True)
    rows = []
    with BackgroundServer(ServerConfig(port=0), model, model_name) as server:
        for name in names:
            for scale in scales:
                image, trimap, gt = _load(name, scale)
                h, w = trimap.shape
                image_png = png((image * 255 + 0.5).astype(np.uint8))
                for steps in steps_list:
                    before = model.predict(image, trimap, steps, 0)  # also the warm-up for this size
                    edited, centre, value = _stroke(trimap, gt, before, round(12 * scale))
                    box = edit_box(trimap, edited)
                    assert box is not None
                    full_times = []
                    for _ in range(2):
                        t0 = time.perf_counter()
                        full = model.predict(image, edited, steps, 0)
                        full_times.append(time.perf_counter() - t0)
                    full_s = min(full_times)
                    times = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        result = refine_window(model, image, edited, before, box, steps=steps, seed=0, window=window)
                        times.append(time.perf_counter() - t0)
                    win = result.window
                    rs, cs = win.slices
                    # /api/refine as the page calls it: PNGs of image, trimap and matte up, PNG down.
                    tri_png = png(np.select([edited == 0, edited == 1], [0, 255], 128).astype(np.uint8))
                    alpha_png = png((before * 255 + 0.5).astype(np.uint8))
                    fields = {"steps": steps, "seed": 0, "window": window,
                              "box": f"{box.left},{box.top},{box.right},{box.bottom}"}
                    api_times = []
                    for _ in range(2):
                        t0 = time.perf_counter()
                        reply = request(server.url + "/api/refine", fields,
                                        {"image": image_png, "trimap": tri_png, "alpha": alpha_png})
                        api_times.append(time.perf_counter() - t0)
                        assert reply.status == 200, reply.body
                    diff = np.abs(result.alpha[rs, cs] - full[rs, cs])
                    outside = np.ones((h, w), bool)
                    outside[rs, cs] = False
                    moved = float(np.abs(full - before)[outside].max()) if outside.any() else 0.0
                    unknown = trimap[rs, cs] == 0.5
                    row = {
                        "image": name, "height": h, "width": w, "scale": scale, "steps": steps,
                        "stroke_yx_radius": centre, "stroke_value": value,
                        "edit_box": [box.left, box.top, box.right, box.bottom],
                        "window_box": [win.left, win.top, win.right, win.bottom],
                        "full_rerun_s": full_s, "full_rerun_all_s": full_times,
                        "windowed_s": min(times), "windowed_all_s": times,
                        "api_refine_s": min(api_times), "api_refine_all_s": api_times,
                        "window_sad_vs_full": float(diff.sum() / 1000), "window_mean_abs_diff": float(diff.mean()),
                        "window_max_abs_diff": float(diff.max()),
                        "window_max_abs_diff_in_unknown": float(diff[unknown].max()) if unknown.any() else 0.0,
                        "full_rerun_max_change_outside_window": moved,
                        "window_sad_vs_gt_windowed": float(np.abs(result.alpha[rs, cs] - gt[rs, cs]).sum() / 1000),
                        "window_sad_vs_gt_full": float(np.abs(full[rs, cs] - gt[rs, cs]).sum() / 1000),
                    }
                    rows.append(row)
                    _print_row([name, f"{w}x{h}", str(steps), f"{win.width}x{win.height}", f"{full_s:.2f}",
                                f"{row['windowed_s']:.2f}", f"{full_s / row['windowed_s']:.1f}x",
                                f"{row['api_refine_s']:.2f}", f"{row['window_sad_vs_full']:.2f}",
                                f"{row['window_mean_abs_diff']:.4f}", f"{row['window_max_abs_diff']:.3f}",
                                f"{moved:.1e}", f"{row['window_sad_vs_gt_windowed']:.2f}",
                                f"{row['window_sad_vs_gt_full']:.2f}"])
    return rows


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def part_load(model_name: str, threads: int, n: int, size: int, steps: int, queue: int) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "diffmatte", "serve", "--port", "0", "--model", model_name,
           "--threads", str(threads), "--queue", str(queue)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"(http://\S+)/ ", line)
        if not m:
            raise SystemExit(f"the server did not start: {line!r}")
        url = m.group(1)
        rng = np.random.default_rng(0)
        example = Image.open(REPO / "examples" / "lemur.jpg").convert("RGB")
        base = np.asarray(example.resize((size, size)))
        tri = np.asarray(Image.open(REPO / "examples" / "lemur_trimap.png").convert("L").resize((size, size),
                                                                                                 Image.Resampling.NEAREST))
        images = [png(np.clip(base.astype(int) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8))
                  for _ in range(n)]
        files_tri = png(tri)
        assert request(url + "/api/matte", {"steps": steps}, {"image": images[0], "trimap": files_tri}).status == 200
        rss_warm = _rss_kib(proc.pid, "VmRSS")

        def call(i: int) -> tuple[int, float, str]:
            t0 = time.perf_counter()
            r = request(url + "/api/matte", {"steps": steps, "seed": i}, {"image": images[i], "trimap": files_tri},
                        timeout=600)
            return r.status, time.perf_counter() - t0, r.headers.get("retry-after", "")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(call, range(n)))
        wall = time.perf_counter() - t0
        alive = request(url + "/api/health").status == 200
        peak = _rss_kib(proc.pid, "VmHWM")
        ok = [t for s, t, _ in results if s == 200]
        busy = [t for s, t, _ in results if s == 503]
        row = {
            "model": model_name, "threads": threads, "requests": n, "image": f"{size}x{size}", "steps": steps,
            "queue": queue, "ok": len(ok), "busy_503": len(busy), "other": n - len(ok) - len(busy),
            "ok_latency_s": {"min": min(ok), "median": statistics.median(ok), "max": max(ok)} if ok else None,
            "busy_latency_s_max": max(busy) if busy else None,
            "retry_after_s": sorted({int(ra) for s, _, ra in results if s == 503}),
            "wall_s": wall, "alive_after": alive, "rss_after_warmup_mib": rss_warm / 1024, "peak_rss_mib": peak / 1024,
        }
        print(f"\n{n} concurrent /api/matte ({size}x{size}, {steps} steps, queue {queue}, {model_name}, "
              f"{threads} threads):\n")
        _print_row(["200", "503", "other", "200 latency s (min / median / max)", "slowest 503 s", "Retry-After s",
                    "wall s", "server up after", "RSS after warm-up MiB", "peak RSS MiB"])
        print("|" + "---|" * 10)
        lat = row["ok_latency_s"]
        _print_row([str(len(ok)), str(len(busy)), str(row["other"]),
                    f"{lat['min']:.2f} / {lat['median']:.2f} / {lat['max']:.2f}" if lat else "-",
                    f"{row['busy_latency_s_max']:.3f}" if busy else "-", ",".join(map(str, row["retry_after_s"])),
                    f"{wall:.2f}", "yes" if alive else "NO", f"{row['rss_after_warmup_mib']:.0f}",
                    f"{row['peak_rss_mib']:.0f}"])
        return row
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["edit", "load", "all"], default="all")
    ap.add_argument("--model", default="default")
    ap.add_argument("--images", default="GT02,GT04,GT13,GT25")
    ap.add_argument("--scales", default="1,2", help="image scales (1.2: GT02 at 960 px wide)")
    ap.add_argument("--steps", default="3,10")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(RESULTS / "serve_latency.json"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from diffmatte import __version__

    out: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "threads": args.threads,
                 "model": args.model, "diffmatte": __version__, "cpu": _cpu(), "loadavg_start": os.getloadavg()}
    if args.part in ("edit", "all"):
        out["edit"] = part_edit(args.images.split(","), [float(s) for s in args.scales.split(",")],
                                [int(s) for s in args.steps.split(",")], args.window, args.model)
    if args.part in ("load", "all"):
        out["load"] = part_load(args.model, args.threads, 20, 192, 10, 4)
    out["loadavg_end"] = os.getloadavg()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.json}")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    main()
