"""Where a kerasft training step's time goes: tracing, forward, backward and the optimizer, by batch width.

    python benchmarks/step_profile.py [--batch 32] [--widths 16,24,32,48,72] [--policy mixed_bfloat16|float32] \
        [--lazy-adam] [--ops STEPS]

Builds the model as a run does (kerasft.model, kerasft.precision), then on random token ids:
the first `fit` step (which traces the train function), and after warm-up the median time of a whole
`fit` step, of the forward pass alone and of forward + backward (no optimizer update) at each width.
Then the optimizer's update alone, for kerasft.optimizer's LazyAdam and Adam on the same gradients.
A straight line through the step times, ``step = fixed + per_token_column * width``, separates the
cost that does not shrink with shorter batches (optimizer update, per-step overhead) from the rest.

``--ops STEPS`` instead runs that many `fit` steps at the first width under TensorFlow's profiler and prints each
op type's time per step (``_MklMatMul``, ``Mul``, ``Cast``, ...), from the trace's own events. TensorFlow then runs
one op at a time (one inter-op thread, every core inside an op), so that an op's time is its own and not time spent
waiting for another op's threads; the step is slower than in training for it (305 against 263 ms at width 24, batch
32, on a 2-core AMX CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_seconds(function, repeats: int) -> float:
    import numpy as np

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def op_event_times(trace_folder: Path, steps: int) -> dict[tuple[str, str], float]:
    """Milliseconds per step of each op in a TensorFlow profiler trace, keyed by ``(op type, op name)``: its host
    events named ``name:Type``."""
    import collections

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(next(trace_folder.rglob("*.xplane.pb")).read_bytes())
    milliseconds = collections.Counter()
    for plane in (plane for plane in space.planes if plane.name == "/host:CPU"):
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for event in (event for line in plane.lines for event in line.events):
            op_name, _, op_type = names.get(event.metadata_id, "").rpartition(":")
            # ops are "scope/name:Type"; the executor's own events ("ExecutorState::Process") are not ops
            if op_name and op_type and not op_type.startswith((" ", ":")) and "::" not in op_name + ":" + op_type:
                milliseconds[(op_type, op_name)] += event.duration_ps / 1e9 / steps
    return dict(milliseconds)


def times_by_type(event_times: dict[tuple[str, str], float]) -> dict[str, float]:
    """`op_event_times` summed by op type, largest first."""
    import collections

    milliseconds = collections.Counter()
    for (op_type, _), value in event_times.items():
        milliseconds[op_type] += value
    return dict(milliseconds.most_common())


def profile_steps(model, features, labels, steps: int) -> dict[tuple[str, str], float]:
    """Each op's milliseconds per step (`op_event_times`) over ``steps`` training steps under TensorFlow's profiler."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        for _ in range(steps):
            model.train_on_batch(features, labels)
        tf.profiler.experimental.stop()
        return op_event_times(Path(folder), steps)


