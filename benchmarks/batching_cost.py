"""What kerasft's training pipeline costs per batch without a model: `Dataset.to_tf_dataset` against the
``numpy_function`` pipeline it replaced (``train_throughput.py --contenders kerasft-numpy-batches``).

    python benchmarks/batching_cost.py --data emotion_style.txt --sep ';' --columns text,label --repeats 5

Both build the same global batches (kerasft.batching.Plan, length-bucketed, padded to their longest
text) from the same tokenized rows; each pipeline is iterated over one epoch, alternately, and the
median wall time and process CPU time per batch are reported. CPU time matters on a small machine:
the pipeline's thread competes with the model's for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_arguments(description: str, repeats: int) -> argparse.Namespace:
    """The options of the in-process A/B benchmarks (this one and ab_levers.py): data file, batch, rounds, output."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", required=True, help="a .csv with a header, or delimited lines with --sep and --columns"
    )
    parser.add_argument("--sep")
    parser.add_argument(
        "--columns", type=lambda text: text.split(","), help="e.g. text,label for files without a header"
    )
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json")
    return parser.parse_args()


def data_config(args: argparse.Namespace):
    """The first ``--samples`` rows of ``--data`` as every split: the benchmarks train (and time) on the train split."""
    from kerasft.recipe import DataConfig

    return DataConfig(
        train=args.data,
        validation=args.data,
        test=args.data,
        sep=args.sep,
        columns=args.columns,
        train_samples=args.samples,
        validation_samples=8,
        test_samples=8,
    )


def main() -> None:
    args = parse_arguments(__doc__, repeats=5)

    import numpy as np
    from train_throughput import numpy_function_batches

    from kerasft import batching, data, tokenizing
    from kerasft.model import load_tokenizer
    from kerasft.recipe import packaged_minilm

    tokenizer = load_tokenizer(packaged_minilm())
    splits = data.load_splits(data_config(args), seed=42).splits
    split = tokenizing.tokenize(splits, tokenizer, 512)["train"]
    plan = batching.Plan(len(split), args.batch_size, seed=42, lengths=batching.token_lengths(split))
    pipelines = {"to_tf_dataset": batching.training_batches, "numpy_function": numpy_function_batches}
    times = {name: {"wall_ms": [], "cpu_ms": []} for name in pipelines}
    for _ in range(args.repeats):
        for name, build in pipelines.items():
            wall, cpu = time.perf_counter(), time.process_time()
            batches = sum(1 for _ in build(split, plan, batching.PadToLongest(tokenizer)))
            assert batches == plan.batches
            times[name]["wall_ms"].append(1000 * (time.perf_counter() - wall) / batches)
            times[name]["cpu_ms"].append(1000 * (time.process_time() - cpu) / batches)
    report = {
        name: {key: float(np.median(values)) for key, values in figures.items()} | {"rounds": figures}
        for name, figures in times.items()
    }
    report["settings"] = {
        "examples": len(split),
        "batch_size": args.batch_size,
        "batches": plan.batches,
        "repeats": args.repeats,
    }
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    for name in pipelines:
        print(f"{name}: {report[name]['wall_ms']:.2f} ms wall, {report[name]['cpu_ms']:.2f} ms CPU per batch (medians)")


if __name__ == "__main__":
    main()
