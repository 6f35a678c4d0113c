"""Seconds of `predict` in a plain Python program: load the default model, matte the 2 MP photo
three times, in a fresh process, with glibc's allocator as it comes ("default") and with
diffmatte.runtime.keep_freed_memory() first ("kept", what the CLI does).

    python benchmarks/predict_in_program.py --image runs/photo2mp.png --trimap runs/photo2mp_trimap.png \
        --json benchmarks/results/predict_in_program.json
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from _measure import child_json  # a sibling script


def child(image: Path, trimap: Path, keep: bool, calls: int) -> dict:
    if keep:
        from diffmatte.runtime import keep_freed_memory

        keep_freed_memory()
    from diffmatte.io import load_image, read_alpha
    from diffmatte.loading import load_model

    model = load_model("default")
    img, tri = load_image(image), read_alpha(trimap)
    seconds = []
    for _ in range(calls):
        t = time.perf_counter()
        model.predict(img, tri, 10, 0)
        seconds.append(round(time.perf_counter() - t, 2))
    return {"seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--trimap", type=Path, required=True)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["kept", "default"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.image, args.trimap, args.child == "kept", args.calls)))
        return
    rows = []
    for setting in ("default", "kept"):
        out = child_json([sys.executable, __file__, "--image", str(args.image), "--trimap", str(args.trimap),
                          "--calls", str(args.calls), "--child", setting])
        if "error" in out:
            raise SystemExit(f"{setting}: {out['error']}")
        rows.append({"allocator": setting} | out)
    print("| allocator | seconds per call | peak RSS MiB |\n|---|---|---:|")
    for r in rows:
        print(f"| {r['allocator']} | {' / '.join(str(s) for s in r['seconds'])} | {r['peak_rss_mib']} |")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
