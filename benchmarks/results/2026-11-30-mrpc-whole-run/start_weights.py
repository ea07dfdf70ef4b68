"""The weights each side starts from: kerasft's loaded TF model (kerasft.session.Session on the quality benchmark's MRPC
recipe, the packaged all-MiniLM-L6-v2) against AutoModelForSequenceClassification.from_pretrained of the same
checkpoint, tensor by tensor (largest absolute difference). Only the new head is drawn apart.

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 /work/bench-venv/bin/python \
        benchmarks/results/2026-11-30-mrpc-whole-run/start_weights.py
"""

import sys

import numpy as np

sys.path.insert(0, "benchmarks/results/2026-11-30-mrpc-step")
sys.path.insert(0, "benchmarks/results/2026-11-29-quality/diagnosis")
import pairs_step_by_step as probe
import step_by_step as g
from transformers import AutoModelForSequenceClassification

from kerasft.recipe import packaged_minilm

s = probe.mrpc_session("/tmp/q16/mrpc", None, 2e-5, 0)
pt = AutoModelForSequenceClassification.from_pretrained(packaged_minilm(), num_labels=2)
pairs = g.pairs_of(s.model, pt)
params = dict(pt.named_parameters())
worst = []
for _tfname, var, ptname, transposed in pairs:
    a = g.as_pt(var.numpy(), transposed)
    b = params[ptname].detach().numpy()
    worst.append((float(np.abs(a - b).max()), ptname, a.std(), b.std()))
worst.sort(reverse=True)
for w in worst[:8]:
    print(w)
print(s.model.config.layer_norm_eps, pt.config.layer_norm_eps, s.model.config.hidden_act, pt.config.hidden_act)
