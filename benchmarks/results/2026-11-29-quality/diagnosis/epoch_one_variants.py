"""Issue 16, after the epsilon fix: which random part keeps kerasft's first-epoch training loss above the Trainer's?

    PYTHONPATH=$PWD flock /tmp/bench.lock python benchmarks/results/2026-11-29-quality/diagnosis/epoch_one_variants.py \
        --data /tmp/q16/go --seeds 0 1 2 3 4 --json epoch_one.json [--lock /tmp/cpu.lock]

kerasft's side of multilabel_pairs_quality.py (GoEmotions-style data, learning rate 1e-4, batch 32), one epoch,
in a fresh process per run, with one random part made the Trainer's:

- ``random-batches``: ``train.group_by_length=false`` (batches drawn at random, as the Trainer's sampler);
- ``normal-head``: the new classifier kernel drawn from normal(0, initializer_range), PyTorch's
  ``_init_weights``, instead of TF's TruncatedNormal(initializer_range) (std 0.88 x as large);
- ``random-batches+normal-head``: both (``--variants`` picks some).

The first-epoch loss with kerasft's defaults and the Trainer's are in ../quality.json's 3-epoch runs (the
first epoch does not depend on the number of epochs on either side: constant rate, per-epoch seeded order).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
VARIANTS = ("random-batches", "normal-head", "random-batches+normal-head")


def one_run(variant: str, seed: int, data: str, epochs: int = 1) -> dict:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import multilabel_pairs_quality as quality
    import tensorflow as tf

    from kerasft import model as models

    if "normal-head" in variant:
        build = models.build_classifier

        def build_with_normal_head(*arguments, **options):
            model = build(*arguments, **options)
            kernel = next(weight for weight in model.weights if "classifier" in weight.name and "kernel" in weight.name)
            stddev = model.config.initializer_range
            kernel.assign(tf.random.stateless_normal(kernel.shape, seed=[seed, 16], stddev=stddev))
            return model

        models.build_classifier = build_with_normal_head
    overrides = ["train.group_by_length=false"] if "random-batches" in variant else []
    args = argparse.Namespace(
        task="goemotions",
        data=data,
        checkpoint=None,
        max_length=128,
        epochs=epochs,
        batch_size=32,
        learning_rate=1e-4,
        seed=seed,
        kerasft_overrides=overrides,
    )
    result = quality.run_kerasft(args)
    return {"variant": variant, "seed": seed, "train_loss": result["train_loss"], "test": result["test"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--json", required=True)
    parser.add_argument("--lock")
    parser.add_argument("--epochs", type=int, default=1, help="1: the first-epoch losses; 3: the benchmark's runs")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one_run(args.one[0], int(args.one[1]), args.data, args.epochs)), flush=True)
        return
    runs = []
    for seed in args.seeds:
        for variant in args.variants:
            command = (["flock", args.lock] if args.lock else []) + [sys.executable, __file__, "--data", args.data]
            command += ["--json", args.json, "--epochs", str(args.epochs), "--one", variant, str(seed)]
            env = os.environ | {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
            finished = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            result = json.loads(next(line for line in finished.stdout.splitlines() if line.startswith("RESULT "))[7:])
            runs.append(result)
            figures = {key: round(result["test"][key], 4) for key in ("micro_f1", "macro_f1")}
            print(variant, seed, result["train_loss"], figures, flush=True)
            Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
