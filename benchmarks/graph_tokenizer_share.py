"""The in-graph tokenizers' share of serving time at batch 64, per family, next to a MiniLM-sized model.

    python benchmarks/graph_tokenizer_share.py [--texts 2048] [--json share.json]

Tokenizers: the packaged all-MiniLM-L6-v2 WordPiece, and a byte-level BPE (RoBERTa pipeline, vocabulary
up to 30k) and a SentencePiece unigram (XLM-R pipeline, 8k pieces) trained here on synthetic
emotion-style texts (benchmarks/make_emotion_style.py, seed 1) plus the multilingual fixture
sentences; timed on other synthetic texts (seed 2), each batch a graph call of
`for_tokenizer(...)(texts)` (tokenizer only). The model side is kerasft.export's predict_ids on the
MiniLM (6 layers, 384 wide, chunks of 8 length-sorted rows) fed the WordPiece ids of the same batches.
Share = tokenizer / (tokenizer + model). Median of --repeats passes.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tensorflow as tf
from make_emotion_style import make_rows
from tokenizer_fixtures import TRAINING_TEXT

BATCH = 64


def byte_bpe(folder: Path, corpus: list[str]):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        corpus, vocab_size=30000, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    trainer.save_model(str(folder))
    return RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))


def sentencepiece_unigram(folder: Path, corpus: list[str]):
    import io

    import sentencepiece
    from transformers import XLMRobertaTokenizerFast

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=8000,
        model_type="unigram",
        minloglevel=2,
        hard_vocab_limit=False,
    )
    path = folder / "sentencepiece.bpe.model"
    path.write_bytes(model.getvalue())
    return XLMRobertaTokenizerFast(vocab_file=str(path))


def per_batch_ms(function, batches, repeats: int) -> float:
    function(batches[0])  # trace
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            function(batch)
        passes.append((time.perf_counter() - started) / len(batches) * 1000)
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = measure(args.texts, args.repeats)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def measure(count: int, repeats: int) -> dict:
    """Per family: the in-graph tokenizer's milliseconds per batch of 64 and its share beside the MiniLM model's."""
    from transformers import AutoTokenizer

    from kerasft.export import TextClassifierModule
    from kerasft.graph_tokenizers import for_tokenizer
    from kerasft.model import build_classifier
    from kerasft.recipe import packaged_minilm

    corpus = [text for text, _ in make_rows(20000, 1)] + TRAINING_TEXT * 20
    texts = [text for text, _ in make_rows(count, 2)]
    batches = [tf.constant(texts[start : start + BATCH]) for start in range(0, len(texts), BATCH)]
    folder = Path(tempfile.mkdtemp())
    (folder / "bpe").mkdir()
    (folder / "spm").mkdir()
    minilm = AutoTokenizer.from_pretrained(packaged_minilm())
    families = {
        "WordPiece (MiniLM)": minilm,
        "byte-level BPE": byte_bpe(folder / "bpe", corpus),
        "SentencePiece unigram": sentencepiece_unigram(folder / "spm", corpus),
    }
    model = build_classifier(packaged_minilm(), [str(n) for n in range(6)])
    module = TextClassifierModule(model, minilm, [str(n) for n in range(6)], max_length=128)
    wordpiece = for_tokenizer(minilm, max_length=128)
    inputs = [wordpiece(batch) for batch in batches]
    model_ms = per_batch_ms(
        lambda index: module.functions.predict_ids(inputs[index]["input_ids"], inputs[index]["attention_mask"]),
        list(range(len(inputs))),
        repeats,
    )
    results = {"batch": BATCH, "texts": len(texts), "model_ms_per_batch": round(model_ms, 2), "families": {}}
    for name, python in families.items():
        graph = for_tokenizer(python, max_length=128)
        tokenize = tf.function(
            lambda text, graph=graph: graph(text), input_signature=[tf.TensorSpec([None], tf.string)]
        )
        tokenizer_ms = per_batch_ms(tokenize, batches, repeats)
        started = time.perf_counter()
        for batch in batches:
            python([text.decode() for text in batch.numpy()], truncation=True, max_length=128, padding=True)
        python_ms = (time.perf_counter() - started) / len(batches) * 1000
        results["families"][name] = {
            "vocabulary": len(python),
            "tokenizer_ms_per_batch": round(tokenizer_ms, 2),
            "python_fast_tokenizer_ms_per_batch": round(python_ms, 2),
            "share_of_serving": round(tokenizer_ms / (tokenizer_ms + model_ms), 4),
        }
    return results


if __name__ == "__main__":
    main()
