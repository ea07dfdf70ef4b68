#!/bin/bash
# Speed round 6 on a 2-core Xeon whose hypervisor hides AMX: train.mixed_precision=auto now measures a bfloat16
# matmul before choosing (kerasft.precision). The precision benchmark at two shapes, then issue 18's commands:
# training at 2048 and 8192 texts (kerasft as auto chooses, mixed_bfloat16 set outright, the whole run's training
# stage, the fastest Trainer settings in float32 and bfloat16) and serving. Run in a folder holding
# emotion_style_9000.txt (python benchmarks/make_emotion_style.py emotion_style_9000.txt --rows 9000), under the CPU
# lock, nothing else running; BENCH is the benchmark venv's python (.[benchmark]).
BENCH=${BENCH:-/work/bench-venv/bin/python}
REPO=${REPO:-/work/main}
OUT=${OUT:-$REPO/benchmarks/results/2026-12-02-xeon-speed6}
steal() { awk '/^cpu / {print "steal_ticks", $9}' /proc/stat; }
date -u; git -C $REPO rev-parse --short HEAD; git -C $REPO status --short | head; steal
$BENCH $REPO/benchmarks/precision.py --batch 32 --length 64 > $OUT/precision-32x64.log 2>&1; echo rc $?; steal
$BENCH $REPO/benchmarks/precision.py --batch 16 --length 128 > $OUT/precision-16x128.log 2>&1; echo rc $?; steal
date -u
$BENCH $REPO/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label --samples 2048 \
    --repeats 3 --contenders kerasft,kerasft-bfloat16,kerasft-run,hf-trainer-grouped,hf-trainer-grouped-bf16 \
    --json $OUT/train-2048.json > $OUT/train-2048.log 2>&1
echo rc $?; steal; date -u
$BENCH $REPO/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label --samples 8192 \
    --repeats 3 --contenders kerasft,kerasft-run,hf-trainer-grouped,hf-trainer-grouped-bf16 \
    --json $OUT/train-8192.json > $OUT/train-8192.log 2>&1
echo rc $?; steal; date -u
$BENCH $REPO/benchmarks/serve_throughput.py --repeats 3 --json $OUT/serve.json > $OUT/serve.log 2>&1
echo rc $?; steal; date -u
