"""Training speed of float32 vs mixed_bfloat16, with and without XLA, on this machine's CPU.

    python benchmarks/precision.py                     # packaged MiniLM, batch 16, 128 tokens
    python benchmarks/precision.py --batch 32 --length 64

Each setting runs in a fresh process (the dtype policy is global), trains a few steps on random
tokens and reports the median step time after warm-up. kerasft's ``train.mixed_precision=auto``
(bfloat16 on CPUs where a bfloat16 matmul measures fast enough, printed first) and ``train.jit_compile=auto`` (off
on CPUs) follow what this measured (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = [("float32", False), ("mixed_bfloat16", False), ("float32", True), ("mixed_bfloat16", True)]


def measure(policy: str, jit: bool, checkpoint: str, batch: int, length: int, steps: int) -> dict:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from kerasft import model as models
    from kerasft import precision

    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = models.build_classifier(checkpoint, ["a", "b", "c", "d", "e"])
    precision.keep_logits_float32(model)
    models.compile_classifier(model, 5e-5, jit_compile=jit)
    rng = np.random.default_rng(0)
    inputs = {
        "input_ids": rng.integers(1000, 2000, size=(batch * steps, length)),
        "attention_mask": np.ones((batch * steps, length), "int64"),
    }
    dataset = tf.data.Dataset.from_tensor_slices((inputs, rng.integers(0, 5, size=batch * steps))).batch(batch).cache()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(dataset, epochs=1, verbose=0, callbacks=[Timer()])
    median = float(np.median(times[2:]))
    return {
        "policy": policy,
        "jit_compile": jit,
        "first_step_s": round(times[0], 1),
        "median_step_ms": round(median * 1000),
        "examples_per_s": round(batch / median, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--one", nargs=2, metavar=("POLICY", "JIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checkpoint is None:
        from kerasft.recipe import packaged_minilm

        args.checkpoint = packaged_minilm()
    if args.one:
        print(
            json.dumps(measure(args.one[0], args.one[1] == "1", args.checkpoint, args.batch, args.length, args.steps))
        )
        return
    from kerasft.precision import BFLOAT16_MIN_SPEEDUP, bfloat16_matmul_speedup, cpu_supports_bfloat16

    speedup = bfloat16_matmul_speedup()
    print(
        f"CPU bfloat16 support (avx512_bf16/amx_bf16): {cpu_supports_bfloat16()}; bfloat16 matmuls {speedup:.2f}x "
        f"float32's (train.mixed_precision=auto takes mixed_bfloat16 from {BFLOAT16_MIN_SPEEDUP}x); "
        f"{os.cpu_count()} cores; batch {args.batch}, {args.length} tokens, {args.steps} steps"
    )
    for policy, jit in SETTINGS:
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--checkpoint",
                args.checkpoint,
                "--batch",
                str(args.batch),
                "--length",
                str(args.length),
                "--steps",
                str(args.steps),
                "--one",
                policy,
                "1" if jit else "0",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"  {row['policy']:<15} XLA {'on ' if row['jit_compile'] else 'off'}  first step "
            f"{row['first_step_s']:>5.1f} s  "
            f"median step {row['median_step_ms']:>5} ms  {row['examples_per_s']:>6.1f} examples/s"
        )


if __name__ == "__main__":
    main()
