#!/bin/bash
# LazyAdam against kerasft's default Adam, with the fastest Trainer in the same run, at 2048 and at 8192 texts.
# Run in a folder holding emotion_style_9000.txt (python benchmarks/make_emotion_style.py emotion_style_9000.txt
# --rows 9000), under the CPU lock, nothing else running; BENCH is the benchmark venv's python (.[benchmark]).
BENCH=${BENCH:-/work/bench-venv/bin/python}
REPO=${REPO:-/work/main}
date -u
git -C $REPO rev-parse --short HEAD
$BENCH $REPO/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label --samples 2048 \
    --repeats 3 --contenders kerasft,kerasft-lazy-adam,hf-trainer-grouped-bf16 --json train-2048-lazy.json > train-2048-lazy.log 2>&1
echo rc $?
$BENCH $REPO/benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label --samples 8192 \
    --repeats 3 --contenders kerasft,kerasft-lazy-adam,hf-trainer-grouped-bf16 --json train-8192-lazy.json > train-8192-lazy.log 2>&1
echo rc $?
date -u
