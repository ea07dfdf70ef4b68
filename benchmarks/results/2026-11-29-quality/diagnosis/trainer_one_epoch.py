"""Diagnosis: MRPC, Trainer, 1 epoch, with the loss logged; argv[1] = optim name or 'default'."""

import argparse
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
)

from kerasft import metrics as scores
from kerasft.data import LABEL, load_splits, tokenize

optim = sys.argv[1]
task = sys.argv[2] if len(sys.argv) > 2 else "mrpc"
args = argparse.Namespace(
    task=task,
    data="/tmp/q16/mrpc" if task == "mrpc" else "/tmp/q16/go",
    checkpoint=None,
    max_length=128,
    epochs=1,
    batch_size=32,
    learning_rate=1e-4,
    seed=0,
    kerasft_overrides=[],
)
recipe = q.recipe_for(args)
data = load_splits(recipe.data, seed=0)
tok = AutoTokenizer.from_pretrained(recipe.model.checkpoint)
t = tokenize(data.splits, tok, 128)
t = t.select_columns([n for n in [*tok.model_input_names, LABEL] if n in t["train"].column_names]).rename_column(
    LABEL, "labels"
)
model = AutoModelForSequenceClassification.from_pretrained(
    recipe.model.checkpoint,
    num_labels=len(data.label_names),
    problem_type="multi_label_classification" if data.multi_label else "single_label_classification",
)
kw = {} if optim == "default" else {"optim": optim}
with tempfile.TemporaryDirectory() as folder:
    ta = TrainingArguments(
        output_dir=folder,
        per_device_train_batch_size=32,
        learning_rate=1e-4,
        num_train_epochs=1,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_epsilon=1e-7,
        max_grad_norm=0.0,
        seed=0,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=10,
        report_to=[],
        group_by_length=(sys.argv[3] == "1") if len(sys.argv) > 3 else True,
        use_cpu=True,
        dataloader_num_workers=0,
        **kw,
    )
    print("optim", ta.optim, "max_grad_norm", ta.max_grad_norm)
    tr = Trainer(model=model, args=ta, train_dataset=t["train"], data_collator=DataCollatorWithPadding(tok))
    s = time.perf_counter()
    tr.train()
    print("seconds", time.perf_counter() - s, "steps", tr.state.global_step)
    print(
        "optimizer",
        type(tr.optimizer),
        getattr(tr.optimizer, "optimizer", None).__class__,
        tr.optimizer.param_groups[0].get("fused"),
    )
    print([round(h["loss"], 4) for h in tr.state.log_history if "loss" in h])
    logits = torch.tensor(tr.predict(t["test"]).predictions)
    truth = np.asarray(data.splits["test"][LABEL])
    if data.multi_label:
        p = torch.sigmoid(logits).numpy()
        print(scores.multi_label_scores(truth, p, [0.5] * p.shape[1]))
    else:
        print(scores.classification_scores(truth, torch.softmax(logits, -1).numpy()))
