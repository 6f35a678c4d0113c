"""Copy a trained checkpoint into the package as the default model, recording its working size.

    python scripts/package_default.py runs/default-4/best/ema.safetensors --working-megapixels 0.5

Writes src/diffmatte/weights/default.safetensors (the config in its metadata gets
``working_megapixels``, the size `predict` mattes large images at) and prints the sha256 to
put in src/diffmatte/registry.py. `make train-default` ends with this step.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from diffmatte.checkpoint import config_for, load_into, read_state_dict, save_safetensors
from diffmatte.fusion import FusionConfig
from diffmatte.hashing import sha256_file
from diffmatte.models.modeling_diffmatte import DiffMatteNet

DEST = Path(__file__).resolve().parents[1] / "src" / "diffmatte" / "weights" / "default.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--working-megapixels", type=float, required=True)
    ap.add_argument("--fusion-strength", type=float, default=0.0,
                    help="turn fusion with closed-form's colour model on at this uniform weight (0 = off)")
    ap.add_argument("--fusion-iterations", type=int, default=50)
    ap.add_argument("--fusion-unanchored-strength", type=float, default=None,
                    help="the weight instead where the trimap lacks sure foreground or background")
    ap.add_argument("--fusion-unanchored-iterations", type=int, default=None)
    ap.add_argument("--snap", type=float, default=0.0,
                    help="the final matte's unknown pixels below this become 0, above 1 - this 1 (0 = off)")
    ap.add_argument("-o", "--output", type=Path, default=DEST)
    args = ap.parse_args()
    sd, stored = read_state_dict(args.checkpoint)
    fusion = (FusionConfig(strength=args.fusion_strength, floor=args.fusion_strength, iterations=args.fusion_iterations,
                           unanchored_strength=args.fusion_unanchored_strength,
                           unanchored_iterations=args.fusion_unanchored_iterations)
              if args.fusion_strength > 0 else None)
    config = dataclasses.replace(config_for(sd, None, stored), working_megapixels=args.working_megapixels, fusion=fusion,
                                 snap=args.snap)
    net = DiffMatteNet(config)
    load_into(net, sd, config.name)
    save_safetensors(net, config, args.output)
    digest = sha256_file(args.output)
    print(f"{args.output}: {config.name}, working_megapixels={config.working_megapixels}, fusion={config.fusion}, "
          f"snap={config.snap}, sha256 {digest}")


if __name__ == "__main__":
    main()
