"""The measuring engine of speed.py, memory.py and perf.py: one (preset, size, mode) per
fresh subprocess, so that its peak RSS is its own.

Modes:

* ``ours``: what ``diffmatte predict`` does with no tuning (freed memory kept by the process,
  channels-last decoder, decoder tail in bands, the upsampling shortcut without upsampled maps
  (tap-first or phase conv), batch norms folded into the decoder's convs, global attention in
  query chunks and, for large images, key blocks).
* ``naive``: the same network and weights with all of that switched off (glibc's default
  allocator, NCHW, whole-image decoder, upsampled maps built, batch norms after the convs, one
  attention matrix per global block): the way the official code executes, for a same-machine
  comparison.
* ``naive-kept``: ``naive`` with freed memory kept, like the official code run with
  ``MALLOC_MMAP_MAX_=0`` and a large ``MALLOC_TRIM_THRESHOLD_``.
* ``ours-bf16``: ``ours`` with ``precision="bf16"`` (``diffmatte predict --precision bf16``).

Up to ``direct_mp`` megapixels every step count is a separate ``DiffMatte.sample`` call (in
the order given, in one process: the first call pays for first-touch memory). Above it, one
call with the most steps is timed per step, and the k-step totals are its wall time less the
steps after the k-th ("derived_steps" in the JSON): a k-step run does exactly the encoder
plus k decoder calls of the same shapes.

FLOPs are counted by ``torch.utils.flop_counter`` on meta tensors of the same shapes. The
matmul reference is the best of a few 2048^3 fp32 GEMMs with the same thread count.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

MODES = ("ours", "naive", "naive-kept", "ours-bf16")


def matmul_gflops(threads: int, dtype_name: str = "float32", n: int = 2048, repeats: int = 4) -> float:
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def count_gflop(preset: str, h: int, w: int) -> tuple[float, float]:
    """(encoder, one decoder step) GFLOP at this size, counted on meta tensors."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from diffmatte import DiffMatteNet, get_preset
    from diffmatte.models.fast_decoder import FAST, FastDecoder

    net = DiffMatteNet(get_preset(preset)).eval().to("meta")
    image = torch.zeros(1, 3, h, w, device="meta")
    trimap = torch.zeros(1, 1, h, w, device="meta")
    with torch.inference_mode():
        with FlopCounterMode(display=False) as enc_count:
            encoded = net.encode(image, trimap)
        with FlopCounterMode(display=False) as dec_count:
            # The step as the pipeline runs it (tap-first upsampling does less arithmetic).
            net.denoise(encoded, torch.zeros(1, 1, h, w, device="meta"), torch.ones(1, device="meta"),
                        FastDecoder(net.decoder, FAST))
    return enc_count.get_total_flops() / 1e9, dec_count.get_total_flops() / 1e9


