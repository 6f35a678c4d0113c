"""Shared by speed.py and memory.py: one (preset, size) measured in a fresh subprocess."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(preset: str, h: int, w: int, steps_list: list[int], repeats: int, threads: int, breakdown: bool) -> dict:
    """Seconds of encoder / decoder step / whole sample per step count, and peak RSS (MiB)."""
    import torch

    from diffmatte import DiffMatte

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DiffMatte.from_config(preset)
    net = model.net
    image = torch.rand(1, 3, h, w)
    trimap = torch.full((1, 1, h, w), 0.5)
    trimap[..., : w // 4] = 0
    trimap[..., -w // 4 :] = 1
    noise = torch.randn(1, 1, h, w)

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    row: dict = {"preset": preset, "height": h, "width": w, "megapixels": round(h * w / 1e6, 2), "threads": threads}
    if breakdown:
        with torch.inference_mode():
            encoded = net.encode(image, trimap)
            row["encoder_s"] = best(lambda: net.encode(image, trimap))
            t = torch.ones(1)
            row["decoder_step_s"] = best(lambda: net.denoise(encoded, noise, t))
            del encoded
    for steps in steps_list:
        row[f"total_{steps}_s"] = best(lambda n=steps: model.sample(image, trimap, n, noise=noise))
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def run_child(preset: str, size: str, steps: str, repeats: int, threads: int, breakdown: bool) -> dict:
    cmd = [sys.executable, str(HERE / "_measure.py"), preset, size, steps, str(repeats), str(threads), str(int(breakdown))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {"preset": preset, "size": size, "error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info(threads: int) -> dict:
    import torch

    return {"machine": platform.machine(), "cpus": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "torch": torch.__version__}


def write_json(path: str, threads: int, rows: list[dict]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": machine_info(threads), "rows": rows}, indent=1))
    print(f"wrote {out}")


def print_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    preset, size, steps, repeats, threads, breakdown = sys.argv[1:7]
    hh, ww = (int(v) for v in size.split("x"))
    result = measure(preset, hh, ww, [int(s) for s in steps.split(",")], int(repeats), int(threads), bool(int(breakdown)))
    print(json.dumps(result))
