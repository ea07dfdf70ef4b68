#!/bin/bash
# The kerasft side of serve_throughput.py (export, raw-text signature, serving threads) under two oneDNN settings
# TensorFlow reads from the environment, alternated twice; the labels are compared with the first base round's.
#   frozen: TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 (oneDNN may keep its reordered copy of each weight between calls)
#   fpmath: TF_SET_ONEDNN_FPMATH_MODE=BF16 (float32 matmuls may round their inputs to bfloat16 and use AMX)
# Run from the repository's root, under the CPU lock; writes into $1 (default /tmp/serving-onednn).
out=${1:-/tmp/serving-onednn}
for round in 1 2; do
  for variant in base frozen fpmath; do
    case $variant in
      base) setting="KERASFT_PROBE=1";;
      frozen) setting="TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1";;
      fpmath) setting="TF_SET_ONEDNN_FPMATH_MODE=BF16";;
    esac
    work=$out/$variant-$round; mkdir -p "$work"
    env $setting python benchmarks/serve_throughput.py --one kerasft "$work" 2>/dev/null | sed -n 's/^RESULT //p' > "$work/result.json"
    python - "$work/result.json" "$out/base-1/result.json" "$round $variant" <<'PY'
import json, sys
result, base = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["labels"]
same = sum(a == b for a, b in zip(result["labels"], base)) / len(base)
print(f"{sys.argv[3]}: batch 1 {result['batch_1']:.1f}, batch 64 {result['batch_64']:.1f} texts/s; "
      f"labels as base round 1: {same:.2%}")
PY
    echo "  steal ticks $(awk '/^cpu /{print $9}' /proc/stat)"
  done
done
