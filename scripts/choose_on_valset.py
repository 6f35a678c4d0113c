"""Score candidate weights with the trainer's validation (the set and settings of a training
preset's ``val`` section) and print the table; checkpoints are chosen on this, never on a
report set.

    python scripts/choose_on_valset.py default_balance runs/default-5/best/ema.safetensors \
        runs/default-4/best/ema.safetensors --mix src/diffmatte/weights/default.safetensors \
        runs/default-5/best/ema.safetensors 0.25,0.5,0.75 --json runs/choice.json

``--mix A B w1,w2``: also the weight averages (1 - w) A + w B (both from the same run family,
so the average is a model between them: "model soup" / WiSE-FT). Batch-norm statistics are
averaged likewise.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from diffmatte.checkpoint import config_for, load_into, read_state_dict
from diffmatte.data import ValidationSet, scan_triplets
from diffmatte.data.files import ScanReport
from diffmatte.models.modeling_diffmatte import DiffMatteNet
from diffmatte.runtime import keep_freed_memory
from diffmatte.training.loop import _validate, get_train_preset


def _net(sd: dict[str, torch.Tensor], stored: object, model: str) -> DiffMatteNet:
    config = config_for(sd, model, stored)  # type: ignore[arg-type]
    net = DiffMatteNet(config)
    load_into(net, sd, config.name)
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", help="training preset whose val section (set, size, steps, seed) is used")
    ap.add_argument("checkpoints", nargs="*", type=Path)
    ap.add_argument("--mix", nargs=3, action="append", default=[], metavar=("A", "B", "WEIGHTS"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    keep_freed_memory()
    cfg = get_train_preset(args.preset)
    val = cfg.val
    val_set = ValidationSet(scan_triplets(val.image_dir, val.alpha_dir, val.trimap_dir, ScanReport(), False,
                                          names=val.names), val.max_side, cfg.data.erosion_range)
    candidates: list[tuple[str, DiffMatteNet]] = []
    for path in args.checkpoints:
        sd, stored = read_state_dict(path)
        candidates.append((str(path), _net(sd, stored, cfg.model)))
    for a, b, weights in args.mix:
        sd_a, stored = read_state_dict(a)
        sd_b, _ = read_state_dict(b)
        for w in (float(x) for x in weights.split(",")):
            mixed = {k: (v.float() * (1 - w) + sd_b[k].float() * w).to(v.dtype) if v.is_floating_point() else v
                     for k, v in sd_a.items()}
            candidates.append((f"{1 - w:g} x {a} + {w:g} x {b}", _net(mixed, stored, cfg.model)))
    rows = []
    print(f"| candidate | SAD | MSE | Grad | Conn |   ({args.preset} val: {val.image_dir}, {val.max_side} px, {val.steps} steps)")
    print("|---|---:|---:|---:|---:|")
    for name, net in candidates:
        scores = _validate(net, val_set, val, torch.device("cpu"))
        rows.append({"candidate": name, **scores})
        print(f"| {name} | {scores['sad']:.2f} | {scores['mse']:.2f} | {scores['grad']:.2f} | {scores['conn']:.2f} |",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"preset": args.preset, "val": vars(val) if hasattr(val, "__dict__") else str(val),
                                         "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
