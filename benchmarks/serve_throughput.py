"""Serving throughput: an exported kerasft SavedModel (raw-text signature) vs HF `pipeline("text-classification")`
on PyTorch.

    python benchmarks/serve_throughput.py [--data FILE --sep ';' --columns text,label] [--texts 2048] \
        [--json serve.json]

Both sides hold the same weights: the packaged all-MiniLM-L6-v2 (``--checkpoint`` for another) with a seeded
random 6-label head, exported by kerasft (float32, in-graph tokenizer) and copied into the PyTorch model,
which serves in float32 and, as a third side, in bfloat16 (``model.to(torch.bfloat16)``, as
``torch_dtype=torch.bfloat16`` loads it); ratios are against the fastest pipeline at each batch size. Each
side runs in its own process, warms up, then answers the same texts in the same order at batch 1 (the first
``--single`` texts) and at batch 64 (all of them); texts/s counts raw text in, labels out, tokenization
included. ``kerasft predict`` (kerasft.serve.predict, which batches by length) is measured too.

Threads: the ``kerasft`` side runs with kerasft.serve.serving_threads (one thread inside each op, every
core across ops: what ``kerasft predict`` sets, and TF Serving's ``--tensorflow_intra_op_parallelism=1
--tensorflow_inter_op_parallelism=<cores>``); ``kerasft-default-threads`` with TensorFlow's defaults. Each
pipeline also runs with one PyTorch thread (``-1-thread``, ``torch.set_num_threads(1)``) beside its default
(one per core), so that the ratio is against each peer's fastest setting at each batch size. Without
``--data`` the texts come from benchmarks/make_emotion_style.py (synthetic). The labels both sides give are
compared, so a fast wrong answer shows. Each side's CPU steal is reported as in train_throughput.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import machine, peak_rss_mb, read_rows, run_child  # noqa: E402

LABELS = ["anger", "fear", "joy", "love", "sadness", "surprise"]
PIPELINES = ("hf-pipeline", "hf-pipeline-bf16", "hf-pipeline-1-thread", "hf-pipeline-bf16-1-thread")
SIDES = ("kerasft", "kerasft-default-threads") + PIPELINES  # kerasft first: it writes the head the pipelines copy
BATCH = 64


def timed(answer, texts: list[str], batch: int) -> tuple[float, list[str]]:
    """Texts per second answering ``texts`` in batches of ``batch``, and the labels given."""
    labels = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        labels += answer(texts[start : start + batch])
    return len(texts) / (time.perf_counter() - started), labels


def run_kerasft(texts, single: int, checkpoint: str, workdir: Path, serving_threads: bool = True) -> dict:
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from kerasft import export, serve
    from kerasft import model as models

    if serving_threads:
        serve.use_serving_threads()

    keras.utils.set_random_seed(0)
    tokenizer = models.load_tokenizer(checkpoint)
    model = models.build_classifier(checkpoint, LABELS)
    module = export.TextClassifierModule.without_optimizer(model, tokenizer, LABELS, 512)
    path, _ = export.export_model(module, workdir / "export" / "bench")
    np.savez(workdir / "head.npz", kernel=model.classifier.kernel.numpy(), bias=model.classifier.bias.numpy())
    del model
    signature = serve.load_text_signature(path)

    def answer(batch):
        return [label.decode() for label in signature(text=tf.constant(batch))["label"].numpy()]

    timed(answer, texts[:BATCH], BATCH)  # warm-up: traces and allocates
    timed(answer, texts[:4], 1)
    per_text, single_labels = timed(answer, texts[:single], 1)
    batched, labels = timed(answer, texts, BATCH)
    predict_started = time.perf_counter()
    predicted = [item["label"] for item in serve.predict(path, texts, batch_size=BATCH)]
    predict_rate = len(texts) / (
        time.perf_counter() - predict_started
    )  # includes loading the SavedModel, as `kerasft predict` does
    return {
        "batch_1": per_text,
        "batch_64": batched,
        "kerasft_predict_64": predict_rate,
        "labels": labels,
        "agree_single": single_labels == labels[:single],
        "agree_predict": predicted == labels,
        "threads": [
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        ],
    }


def run_hf_pipeline(
    texts, single: int, checkpoint: str, workdir: Path, bfloat16: bool = False, one_thread=False
) -> dict:
    """The Hugging Face pipeline on PyTorch, in float32 or with the model in bfloat16
    (``torch_dtype=torch.bfloat16``), with PyTorch's default threads or one."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    if one_thread:
        torch.set_num_threads(1)

    head = np.load(workdir / "head.npz")
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head["kernel"].T))
        model.classifier.bias.copy_(torch.from_numpy(head["bias"]))
    if bfloat16:
        model = model.to(torch.bfloat16)
    classify = pipeline(
        "text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(checkpoint), device=-1
    )

    def answer_in(batch_size):
        return lambda batch: [item["label"] for item in classify(batch, batch_size=batch_size)]

    timed(answer_in(BATCH), texts[:BATCH], BATCH)
    timed(answer_in(1), texts[:4], 1)
    per_text, _ = timed(answer_in(1), texts[:single], 1)
    batched, labels = timed(answer_in(BATCH), texts, BATCH)
    return {"batch_1": per_text, "batch_64": batched, "labels": labels, "torch_threads": torch.get_num_threads()}


