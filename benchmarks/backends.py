"""torch against onnxruntime: parity on real images, seconds and peak RSS at 512² and 1024².

    python benchmarks/backends.py                             # lite0 (packaged default) and vits
    /work/bench-slot python benchmarks/backends.py --part speed   # timings with nothing else running
    python benchmarks/backends.py --part parity --presets lite0
    python benchmarks/backends.py --part exports          # which presets export (random weights)

Models: ``lite0`` is the packaged default model (``load_model()``); ``vits`` is the official
ViT-S architecture with random weights (seed 0: no official checkpoint is available here;
speed does not depend on the weight values, and parity is checked on the same weights in
both backends). Each is exported once with `diffmatte.onnx.export.export_onnx` into --work
(reused on later runs; the ONNX files are not kept in the repository).

Parity: ``predict`` through both backends on examples/lemur.jpg and two images of
../shared/data/alphamatting_training_lowres (Trimap1), sizes the export never saw, 1 and 10
steps, seed 0: the largest |alpha_onnxruntime - alpha_torch|.

Speed: each (preset, backend, size) runs in a fresh process, so its peak RSS is its own (model
included): a 1-step call (warm-up), then --repeats 10-step ``DiffMatte.sample`` calls timed
(the fastest kept, all listed), with the encoder and the median decoder step timed inside;
2 threads. Prints a Markdown table and
writes benchmarks/results/onnx.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _measure import RESULTS, machine_info  # noqa: E402

IMAGES = [
    ("lemur", ROOT / "examples" / "lemur.jpg", ROOT / "examples" / "lemur_trimap.png"),
    *[
        (name, ROOT.parent / "shared/data/alphamatting_training_lowres/input_training_lowres" / f"{name}.png",
         ROOT.parent / "shared/data/alphamatting_training_lowres/trimap_training_lowres/Trimap1" / f"{name}.png")
        for name in ("GT04", "GT13")
    ],
]
BACKENDS = ("torch", "onnxruntime")


def prepare(preset: str, work: Path, reexport: bool) -> tuple[Path, Path, str]:
    """(torch weights, ONNX folder, what the weights are) for the preset, exporting if needed."""
    import torch

    from diffmatte import DiffMatte, load_model
    from diffmatte.onnx.export import export_onnx
    from diffmatte.onnx.format import CONFIG_FILE
    from diffmatte.registry import resolve_model_path

    folder = work / f"{preset}-onnx"
    if preset == "lite0":
        weights, what = resolve_model_path(None), "packaged default model (load_model())"
        model = load_model()
    elif preset == "vits":
        weights, what = work / "vits-random-seed0.safetensors", "official ViT-S architecture, random weights (seed 0)"
        if not weights.is_file():
            torch.manual_seed(0)
            DiffMatte.from_config("vits").save(weights)
        model = DiffMatte.from_checkpoint(weights)
    else:
        raise SystemExit(f"unknown preset {preset!r}: this benchmark runs lite0 and vits")
    if reexport or not (folder / CONFIG_FILE).is_file():
        t0 = time.perf_counter()
        result = export_onnx(model.net, folder, overwrite=True, source=str(weights))
        print(f"exported {preset} in {time.perf_counter() - t0:.0f} s (check: {result.max_abs_error:.1e})",
              file=sys.stderr)
    return weights, folder, what


def exports(work: Path, presets: list[str] | None) -> dict[str, str]:
    """Every preset exported with random weights (seed 0): "ok" and the export's own check, or
    the one-line reason it cannot export."""
    import torch

    from diffmatte import DiffMatte
    from diffmatte.models.configuration import list_presets
    from diffmatte.onnx.export import ExportError, export_onnx

    out = {}
    for preset in presets or list_presets():
        torch.manual_seed(0)
        net = DiffMatte.from_config(preset).net
        t0 = time.perf_counter()
        try:
            result = export_onnx(net, work / "all" / preset, overwrite=True)
            out[preset] = f"ok: onnxruntime within {result.max_abs_error:.1e} of torch at {result.check_size[0]}x{result.check_size[1]}"
        except ExportError as e:
            out[preset] = str(e)
        print(f"{preset} ({time.perf_counter() - t0:.0f} s): {out[preset]}", file=sys.stderr)
        del net
    return out


def parity(preset: str, weights: Path, folder: Path, steps_list: list[int]) -> list[dict]:
    import numpy as np

    from diffmatte import DiffMatte
    from diffmatte.io import load_pair

    backends = {"torch": DiffMatte.from_checkpoint(weights), "onnxruntime": DiffMatte.from_checkpoint(folder)}
    rows = []
    for name, image_path, trimap_path in IMAGES:
        if not image_path.is_file():
            print(f"skipped {image_path}: not found", file=sys.stderr)
            continue
        image, trimap = load_pair(image_path, trimap_path)
        for steps in steps_list:
            alpha = {b: m.predict(image, trimap, steps, seed=0) for b, m in backends.items()}
            err = float(np.abs(alpha["onnxruntime"] - alpha["torch"]).max())
            rows.append({"preset": preset, "image": name, "height": image.shape[0], "width": image.shape[1],
                         "steps": steps, "max_abs_alpha_error": err, "within_1e-4": err <= 1e-4})
            print(f"parity {preset} {name} {image.shape[0]}x{image.shape[1]} {steps} steps: {err:.2e}", file=sys.stderr)
    return rows


def measure(preset: str, backend: str, model_path: str, size: int, steps: int, threads: int, repeats: int) -> dict:
    """One fresh process's figures (run as ``backends.py --child ...``)."""
    import resource
    import statistics

    import torch

    from diffmatte import DiffMatte
    from diffmatte.runtime import keep_freed_memory

    torch.set_num_threads(threads)
    keep_freed_memory()  # as the CLI does
    t0 = time.perf_counter()
    model = DiffMatte.from_checkpoint(model_path)
    load_s = time.perf_counter() - t0
    net = model.net
    encode_s: list[float] = []
    step_s: list[float] = []
    encode, denoise = net.encode, net.denoise

    def timed_encode(*a, **k):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = encode(*a, **k)
        encode_s.append(time.perf_counter() - t)
        return out

    def timed_denoise(*a, **k):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = denoise(*a, **k)
        step_s.append(time.perf_counter() - t)
        return out

    net.encode, net.denoise = timed_encode, timed_denoise  # type: ignore[method-assign]
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, size, size, generator=g)
    trimap = torch.full((1, 1, size, size), 0.5)
    trimap[..., : size // 4] = 0
    trimap[..., -size // 4 :] = 1
    noise = torch.randn(1, 1, size, size, generator=g)
    t0 = time.perf_counter()
    model.sample(image, trimap, 1, noise=noise)
    first_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        encode_s.clear()
        step_s.clear()
        t0 = time.perf_counter()
        model.sample(image, trimap, steps, noise=noise)
        runs.append((time.perf_counter() - t0, encode_s[-1], statistics.median(step_s)))
    total_s, enc_s, dec_s = min(runs)
    return {"preset": preset, "backend": backend, "size": size, "steps": steps, "threads": threads,
            "load_s": load_s, "first_1_step_s": first_s, f"total_{steps}_s": total_s,
            f"total_{steps}_s_runs": [r[0] for r in runs], "encoder_s": enc_s, "decoder_step_s": dec_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def speed(preset: str, weights: Path, folder: Path, sizes: list[int], steps: int, threads: int,
          repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        for backend in BACKENDS:
            path = weights if backend == "torch" else folder
            cmd = [sys.executable, __file__, "--child", preset, backend, str(path), str(size), str(steps), str(threads),
                   str(repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
                rows.append({"preset": preset, "backend": backend, "size": size, "error": tail})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def table(speed_rows: list[dict], parity_rows: list[dict], steps: int) -> str:
    lines = []
    if speed_rows:
        lines += [f"| preset | size | backend | {steps} steps (s) | encoder (s) | decoder step (s) | peak RSS (MiB) |",
                  "|---|---|---|---|---|---|---|"]
        for r in speed_rows:
            if "error" in r:
                lines.append(f"| {r['preset']} | {r['size']}² | {r['backend']} | {r['error']} | | | |")
                continue
            lines.append(f"| {r['preset']} | {r['size']}² | {r['backend']} | {r[f'total_{steps}_s']:.2f} | "
                         f"{r['encoder_s']:.2f} | {r['decoder_step_s']:.2f} | {r['peak_rss_mib']:.0f} |")
    if parity_rows:
        lines += ["", "| preset | image | size | steps | max abs alpha error |", "|---|---|---|---|---|"]
        for r in parity_rows:
            lines.append(f"| {r['preset']} | {r['image']} | {r['height']}x{r['width']} | {r['steps']} | "
                         f"{r['max_abs_alpha_error']:.1e} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        preset, backend, path, size, steps, threads, repeats = sys.argv[2:9]
        print(json.dumps(measure(preset, backend, path, int(size), int(steps), int(threads), int(repeats))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=None, help="default: lite0,vits (exports: every preset)")
    ap.add_argument("--part", choices=["parity", "speed", "exports", "all"], default="all",
                    help="exports: try every preset (random weights) and record why one cannot export")
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="timed 10-step calls per process; the fastest is kept")
    ap.add_argument("--work", default="/tmp/diffmatte-onnx-bench", help="where the exports and random weights go")
    ap.add_argument("--reexport", action="store_true")
    ap.add_argument("--json", default=str(RESULTS / "onnx.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.json)
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    result["machine"] = machine_info(args.threads)
    import onnxruntime

    result["machine"]["onnxruntime"] = onnxruntime.__version__
    result.setdefault("models", {})
    parity_rows: list[dict] = []
    speed_rows: list[dict] = []
    if args.part == "exports":
        result["exports"] = {**result.get("exports", {}),
                             **exports(work, args.presets.split(",") if args.presets else None)}
        out_path.write_text(json.dumps(result, indent=2) + "\n")
        print("\n".join(f"| {k} | {v} |" for k, v in result["exports"].items()))
        return
    for preset in (args.presets or "lite0,vits").split(","):
        weights, folder, what = prepare(preset, work, args.reexport)
        result["models"][preset] = what
        if args.part in ("parity", "all"):
            parity_rows += parity(preset, weights, folder, [1, args.steps])
        if args.part in ("speed", "all"):
            speed_rows += speed(preset, weights, folder, [int(s) for s in args.sizes.split(",")], args.steps,
                                args.threads, args.repeats)
    if parity_rows:
        result["parity"] = parity_rows
    if speed_rows:
        result["speed"] = speed_rows
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(table(speed_rows, parity_rows, args.steps))


if __name__ == "__main__":
    main()
