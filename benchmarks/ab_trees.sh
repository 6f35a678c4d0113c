#!/usr/bin/env bash
# A/B of two source trees with benchmarks/_measure.py (`ours` mode, 10 steps, 2 threads, a fresh
# process per run), alternating so drift hits both alike. Used for issue 18's refactor:
#   git worktree add /tmp/old 35c9209 && benchmarks/ab_trees.sh /tmp/old . 5 "vits 1024x1024" "lite0 1448x1448"
# Prints one line per run: tree, repeat, preset, size, seconds for 10 steps, peak RSS MiB.
set -eu
OLD=$1; NEW=$2; REPS=$3; shift 3
SPECS=("$@")
PY=${PY:-$(pwd)/.venv/bin/python}
for rep in $(seq "$REPS"); do
  for tree in "$OLD" "$NEW"; do
    for spec in "${SPECS[@]}"; do
      read -r preset size <<< "$spec"
      (cd "$tree" && PYTHONPATH=src "$PY" benchmarks/_measure.py "$preset" "$size" 10 2 ours 99) | "$PY" -c "
import json, sys
d = json.load(sys.stdin)
print('$tree', $rep, d['preset'], '$size', round(d['total_10_s'], 2), round(d['peak_rss_mib'], 1))"
    done
  done
done