def median_round(side_rounds: list[dict]) -> dict:
    """The round whose batch-64 rate is the median (the tokenizer share has none: its last round), with every round's
    batch-1 and batch-64 rates kept beside it."""
    if "batch_64" not in side_rounds[0]:
        return side_rounds[-1]
    ordered = sorted(side_rounds, key=lambda row: row["batch_64"])
    every = {f"every_round_{size}": [row[size] for row in side_rounds] for size in ("batch_1", "batch_64")}
    return ordered[len(ordered) // 2] | every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="texts to classify (default: synthetic emotion-style texts)")
    parser.add_argument("--sep", default=None)
    parser.add_argument("--columns", type=lambda text: text.split(","), default=None)
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--single", type=int, default=200, help="texts answered one at a time for the batch-1 figure")
    parser.add_argument("--checkpoint", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all sides; each figure is the median round's")
    parser.add_argument("--one", nargs=2, metavar=("SIDE", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--tokenizer-share", action="store_true", help="also time each in-graph tokenizer family beside the model"
    )
    args = parser.parse_args()
    if args.checkpoint is None:
        from kerasft.recipe import packaged_minilm

        args.checkpoint = packaged_minilm()
    if args.data:
        texts = read_rows(args.data, args.sep, args.columns, args.texts)[0]
    else:
        from make_emotion_style import make_rows

        texts = [text for text, _ in make_rows(args.texts, seed=1)]
    if args.one:
        side, workdir = args.one
        if side == "tokenizers":
            from graph_tokenizer_share import measure

            result = measure(len(texts), repeats=3)
        elif side.startswith("kerasft"):
            result = run_kerasft(texts, args.single, args.checkpoint, Path(workdir), side == "kerasft")
        else:
            result = run_hf_pipeline(
                texts, args.single, args.checkpoint, Path(workdir), "bf16" in side, side.endswith("-1-thread")
            )
        print("RESULT " + json.dumps(result | {"peak_rss_mb": peak_rss_mb()}))
        return
    rounds: dict[str, list[dict]] = {}
    sides = SIDES + (("tokenizers",) if args.tokenizer_share else ())
    with tempfile.TemporaryDirectory() as workdir:
        # kerasft first in every round: it writes the head the PyTorch sides copy
        for _, side in itertools.product(range(args.repeats), sides):
            command = [
                sys.executable,
                __file__,
                "--one",
                side,
                workdir,
                "--texts",
                str(args.texts),
                "--single",
                str(args.single),
                "--checkpoint",
                args.checkpoint,
            ]
            command += (["--data", args.data] if args.data else []) + (["--sep", args.sep] if args.sep else [])
            command += ["--columns", ",".join(args.columns)] if args.columns else []
            rounds.setdefault(side, []).append(run_child(side, command))
    results = {side: median_round(side_rounds) for side, side_rounds in rounds.items()}
    ours, shares = results["kerasft"], results.get("tokenizers")
    default_threads = results["kerasft-default-threads"]
    pipelines = {side: results[side] for side in PIPELINES}
    answers = ours.pop("labels")
    same_as_default_threads = answers == default_threads.pop("labels")
    agreement = {
        side: sum(a == b for a, b in zip(answers, row.pop("labels"))) / len(texts) for side, row in pipelines.items()
    }
    # against the fastest pipeline at each batch size
    ratios = {size: ours[size] / max(row[size] for row in pipelines.values()) for size in ("batch_1", "batch_64")}
    fastest = {size: max(pipelines, key=lambda side: pipelines[side][size]) for size in ("batch_1", "batch_64")}
    threads_gain = {size: ours[size] / default_threads[size] for size in ("batch_1", "batch_64")}
    report = {
        "texts_per_s": results,
        "ratios_vs_hf_pipeline": ratios,
        "fastest_pipeline": fastest,
        "serving_threads_vs_default": threads_gain | {"same_labels": same_as_default_threads},
        "label_agreement": agreement,
        "tokenizer_share": shares,
        "machine": machine(),
        "settings": {
            "texts": len(texts),
            "single": args.single,
            "data": args.data or "synthetic (make_emotion_style.py, seed 1)",
            "checkpoint": args.checkpoint,
        },
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print("| server | batch 1 (texts/s) | batch 64 (texts/s) | peak RSS (MB) | CPU steal |\n|---|---:|---:|---:|---:|")
    print(
        f"| kerasft SavedModel (raw-text signature) | {ours['batch_1']:.1f} | {ours['batch_64']:.1f} | "
        f"{ours['peak_rss_mb']:.0f} | {ours['cpu_steal']:.1%} |"
    )
    print(f"| kerasft predict (batches by length; includes loading) | | {ours['kerasft_predict_64']:.1f} | | |")
    defaults = default_threads
    print(
        f"| kerasft SavedModel, TensorFlow's default threads | {defaults['batch_1']:.1f} | "
        f"{defaults['batch_64']:.1f} | {defaults['peak_rss_mb']:.0f} | {defaults['cpu_steal']:.1%} |"
    )
    for side, row in pipelines.items():
        name = (
            "HF pipeline, PyTorch"
            + (", bfloat16" if "bf16" in side else "")
            + (", 1 thread" if "1-thread" in side else "")
        )
        print(
            f"| {name} | {row['batch_1']:.1f} | {row['batch_64']:.1f} | {row['peak_rss_mb']:.0f} | "
            f"{row['cpu_steal']:.1%} |"
        )
    same = ", ".join(f"{side} {share:.1%}" for side, share in agreement.items())
    print(
        f"\n- against the fastest pipeline: {ratios['batch_1']:.2f}x at batch 1 ({fastest['batch_1']}), "
        f"{ratios['batch_64']:.2f}x at batch 64 ({fastest['batch_64']}); the same label as kerasft: {same} of texts"
    )
    print(
        f"- kerasft's serving threads against TensorFlow's defaults: {threads_gain['batch_1']:.2f}x at batch 1, "
        f"{threads_gain['batch_64']:.2f}x at batch 64; the same labels: {same_as_default_threads}"
    )
    if shares:
        model_ms, batch = shares["model_ms_per_batch"], shares["batch"]
        print(f"\nIn-graph tokenizer beside the model ({model_ms:.0f} ms per batch of {batch}):")
        for name, row in shares["families"].items():
            ms, share = row["tokenizer_ms_per_batch"], row["share_of_serving"]
            print(f"- {name}: {ms:.1f} ms per batch, {share:.1%} of serving")


if __name__ == "__main__":
    main()