def print_op_times(model, features, labels, steps: int) -> None:
    for _ in range(3):  # warm-up at this shape
        model.train_on_batch(features, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(features, labels)
    step_ms = 1000 * (time.perf_counter() - started) / steps
    times = times_by_type(profile_steps(model, features, labels, steps))
    kernels = {op_type: ms for op_type, ms in times.items() if not op_type.startswith("__inference")}
    print(json.dumps({"step_ms": step_ms, "op_ms_per_step": kernels}, indent=1))
    print(f"step {step_ms:.0f} ms unprofiled; ops {sum(kernels.values()):.0f} ms per step:")
    for op_type, ms in list(kernels.items())[:25]:
        print(f"  {ms:7.1f} ms {100 * ms / step_ms:5.1f}%  {op_type}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--widths", default="16,24,32,48,72")
    parser.add_argument("--policy", default="mixed_bfloat16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--lazy-adam", action="store_true", help="train with kerasft.optimizer.LazyAdam (train.lazy_adam=true)"
    )
    parser.add_argument("--ops", type=int, metavar="STEPS", help="each op type's time per step, over STEPS steps")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    if args.ops:
        tf.config.threading.set_inter_op_parallelism_threads(1)  # before TensorFlow starts its thread pools

    from kerasft import model as models
    from kerasft import precision
    from kerasft.recipe import packaged_minilm

    checkpoint = args.checkpoint or packaged_minilm()
    keras.mixed_precision.set_global_policy(args.policy)
    keras.backend.experimental.enable_tf_random_generator()  # dropout as runs draw it (kerasft.session)
    keras.utils.set_random_seed(0)
    model = models.build_classifier(checkpoint, ["a", "b", "c", "d", "e", "f"])
    precision.keep_logits_float32(model)
    from kerasft.optimizer import Adam, LazyAdam

    models.compile_classifier(model, 5e-5, optimizer=LazyAdam if args.lazy_adam else Adam)
    rng = np.random.default_rng(0)

    def batch(width):
        ids = rng.integers(1000, 20000, size=(args.batch, width))
        return {"input_ids": tf.constant(ids), "attention_mask": tf.ones((args.batch, width), tf.int64)}, tf.constant(
            rng.integers(0, 6, args.batch)
        )

    loss_function = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def forward(features):
        return model(features, training=True).logits

    @tf.function(reduce_retracing=True)
    def forward_backward(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_function(labels, model(features, training=True).logits)
        return tape.gradient(loss, model.trainable_variables)

    features, labels = batch(args.widths and int(args.widths.split(",")[0]))
    started = time.perf_counter()
    model.train_on_batch(features, labels)
    first = time.perf_counter() - started
    if args.ops:
        print_op_times(model, features, labels, args.ops)
        return
    rows = []
    for width in map(int, args.widths.split(",")):
        features, labels = batch(width)
        for _ in range(2):  # warm-up at this shape
            model.train_on_batch(features, labels), forward(features), forward_backward(features, labels)
        rows.append(
            {
                "width": width,
                "step_ms": 1000 * median_seconds(lambda f=features, y=labels: model.train_on_batch(f, y), args.repeats),
                "forward_ms": 1000 * median_seconds(lambda f=features: forward(f).numpy(), args.repeats),
                "forward_backward_ms": 1000
                * median_seconds(
                    lambda f=features, y=labels: [
                        g.numpy() if isinstance(g, tf.Tensor) else g.values.numpy() for g in forward_backward(f, y)
                    ][0],
                    args.repeats,
                ),
            }
        )
    # the optimizer update alone, on one set of gradients (width 24), for kerasft's two Adams: every embedding row
    # or the batch's rows
    gradients = forward_backward(*batch(24))
    apply_ms = {}
    for optimizer_class in (
        LazyAdam,
        Adam,
        LazyAdam,
        Adam,
    ):  # twice each, alternating; the second figure of each is kept
        optimizer = optimizer_class(5e-5)

        @tf.function
        def update(optimizer=optimizer):
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))

        update()  # creates the slots and traces
        apply_ms[optimizer_class.__name__] = 1000 * median_seconds(update, max(args.repeats, 10))
    widths = np.array([row["width"] for row in rows], float)
    slope, fixed = np.polyfit(widths, [row["step_ms"] for row in rows], 1)
    _, fixed_fb = np.polyfit(widths, [row["forward_backward_ms"] for row in rows], 1)
    print(
        json.dumps(
            {
                "policy": args.policy,
                "lazy_adam": args.lazy_adam,
                "batch": args.batch,
                "first_step_s": first,
                "rows": rows,
                "step_fit_ms": {"fixed": fixed, "per_width": slope},
                "forward_backward_fixed_ms": fixed_fb,
                "optimizer_apply_ms": apply_ms,
            },
            indent=1,
        )
    )
    print(f"{args.policy}: first step (traces) {first:.1f} s; step = {fixed:.0f} ms + {slope:.1f} ms x width")
    print("optimizer update alone: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in apply_ms.items()))
    for row in rows:
        print(
            f"  width {row['width']:>3}: step {row['step_ms']:6.0f} ms = forward {row['forward_ms']:5.0f} + backward "
            f"{row['forward_backward_ms'] - row['forward_ms']:5.0f} + optimizer and the rest "
            f"{row['step_ms'] - row['forward_backward_ms']:5.0f}"
        )


if __name__ == "__main__":
    main()
