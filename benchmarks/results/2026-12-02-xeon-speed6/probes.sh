#!/bin/bash
# After run.sh, on the same machine: where a float32 step's op time goes (step_profile.py --ops, by op type), and
# Keras' own GELU against kerasft.activations' under float32, where kerasft's recomputes in the backward pass what
# it saves memory for only under mixed_bfloat16. Run where run.sh ran, under the CPU lock, nothing else running.
BENCH=${BENCH:-/work/bench-venv/bin/python}
REPO=${REPO:-/work/main}
OUT=${OUT:-$REPO/benchmarks/results/2026-12-02-xeon-speed6}
steal() { awk '/^cpu / {print "steal_ticks", $9}' /proc/stat; }
date -u; git -C $REPO rev-parse --short HEAD; steal
$BENCH $REPO/benchmarks/step_profile.py --widths 24 --policy float32 --ops 10 > $OUT/ops-float32-24.log 2>&1
echo rc $?; steal; date -u
$BENCH $REPO/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label --samples 2048 \
    --repeats 3 --contenders kerasft,kerasft-keras-gelu --json $OUT/train-2048-gelu.json > $OUT/train-2048-gelu.log 2>&1
echo rc $?; steal; date -u
