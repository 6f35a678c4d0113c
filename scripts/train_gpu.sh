#!/usr/bin/env bash
# Train the default model's recipe at scale within a time budget, on whatever this machine has.
#
#   scripts/train_gpu.sh OUT [MINUTES [--set key=value ...]]      (MINUTES: default 9)
#
# Needs the repository and the data folder of `make gpu-data` ($GPU_DATA, default gpu-data/: at
# most 64 MiB, made where ../shared and the wallpaper packages are). Uses a Python that already
# has torch (a GPU machine's), else makes .venv-gpu and installs torch (pip's default wheel: CUDA
# on Linux) and diffmatte's training dependencies from PyPI. Trains preset `default_gpu` from the
# packaged weights for MINUTES minutes of wall time: the run stops itself, validated and
# checkpointed, and saves `last` every minute. OUT then holds the run folder: best/ and last/
# (model and EMA weights), config.toml, metrics.jsonl, train.log. The device is chosen
# automatically (CUDA if torch sees one, else the CPU), so the same script is tested on a CPU
# with a tiny budget and tiny data (tests/test_train.py). `--set model=lite0_evidence` trains the
# colour-evidence variant (issue 22 item 2) from the same packaged weights, widened with zeros.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/train_gpu.sh OUT [MINUTES [--set key=value ...]]}
MINUTES=${2:-9}
shift $(( $# >= 2 ? 2 : 1 ))
DATA=${GPU_DATA:-gpu-data}
for need in fg am/input am/gt backgrounds.csv valset/image; do
    [ -e "$DATA/$need" ] || { echo "train_gpu.sh: $DATA/$need is missing: run 'make gpu-data' first" >&2; exit 2; }
done
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    [ -x .venv-gpu/bin/python ] || python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install -q torch
    PY=.venv-gpu/bin/python
fi
# diffmatte from this checkout; what it needs to train, from PyPI when missing
if ! "$PY" -c "import numpy, PIL, scipy, safetensors, click, tqdm" 2>/dev/null; then
    "$PY" -m pip install -q numpy pillow scipy safetensors click tqdm
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu', flush=True)"
exec "$PY" -m diffmatte train default_gpu --set "out_dir=$(dirname "$OUT")" --set "run_name=$(basename "$OUT")" \
    --set "time_budget_s=$(( MINUTES * 60 ))" \
    --set "data.fg_dir=$DATA/fg" --set "data.bg_manifest=$DATA/backgrounds.csv" \
    --set "data.image_dir=$DATA/am/input" --set "data.image_alpha_dir=$DATA/am/gt" \
    --set "val.image_dir=$DATA/valset/image" --set "val.alpha_dir=$DATA/valset/alpha" \
    --set "val.trimap_dir=$DATA/valset/trimap" "$@"
