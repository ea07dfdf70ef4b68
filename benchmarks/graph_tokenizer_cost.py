"""What an in-graph tokenizer costs to build, save and load: its op count, and the seconds every export pays.

    python benchmarks/graph_tokenizer_cost.py [--families bert-uncased,roberta,...] [--repeats 3] [--json cost.json]

Per family (the tiny tokenizers tests/tokenizer_fixtures.py trains, and the packaged MiniLM's WordPiece), a
serving-like function of the tokenizer alone, ``text -> input_ids, attention_mask, ...`` (and the pair form,
``text, text_pair -> ...``), is traced, saved as a SavedModel, loaded back and called once, as kerasft.export
does with the whole model. Reported: the ops of each traced graph, and the median over ``--repeats`` of the
seconds to trace both forms, to save, to load, and of the first call after loading (TensorFlow optimizes the
loaded graph then). Each repeat builds the module anew, so nothing is served from a cache of an earlier one.
The machine's CPU steal over each family's repeats is reported beside its figures (train_throughput.py's measure).

To compare two commits in one run, alternate them through PYTHONPATH (each tree's own kerasft and tests):

    git worktree add /tmp/before <commit>
    for tree in /tmp/before $PWD /tmp/before $PWD; do
        PYTHONPATH=$tree:$tree/tests python benchmarks/graph_tokenizer_cost.py --families minilm,roberta --json ...
    done
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tensorflow as tf
from tokenizer_fixtures import BUILDERS
from train_throughput import cpu_times, steal_share
from transformers import AutoTokenizer

from kerasft.graph_tokenizers import for_tokenizer
from kerasft.recipe import packaged_minilm

MAX_LENGTH = 128
TEXTS = ["Hello, World! It's 3.14 o'clock.", "Café naïve straße", ""]


def checkpoint_folder(family: str, root: Path) -> str:
    if family == "minilm":
        return packaged_minilm()
    return str(BUILDERS[family](root / family))


def one_build(hf_tokenizer, folder: Path) -> dict:
    tokenizer = for_tokenizer(hf_tokenizer, MAX_LENGTH, verify=False)
    module = tf.Module()
    module.tokenizer = tokenizer
    text = tf.TensorSpec([None], tf.string)
    module.single = tf.function(lambda text: tokenizer(text), input_signature=[text], autograph=False)
    module.pair = tf.function(
        lambda text, text_pair: tokenizer(text, text_pair=text_pair), input_signature=[text, text], autograph=False
    )
    started = time.perf_counter()
    single, pair = module.single.get_concrete_function(), module.pair.get_concrete_function()
    traced = time.perf_counter()
    tf.saved_model.save(module, str(folder), signatures={"single": single, "pair": pair})
    saved = time.perf_counter()
    loaded = tf.saved_model.load(str(folder))
    ready = time.perf_counter()
    loaded.signatures["single"](text=tf.constant(TEXTS))
    called = time.perf_counter()
    return {
        "ops_single": len(single.graph.get_operations()),
        "ops_pair": len(pair.graph.get_operations()),
        "trace_s": traced - started,
        "save_s": saved - traced,
        "load_s": ready - saved,
        "first_call_s": called - ready,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="minilm," + ",".join(BUILDERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for family in args.families.split(","):
            hf_tokenizer = AutoTokenizer.from_pretrained(checkpoint_folder(family, root))
            before = cpu_times()
            runs = [one_build(hf_tokenizer, root / f"saved-{family}-{repeat}") for repeat in range(args.repeats)]
            results[family] = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}
            results[family]["cpu_steal"] = round(steal_share(before, cpu_times()), 4)
            print(family, json.dumps(results[family]), flush=True)
    summed = [key for key in next(iter(results.values())) if key != "cpu_steal"]
    totals = {key: round(sum(result[key] for result in results.values()), 3) for key in summed}
    totals["cpu_steal_max"] = max(result["cpu_steal"] for result in results.values())
    print("all", json.dumps(totals))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"families": results, "total": totals, "repeats": args.repeats}, indent=2)
        )


if __name__ == "__main__":
    main()