def measure(preset: str, h: int, w: int, steps_list: list[int], threads: int, mode: str, direct_mp: float) -> dict:
    import resource
    import statistics

    import torch

    from diffmatte import DiffMatte
    from diffmatte.onnx.export import switch_to_plain
    from diffmatte.pipeline import FAST, PLAIN
    from diffmatte.runtime import keep_freed_memory

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    keep_freed_memory()  # as the CLI does; run_child turns it off for ``naive``
    naive = mode.startswith("naive")
    model = DiffMatte.from_config(preset, precision="bf16" if mode == "ours-bf16" else "fp32",
                                  options=PLAIN if naive else FAST)
    net = model.net
    if naive:
        switch_to_plain(net)
    image = torch.rand(1, 3, h, w)
    trimap = torch.full((1, 1, h, w), 0.5)
    trimap[..., : w // 4] = 0
    trimap[..., -w // 4 :] = 1
    noise = torch.randn(1, 1, h, w)

    encode_s: list[float] = []
    step_s: list[float] = []
    encode, denoise = net.encode, net.denoise

    def timed_encode(*a, **k):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = encode(*a, **k)
        encode_s.append(time.perf_counter() - t0)
        return out

    def timed_denoise(*a, **k):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = denoise(*a, **k)
        step_s.append(time.perf_counter() - t0)
        return out

    net.encode, net.denoise = timed_encode, timed_denoise  # type: ignore[method-assign]
    mp = h * w / 1e6
    row: dict = {"preset": preset, "mode": mode, "height": h, "width": w, "megapixels": round(mp, 2),
                 "threads": threads, "derived_steps": mp > direct_mp}
    if mp <= direct_mp:
        for k in steps_list:
            encode_s.clear()
            step_s.clear()
            t0 = time.perf_counter()
            model.sample(image, trimap, k, noise=noise)
            row[f"total_{k}_s"] = time.perf_counter() - t0
    else:
        most = max(steps_list)
        t0 = time.perf_counter()
        model.sample(image, trimap, most, noise=noise)
        wall = time.perf_counter() - t0
        for k in steps_list:
            row[f"total_{k}_s"] = wall - sum(step_s[k:])
    # From the last call: the one with the most steps.
    row["encoder_s"] = encode_s[-1]
    row["decoder_step_s"] = statistics.median(step_s)
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    enc_gflop, dec_gflop = count_gflop(preset, h, w)
    row["encoder_gflop"], row["decoder_step_gflop"] = round(enc_gflop, 1), round(dec_gflop, 1)
    row["encoder_gflops"] = enc_gflop / row["encoder_s"]
    row["decoder_gflops"] = dec_gflop / row["decoder_step_s"]
    return row


def child_json(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` in a fresh process: the JSON object on its last line of output, or
    ``{"error": ...}`` with its last line of errors when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(preset: str, size: str, steps: str, threads: int, mode: str, direct_mp: float) -> dict:
    env = dict(os.environ)
    if mode == "naive":
        env["DIFFMATTE_KEEP_FREED_MEMORY"] = "0"
    cmd = [sys.executable, str(HERE / "_measure.py"), preset, size, steps, str(threads), mode, str(direct_mp)]
    out = child_json(cmd, env)
    return {"preset": preset, "mode": mode, "size": size} | out if "error" in out else out


def machine_info(threads: int) -> dict:
    import torch

    from diffmatte.runtime import cpu_has_fast_bf16

    return {"machine": platform.machine(), "cpu": _cpu_name(), "cpus": os.cpu_count(), "threads": threads,
            "cpu_flags": _cpu_flags(), "bf16_instructions": cpu_has_fast_bf16(),
            "python": platform.python_version(), "torch": torch.__version__}


def _cpuinfo() -> dict[str, str]:
    """The first CPU's fields of /proc/cpuinfo; empty where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _cpu_flags() -> str:
    """CPU family/model and the vector extensions that decide fp32 and bf16 speed: hosts with
    the same CPU name ("AMD EPYC") differ in exactly these."""
    info = _cpuinfo()
    if not info:
        return ""
    flags = info.get("flags", "").split()
    wanted = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"family {info.get('cpu family', '?')} model {info.get('model', '?')}: " + " ".join(wanted)


def _cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor()


def print_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


def run_grid(presets: list[str], sizes: list[str], steps_list: list[int], modes: list[str], threads: int,
             json_path: str, direct_mp: float = 1.1, naive_max_mp: float = 1.1) -> list[dict]:
    """Measure every (preset, size, mode), print the table as rows arrive, write JSON."""
    if any(m not in MODES for m in modes):
        raise SystemExit(f"modes: choose from {', '.join(MODES)}")
    fp32 = matmul_gflops(threads)
    bf16 = matmul_gflops(threads, "bfloat16", n=1024, repeats=1)
    print(f"matmul with {threads} threads: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s "
          f"(the practical limit of this CPU)\n")
    header = ["preset", "mode", "size", "MP", "encoder s", "decoder step s"] + [f"{k} steps s" for k in steps_list]
    header += ["peak RSS MiB", "encoder GFLOP/s", "decoder GFLOP/s", "decoder / matmul"]
    print_row(header)
    print("|" + "---|" * len(header))
    rows = []
    for preset in presets:
        for size in sizes:
            hh, ww = (int(v) for v in size.split("x"))
            for mode in modes:
                if mode.startswith("naive") and hh * ww / 1e6 > naive_max_mp:
                    continue
                row = run_child(preset, size, ",".join(map(str, steps_list)), threads, mode, direct_mp)
                rows.append(row)
                if "error" in row:
                    print_row([preset, mode, size, "", row["error"]])
                    continue
                mark = "*" if row["derived_steps"] else ""
                cells = [preset, mode, size, f"{row['megapixels']:.2f}", f"{row['encoder_s']:.2f}",
                         f"{row['decoder_step_s']:.2f}"]
                cells += [f"{row[f'total_{k}_s']:.2f}{mark}" for k in steps_list]
                cells += [f"{row['peak_rss_mib']:.0f}", f"{row['encoder_gflops']:.0f}", f"{row['decoder_gflops']:.0f}",
                          f"{row['decoder_gflops'] / fp32:.2f}"]
                print_row(cells)
    if any(r.get("derived_steps") for r in rows if "error" not in r):
        print("\n* one timed run with the most steps; fewer-step totals read off its per-step clock")
    kept = "freed memory kept (mallopt, as diffmatte sets it)"
    allocator = {"ours": kept, "naive": "glibc default", "naive-kept": kept, "ours-bf16": kept}
    out = {"meta": machine_info(threads) | {"matmul_fp32_gflops": fp32, "matmul_bf16_gflops": bf16,
                                            "allocator": {m: allocator[m] for m in modes}},
           "rows": rows}
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(out, indent=1))
    print(f"wrote {json_path}")
    return rows


if __name__ == "__main__":
    preset, size, steps, threads, mode, direct_mp = sys.argv[1:7]
    hh, ww = (int(v) for v in size.split("x"))
    result = measure(preset, hh, ww, [int(s) for s in steps.split(",")], int(threads), mode, float(direct_mp))
    print(json.dumps(result))
