#!/usr/bin/env bash
# The held-out reports of docs/results.md ("Data engine"). Run with nothing else on the CPU.
set -x
cd "$(dirname "$0")/.."
NEW=${NEW:-runs/default-4/best/ema.safetensors}  # make train-engine
# 1. GT19-GT27 real photos with benchmark trimaps (fractional region dilated by 2.5% of the long side)
B=runs/gt_bench
if [ ! -d $B ]; then
  mkdir -p $B/trimap_training_lowres/Bench25
  ln -sfn "$(cd ../shared && pwd)"/data/alphamatting_training_lowres/input_training_lowres $B/input_training_lowres
  ln -sfn "$(cd ../shared && pwd)"/data/alphamatting_training_lowres/gt_training_lowres $B/gt_training_lowres
  .venv/bin/python -c "
import numpy as np; from PIL import Image
from diffmatte.data.trimaps import benchmark_trimap
for i in range(19, 28):
    a = np.asarray(Image.open(f'$B/gt_training_lowres/GT{i}.png').convert('L'))
    Image.fromarray(benchmark_trimap(a, 0.025 * max(a.shape))).save(f'$B/trimap_training_lowres/Bench25/GT{i}.png')
"
fi
.venv/bin/diffmatte evaluate --data $B -o runs/eval-gt-bench --method diffmatte,cf,knn --model default --model $NEW --steps 10 --images GT19-GT27
# 2. GT19-GT27 real photos, the official trimaps
.venv/bin/diffmatte evaluate --data ../shared/data/alphamatting_training_lowres -o runs/eval-gt-heldout --method diffmatte --model default --model $NEW --steps 10 --trimap-set Trimap1,Trimap2 --images GT19-GT27
# 3. the composited validation set, full resolution vs the 0.5 MP working size
.venv/bin/python benchmarks/working_resolution.py --data runs/valset --model $NEW --steps 10 --megapixels 0,0.5 --json benchmarks/results/working_resolution_valset_new.json
.venv/bin/python benchmarks/working_resolution.py --data runs/valset --model default --steps 10 --megapixels 0,0.5 --json benchmarks/results/working_resolution_valset_old_default.json
