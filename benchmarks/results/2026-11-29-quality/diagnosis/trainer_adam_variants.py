"""MRPC Trainer diagnosis as the benchmark trains it (random order, torch Adam eps 1e-7), with one variant:
argv[1]: base | kerasadam (Keras/TF's epsilon-hat Adam) | eager (eager attention) ; argv[2]: epochs; argv[3]: seed."""

import argparse
import math
import sys
import tempfile
import time

sys.path.insert(0, "/work/wt-16/benchmarks")
import multilabel_pairs_quality as q
import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

from kerasft import metrics as scores
from kerasft.data import LABEL, load_splits, tokenize

variant, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


class KerasAdam(torch.optim.Optimizer):
    """TF's ResourceApplyAdam: lr_t = lr*sqrt(1-b2^t)/(1-b1^t); w -= lr_t*m/(sqrt(v)+eps)."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-7):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            b1, b2 = g["betas"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"] = 0
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                st["t"] += 1
                t = st["t"]
                st["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                lr_t = g["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
                p.addcdiv_(st["m"], st["v"].sqrt().add_(g["eps"]), value=-lr_t)


args = argparse.Namespace(
    task="mrpc",
    data="/tmp/q16/mrpc",
    checkpoint=None,
    max_length=128,
    epochs=epochs,
    batch_size=32,
    learning_rate=1e-4,
    seed=seed,
    kerasft_overrides=[],
)
recipe = q.recipe_for(args)
data = load_splits(recipe.data, seed=seed)
tok = AutoTokenizer.from_pretrained(recipe.model.checkpoint)
t = tokenize(data.splits, tok, 128)
t = t.select_columns([n for n in [*tok.model_input_names, LABEL] if n in t["train"].column_names]).rename_column(
    LABEL, "labels"
)
set_seed(seed)
extra = {"attn_implementation": "eager"} if variant == "eager" else {}
model = AutoModelForSequenceClassification.from_pretrained(recipe.model.checkpoint, num_labels=2, **extra)
opt = (
    KerasAdam(model.parameters(), lr=1e-4)
    if variant == "kerasadam"
    else torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-7)
)
with tempfile.TemporaryDirectory() as folder:
    ta = TrainingArguments(
        output_dir=folder,
        per_device_train_batch_size=32,
        learning_rate=1e-4,
        num_train_epochs=epochs,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_epsilon=1e-7,
        max_grad_norm=0.0,
        seed=seed,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=26,
        report_to=[],
        group_by_length=False,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    tr = Trainer(
        model=model,
        args=ta,
        train_dataset=t["train"],
        data_collator=DataCollatorWithPadding(tok),
        optimizers=(opt, None),
    )
    s = time.perf_counter()
    tr.train()
    print(variant, "seconds", round(time.perf_counter() - s), "steps", tr.state.global_step)
    print(variant, "loss every 26 steps", [round(h["loss"], 3) for h in tr.state.log_history if "loss" in h])
    logits = torch.tensor(tr.predict(t["test"]).predictions)
    print(
        variant, scores.classification_scores(np.asarray(data.splits["test"][LABEL]), torch.softmax(logits, -1).numpy())
    )
