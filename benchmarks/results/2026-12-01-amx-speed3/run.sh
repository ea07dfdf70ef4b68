#!/bin/bash
# 2026-12-01, a 2-core Intel Xeon KVM guest with AMX-BF16; every command under the CPU lock, nothing else running,
# one after another. PYTHONPATH=<tree>: "before" is a worktree of 8eac583 (Keras' GELU), "after" this change (06d979e).
python benchmarks/make_emotion_style.py emotion_style_9000.txt --rows 9000
# before: kerasft against the Trainer's fastest setting, and kerasft in float32
PYTHONPATH=$before python benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 3 --contenders kerasft,hf-trainer-grouped-bf16,kerasft-float32 --json train-2048-base.json
PYTHONPATH=$before python benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 1 --contenders kerasft-xla,kerasft-threads1 --json train-xla.json
PYTHONPATH=$before python benchmarks/step_profile.py > step_profile.log
# after: the GELU lever in one run (kerasft-keras-gelu undoes it), then 8192 samples with the whole run
PYTHONPATH=$after python benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 3 --contenders kerasft,kerasft-keras-gelu,hf-trainer-grouped-bf16 --json train-2048-gelu.json
PYTHONPATH=$after python benchmarks/serve_throughput.py --repeats 3 --json serve.json
PYTHONPATH=$after python benchmarks/step_profile.py --widths 24 --ops 10 > ops-24.log        # this change's step_profile.py
PYTHONPATH=$before python benchmarks/step_profile.py --widths 24 --ops 10 > ops-24-before.log  # the same script
PYTHONPATH=$after python benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 8192 --repeats 3 --contenders kerasft,kerasft-run,hf-trainer-grouped-bf16 --json train-8192.json
# a probe, not a benchmark: MiniLM's forward pass in float32 and mixed_bfloat16 (what a bfloat16 export would gain)
for policy in float32 mixed_bfloat16; do PYTHONPATH=$after python bf16_serve_probe.py $policy; done > bf16_serve_probe.log
# dropout's draw: Keras' own dropout layer on 10M ones, float32 and mixed_bfloat16 (before this change's kerasft.model)
python dropout_rate.py > dropout_rate.log
# after the dropout change: kerasft-keras-dropout-draw undoes it
PYTHONPATH=$after python benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 3 --contenders kerasft,kerasft-keras-dropout-draw,hf-trainer-grouped-bf16 \
    --json train-2048-dropout.json
# every Trainer contender once, to name the fastest on this machine
PYTHONPATH=$after python benchmarks/train_throughput.py --data emotion_style_9000.txt --sep ';' --columns text,label \
    --samples 2048 --repeats 1 --contenders kerasft,hf-trainer-grouped,hf-trainer-bf16,hf-trainer-grouped-bf16 \
    --json train-2048-hf-all.json
