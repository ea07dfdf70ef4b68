"""The WordPiece graph of the packaged MiniLM, one thread, shares of 1,000 texts: CPU microseconds a text.

# before the change (a worktree of 7ad99f1 on PYTHONPATH): each stage of the graph traced alone
python wordpiece_probe.py stages /tmp/ds/texts-1000000.csv 50000
# after it: words and pieces the regex way (`_words_then_pieces`) against `tokenize` (ASCII texts end to
# end), both checked equal, and the whole graph against the Python tokenizer on 5,000 texts
python wordpiece_probe.py paths /tmp/ds/texts-1000000.csv 50000
python benchmarks/make_emotion_style.py emo20k.txt --rows 20000
python wordpiece_probe.py paths emo20k.txt 20000 ';'
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

TEXTS = tf.TensorSpec([None], tf.string)


def microseconds(function, shares, texts: int, repeats: int = 1) -> float:
    """The least CPU time of ``repeats`` passes of a traced ``function`` over ``shares``, per text."""
    traced = tf.function(function, input_signature=[TEXTS])
    traced(shares[0])
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for share in shares:
            traced(share)
        best = min(best, time.process_time() - started)
    return best / texts * 1e6


def stages(graph, shares, normalized, texts):
    family = graph.family
    timed = {
        "clean1": lambda t: tf.strings.regex_replace(t, r"[\x{0}\x{FFFD}]|[^\P{C}\t\n\r]", ""),
        "clean2": lambda t: tf.strings.regex_replace(t, f"[{WHITESPACE.replace(' ', '')}]", " "),
        "cjk": lambda t: tf.strings.regex_replace(t, f"([{CJK}])", r" \1 "),
        "nfd": lambda t: between_nuls(lambda x: tf_text.normalize_utf8(x, "NFD"), t),
        "mn": lambda t: tf.strings.regex_replace(t, r"\p{Mn}", ""),
        "sigma": lambda t: tf.strings.regex_replace(t, "Σ", "σ"),
        "lower": lambda t: between_nuls(lambda x: tf.strings.lower(x, encoding="utf-8"), t),
        "ascii_check": lambda t: tf.strings.regex_full_match(t, r"[\x00-\x7f]*"),
        "normalize_all": family.normalize,
        "tokenize": lambda t: family.tokenize(t).flat_values,
        "whole_call": lambda t: graph(t)["input_ids"],
    }
    for name, function in timed.items():
        inputs = normalized if name == "tokenize" else shares
        print(f"{name:14s} {microseconds(function, inputs, texts, repeats=2):6.1f} us/text")


def paths(graph, shares, normalized, texts, tokenizer, rows):
    family = graph.family
    old, new = family._words_then_pieces, family.tokenize
    print("regex split", f"{microseconds(old, normalized, texts):.1f} us/text")
    print("end to end ", f"{microseconds(new, normalized, texts):.1f} us/text")
    print("whole graph", f"{microseconds(lambda t: graph(t)['input_ids'], shares, texts):.1f} us/text")
    print("identical:", all(old(share).to_list() == new(share).to_list() for share in normalized))
    python = tokenizer(rows[:5000], truncation=True, max_length=128)["input_ids"]
    ours = [graph(share) for share in shares[:5]]
    ids = [row for out in ours for row in out["input_ids"].numpy().tolist()]
    masks = [row for out in ours for row in out["attention_mask"].numpy().tolist()]
    same = all([i for i, m in zip(row, mask) if m] == want for row, mask, want in zip(ids, masks, python))
    print("matches the Python tokenizer on 5000:", same)


def main() -> None:
    mode, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sep = sys.argv[4] if len(sys.argv) > 4 else ","
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=sep)
        if sep == ",":
            next(reader)  # data_scale.py's CSV header
        rows = [row[0] for _, row in zip(range(count), reader)]
    print(len(rows), "texts, ASCII share", sum(text.isascii() for text in rows) / len(rows))
    tokenizer = load_tokenizer(packaged_minilm())
    graph = for_tokenizer(tokenizer, 128, verify=False)
    shares = [tf.constant(rows[i : i + 1000]) for i in range(0, len(rows), 1000)]
    normalized = [graph.family.normalize(share) for share in shares]
    if mode == "stages":
        stages(graph, shares, normalized, len(rows))
    else:
        paths(graph, shares, normalized, len(rows), tokenizer, rows)


if __name__ == "__main__":
    main()
