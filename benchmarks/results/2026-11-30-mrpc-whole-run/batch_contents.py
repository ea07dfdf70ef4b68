"""kerasft's training batches on the MRPC recipe (seed 0, all 3 epochs, as kerasft.train builds them): does every
row's label belong to its text, and does every epoch hold every training example once?

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 /work/bench-venv/bin/python \
        benchmarks/results/2026-11-30-mrpc-whole-run/batch_contents.py
"""

import sys, numpy as np

sys.path.insert(0, "benchmarks/results/2026-11-30-mrpc-step")
sys.path.insert(0, "benchmarks/results/2026-11-29-quality/diagnosis")
import pairs_step_by_step as probe, step_by_step as g
from kerasft.train import training_plan

s = probe.mrpc_session("/tmp/q16/mrpc", None, 2e-5, 0)
train = s.tokenized["train"]
truth = {}
for ids, label in zip(train["input_ids"], train["label"]):
    truth.setdefault(tuple(ids), set()).add(int(label))
plan = training_plan(s)
batches = g.first_batches(s, plan.batches)
bad = total = 0
for x, y in batches:
    for row, label in zip(x["input_ids"], y):
        ids = tuple(int(t) for t in row if t != 0)
        total += 1
        if int(label) not in truth.get(ids, set()):
            bad += 1
print("rows", total, "label not matching its text", bad, "distinct texts", len(truth))
n = plan.steps_per_epoch
for epoch in range(3):
    seen = [
        tuple(int(t) for t in row if t != 0) for x, _ in batches[epoch * n : (epoch + 1) * n] for row in x["input_ids"]
    ]
    print("epoch", epoch + 1, "rows", len(seen), "distinct", len(set(seen)), "of", len(truth))
