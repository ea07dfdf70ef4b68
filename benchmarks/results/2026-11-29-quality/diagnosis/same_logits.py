import argparse
import sys

sys.path.insert(0, "/work/wt-16/benchmarks")
import multilabel_pairs_quality as q
import numpy as np
import tensorflow as tf
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from kerasft.data import LABEL, load_splits, tokenize
from kerasft.model import build_classifier

args = argparse.Namespace(
    task="mrpc",
    data="/tmp/q16/mrpc",
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
ck = recipe.model.checkpoint
tok = AutoTokenizer.from_pretrained(ck)
t = tokenize(data.splits, tok, 128)
t = t.select_columns([n for n in [*tok.model_input_names, LABEL] if n in t["train"].column_names]).rename_column(
    LABEL, "labels"
)
batch = DataCollatorWithPadding(tok)([t["train"][i] for i in range(8)])
print({k: (v.dtype, v.shape) for k, v in batch.items()})
pt = AutoModelForSequenceClassification.from_pretrained(ck, num_labels=2)
tfm = build_classifier(ck, data.label_names)
w = {v.name: v for v in tfm.weights}
print([n for n in w if "classifier" in n or "pooler" in n])
k = [v for n, v in w.items() if "classifier" in n and "kernel" in n][0]
b = [v for n, v in w.items() if "classifier" in n and "bias" in n][0]
with torch.no_grad():
    pt.classifier.weight.copy_(torch.tensor(k.numpy().T))
    pt.classifier.bias.copy_(torch.tensor(b.numpy()))
pt.eval()
inputs = {k2: v for k2, v in batch.items() if k2 != "labels"}
with torch.no_grad():
    lp = pt(**inputs).logits.numpy()
lt = tfm({k2: tf.constant(v.numpy()) for k2, v in inputs.items()}, training=False).logits.numpy()
print("logits pt", lp[:3], "tf", lt[:3], "maxdiff", np.abs(lp - lt).max())
sd = dict(pt.named_parameters())
print(
    "pooler pt",
    sd["bert.pooler.dense.weight"].flatten()[:4],
    "tf",
    [v for n, v in w.items() if "pooler" in n and "kernel" in n][0].numpy().T.flatten()[:4],
)
# gradient magnitudes
out = pt(**inputs, labels=batch["labels"])
out.loss.backward()
print(
    "pt loss",
    out.loss.item(),
    "grad norm emb",
    pt.bert.embeddings.word_embeddings.weight.grad.norm().item(),
    "cls",
    pt.classifier.weight.grad.norm().item(),
)
