#!/bin/bash
# 2026-12-01, a 2-core AMD EPYC KVM guest with AVX512-BF16 and no AMX; every command under the CPU lock with the
# MRPC probe paused (SIGSTOP), nothing else running. PYTHONPATH=a worktree of 429ede0.
set -x
cd /tmp/s16/r
B=/tmp/s16/bench
export PYTHONPATH=$B TF_USE_LEGACY_KERAS=1
PY=/work/bench-venv/bin/python
$PY $B/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 3 --contenders kerasft,kerasft-run,hf-trainer,hf-trainer-grouped,hf-trainer-bf16,hf-trainer-grouped-bf16 \
    --json train-2048.json > train-2048.log 2>&1
$PY $B/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 8192 --repeats 3 --contenders kerasft,kerasft-run,hf-trainer-grouped-bf16 --json train-8192.json > train-8192.log 2>&1
$PY $B/benchmarks/serve_throughput.py --repeats 3 --json serve.json > serve.log 2>&1
# XLA at 8192 texts (train.jit_compile=on; batches padded to multiples of 32), one round beside kerasft
$PY $B/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 8192 --repeats 1 --contenders kerasft-xla,kerasft --json train-8192-xla.json > train-8192-xla.log 2>&1
