"""kerasft's two ways of tokenizing a large split, side by side: in-graph threads against Rust processes.

    python benchmarks/tokenize_paths.py [--rows 200000] [--families minilm,roberta,xlm-roberta] [--pairs]
        [--repeats 2] [--json FILE]

Large splits (`kerasft.tokenizing.PARALLEL_ROWS`) are tokenized on every core, by `GraphEncoder` (the
export's in-graph tokenizer, one thread per core, in the run's own process) where the tokenizer has an
exact in-graph form, else by `FastEncoder` (the Rust tokenizer, one process per core). This benchmark
runs `tokenizing.tokenize` both ways on the same split and checks the two give the same ids (on every 97th
row).

Tokenizers: ``minilm`` is the packaged all-MiniLM-L6-v2 (WordPiece, 30,522 pieces). The offline machines
have no other real checkpoint, so ``roberta`` (byte-level BPE) and ``xlm-roberta`` (SentencePiece unigram)
are trained here on the benchmark's own texts, with vocabularies of --vocab pieces (tests/tokenizer_fixtures.py's
builders). Texts: data_scale.py's synthetic ones, 3-60 made-up words (``--pairs``: each text paired with
another row's). The split is read from a CSV into `datasets`' cache as a run reads it, and each timing
starts from an empty cache, the paths alternating within each repeat. CPU steal over each timing says
whether the host was busy meanwhile (train_throughput.py's measure).

JSON: ``{"families": {"<name>": {"in_graph_s": [...], "processes_s": [...], "speedup": median ratio, ...}}}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(Path(__file__).resolve().parent)]
from data_scale import write_csv  # noqa: E402
from train_throughput import cpu_times, steal_share  # noqa: E402

MAX_LENGTH = 128
TRAINING_ROWS = 50_000  # texts the roberta and xlm-roberta tokenizers are trained on


def build_tokenizer(family: str, folder: Path, corpus: list[str], vocab: int):
    from tokenizer_fixtures import build_byte_bpe, build_sentencepiece
    from transformers import AutoTokenizer

    from kerasft.model import load_tokenizer
    from kerasft.recipe import packaged_minilm

    if family == "minilm":
        return load_tokenizer(packaged_minilm())
    if family == "roberta":
        return AutoTokenizer.from_pretrained(build_byte_bpe(folder / family, corpus=corpus, vocab_size=vocab))
    if family == "xlm-roberta":
        return AutoTokenizer.from_pretrained(
            build_sentencepiece(folder / family, "xlm-roberta", corpus=corpus, vocab_size=vocab)
        )
    raise SystemExit(f"--families: unknown {family!r} (minilm, roberta, xlm-roberta)")


def load_split(csv_path: Path, pairs: bool, cache: str):
    """The CSV as a run loads it: into `datasets`' cache, texts and labels."""
    import datasets

    split = datasets.load_dataset("csv", data_files=str(csv_path), split="train", cache_dir=cache)
    if pairs:  # each text with the next row's: pairs of about twice a text's length, some cut by longest_first
        split = split.add_column("text_pair", split["text"][1:] + split["text"][:1])
    return split


def timed_tokenize(csv_path: Path, tokenizer, pairs: bool, in_graph: bool, folder: Path) -> tuple[float, float, list]:
    """Seconds, CPU steal and every 97th row's ids of `tokenize` one way, from an empty cache."""
    from kerasft import tokenizing

    with tempfile.TemporaryDirectory(dir=folder) as cache:
        split = load_split(csv_path, pairs, cache)
        original, taken = (tokenizing.faster_in_graph, tokenizing._map_in_graph), []

        def map_in_graph(splits, encode):  # the in-graph path, or None (the Rust path) when not asked for
            taken.append(in_graph)
            return original[1](splits, encode) if in_graph else None

        # every family may take either path here; kerasft itself sends only WordPiece in-graph (faster_in_graph)
        tokenizing.faster_in_graph, tokenizing._map_in_graph = (lambda tokenizer: True), map_in_graph
        try:
            before, started = cpu_times(), time.perf_counter()
            tokenized = tokenizing.tokenize(split, tokenizer, MAX_LENGTH, log=True)
            seconds, steal = time.perf_counter() - started, steal_share(before, cpu_times())
        finally:
            tokenizing.faster_in_graph, tokenizing._map_in_graph = original
        if taken != [in_graph]:
            raise SystemExit(f"the {'in-graph' if in_graph else 'Rust'} path was not taken")
        sample = tokenized.select(range(0, len(tokenized), 97)).to_dict()
        return round(seconds, 2), round(steal, 4), sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--families", default="minilm,roberta,xlm-roberta")
    parser.add_argument("--vocab", type=int, default=32_000, help="pieces of the tokenizers trained here")
    parser.add_argument("--pairs", action="store_true", help="sentence pairs instead of single texts")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "kerasft-tokenize-paths")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from kerasft.strategy import usable_cores

    args.folder.mkdir(parents=True, exist_ok=True)
    csv_path = args.folder / f"texts-{args.rows}.csv"
    if not csv_path.exists():
        write_csv(csv_path, args.rows)
    corpus_path = args.folder / f"corpus-{TRAINING_ROWS}.csv"
    if not corpus_path.exists():
        write_csv(corpus_path, TRAINING_ROWS, seed=1)
    with open(corpus_path, newline="", encoding="utf-8") as handle:
        corpus = [row["text"] for row in csv.DictReader(handle)]
    report = {"rows": args.rows, "pairs": args.pairs, "cores": usable_cores(), "families": {}}
    with tempfile.TemporaryDirectory(dir=args.folder) as work:
        for family in args.families.split(","):
            tokenizer = build_tokenizer(family, Path(work), corpus, args.vocab)
            figures = {"in_graph_s": [], "processes_s": [], "steal": [], "vocabulary": len(tokenizer)}
            for _ in range(args.repeats):
                graph_s, graph_steal, graph_ids = timed_tokenize(csv_path, tokenizer, args.pairs, True, args.folder)
                rust_s, rust_steal, rust_ids = timed_tokenize(csv_path, tokenizer, args.pairs, False, args.folder)
                if graph_ids != rust_ids:
                    raise SystemExit(f"{family}: the two paths gave different ids")
                figures["in_graph_s"].append(graph_s)
                figures["processes_s"].append(rust_s)
                figures["steal"] += [graph_steal, rust_steal]
            figures["speedup"] = round(
                statistics.median(figures["processes_s"]) / statistics.median(figures["in_graph_s"]), 2
            )
            print(f"{family}: {json.dumps(figures)}", flush=True)
            report["families"][family] = figures
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
