"""The WordPiece graph's word split and pieces, the regex way (`_words_then_pieces`) against the change's
`tokenize` (ASCII texts end to end), one thread, shares of 1000 texts; both checked equal, and the whole graph
against the Python tokenizer on 5,000 texts.

    PYTHONPATH=/work/main python ascii_path.py /tmp/ds/texts-1000000.csv 50000
    python benchmarks/make_emotion_style.py emo20k.txt --rows 20000
    PYTHONPATH=/work/main python ascii_path.py emo20k.txt 20000 ';'
"""

import csv
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
from kerasft.graph_tokenizers import for_tokenizer  # noqa: E402
from kerasft.model import load_tokenizer  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402

path, rows = sys.argv[1], int(sys.argv[2])
sep = sys.argv[3] if len(sys.argv) > 3 else ","
with open(path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f, delimiter=sep)
    if sep == ",":
        next(reader)
    texts = [r[0] for _, r in zip(range(rows), reader)]
print("ascii share", sum(t.isascii() for t in texts) / len(texts))
tok = load_tokenizer(packaged_minilm())
g = for_tokenizer(tok, 128, verify=False)
fam = g.family
shares = [tf.constant(texts[i : i + 1000]) for i in range(0, len(texts), 1000)]
normalized = [fam.normalize(s) for s in shares]
S = tf.TensorSpec([None], tf.string)
old = tf.function(lambda t: fam._words_then_pieces(t), input_signature=[S])
new = tf.function(lambda t: fam.tokenize(t), input_signature=[S])
whole = tf.function(lambda t: g(t)["input_ids"], input_signature=[S])
for name, f, inp in (("old", old, normalized), ("new", new, normalized), ("whole", whole, shares)):
    f(inp[0])
    t0 = time.process_time()
    for s in inp:
        f(s)
    print(name, f"{(time.process_time() - t0) / len(texts) * 1e6:.1f} us/text")
same = all(old(s).to_list() == new(s).to_list() for s in normalized)
print("identical:", same)
hf = tok(texts[:5000], truncation=True, max_length=128)["input_ids"]
mine = [r for s in shares[:5] for r in g(s)["input_ids"].numpy().tolist()]
mask = [r for s in shares[:5] for r in g(s)["attention_mask"].numpy().tolist()]
ok = all([i for i, m in zip(row, mk) if m] == h for row, mk, h in zip(mine, mask, hf))
print("matches HF on 5000:", ok)
