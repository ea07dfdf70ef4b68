"""Per-stage CPU time of the WordPiece graph (packaged MiniLM) on shares of 1000 texts, one thread, before the change.

PYTHONPATH=<worktree of 7ad99f1> python graph_stages.py /tmp/ds/texts-1000000.csv 50000
"""

import csv
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
import tensorflow_text as tf_text  # noqa: E402

from kerasft.graph_tokenizers import for_tokenizer  # noqa: E402
from kerasft.graph_tokenizers.ragged import between_nuls  # noqa: E402
from kerasft.graph_tokenizers.unicode_classes import CJK, WHITESPACE  # noqa: E402
from kerasft.model import load_tokenizer  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402

path, rows = sys.argv[1], int(sys.argv[2])
sep = sys.argv[3] if len(sys.argv) > 3 else ","
with open(path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f, delimiter=sep)
    next(reader) if sep == "," else None
    texts = [r[0] for _, r in zip(range(rows), reader)]
print(len(texts), "texts", "ascii share", sum(t.isascii() for t in texts) / len(texts))
tok = load_tokenizer(packaged_minilm())
g = for_tokenizer(tok, 128, verify=False)
fam = g.family
shares = [tf.constant(texts[i : i + 1000]) for i in range(0, len(texts), 1000)]
S = tf.TensorSpec([None], tf.string)
stages = {
    "clean1": lambda t: tf.strings.regex_replace(t, r"[\x{0}\x{FFFD}]|[^\P{C}\t\n\r]", ""),
    "clean2": lambda t: tf.strings.regex_replace(t, f"[{WHITESPACE.replace(' ', '')}]", " "),
    "cjk": lambda t: tf.strings.regex_replace(t, f"([{CJK}])", r" \1 "),
    "nfd": lambda t: between_nuls(lambda x: tf_text.normalize_utf8(x, "NFD"), t),
    "mn": lambda t: tf.strings.regex_replace(t, r"\p{Mn}", ""),
    "sigma": lambda t: tf.strings.regex_replace(t, "Σ", "σ"),
    "lower": lambda t: between_nuls(lambda x: tf.strings.lower(x, encoding="utf-8"), t),
    "ascii_check": lambda t: tf.strings.regex_full_match(t, r"[\x00-\x7f]*"),
    "normalize_all": fam.normalize,
    "tokenize": lambda t: fam.tokenize(t).flat_values,
    "whole_call": lambda t: g(t)["input_ids"],
}
normalized = [fam.normalize(s) for s in shares]
for name, fn in stages.items():
    f = tf.function(fn, input_signature=[S])
    inputs = normalized if name in ("tokenize",) else shares
    f(inputs[0])
    best = None
    for _rep in range(2):
        t0 = time.process_time()
        for s in inputs:
            f(s)
        el = time.process_time() - t0
        best = el if best is None else min(best, el)
    print(f"{name:14s} {best:7.2f} s  {best / len(texts) * 1e6:6.1f} us/text")
