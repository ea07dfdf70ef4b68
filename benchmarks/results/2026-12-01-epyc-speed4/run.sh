#!/bin/bash
# 2026-12-01, a 2-core AMD EPYC KVM guest with AVX512-BF16 and no AMX; every command under the CPU lock with the
# MRPC probe paused (SIGSTOP), nothing else running. PYTHONPATH=a worktree of 429ede0.
set -x
cd /tmp/s16/r
B=/tmp/s16/bench
export PYTHONPATH=$B TF_USE_LEGACY_KERAS=1
PY=/work/bench-venv/bin/python
$PY $B/benchmarks/make_emotion_style.py emotion_style_9000.txt --rows 9000
$PY $B/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 3 --contenders kerasft,kerasft-run,hf-trainer,hf-trainer-grouped,hf-trainer-bf16,hf-trainer-grouped-bf16 \
    --json train-2048.json > train-2048.log 2>&1
$PY $B/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 8192 --repeats 3 --contenders kerasft,kerasft-run,hf-trainer-grouped-bf16 --json train-8192.json > train-8192.log 2>&1
$PY $B/benchmarks/serve_throughput.py --repeats 3 --json serve.json > serve.log 2>&1
# after them, the same lock, the probe paused: where a step's time goes on this CPU
$PY $B/benchmarks/step_profile.py --widths 24 --ops 10 > ops-24.log 2>&1
# probes, not benchmarks (each once, the same lock, the MRPC probe paused); outputs copied into probes.log
$PY ../2026-12-01-amx-speed3/bf16_serve_probe.py float32 > bf16_serve_probe.log      # and mixed_bfloat16 (appended)
$PY ab_step.py 24               # a float32 LayerNorm with its own gradient, and dropout drawing 16 bits, in one process
$PY layer_norm_alone.py         # the LayerNorm alone
$PY epoch_steps.py train2048.csv 2048     # the kerasft contender's epoch step by step (train2048.csv: its 2048 rows)
$PY first_step.py               # and: python first_step.py opts disable_meta_optimizer (and each grappler pass)
$PY batch1_probe.py emotion_style_9000.txt    # batch 1: the raw-text signature, predict_ids, the bare model; its ops
# XLA at 8192 texts (train.jit_compile=on; batches padded to multiples of 32), one round beside kerasft
$PY $B/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 8192 --repeats 1 --contenders kerasft-xla,kerasft --json train-8192-xla.json > train-8192-xla.log 2>&1
