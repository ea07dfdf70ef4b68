"""Precision and compilation: Keras mixed precision and XLA, chosen per device kind.

``train.mixed_precision``: ``auto`` (the default), ``off``, ``mixed_float16`` or ``mixed_bfloat16``.
``auto`` means ``mixed_float16`` on GPUs, ``mixed_bfloat16`` on TPUs, and on CPUs ``mixed_bfloat16``
where bfloat16 is both native (avx512_bf16 or amx_bf16 in /proc/cpuinfo) and measured faster:
a bfloat16 matmul at least `BFLOAT16_MIN_SPEEDUP` times float32's, timed when the run starts
(`bfloat16_matmul_speedup`, about half a second); float32 elsewhere. The flags alone do not tell:
on a Xeon whose hypervisor hides AMX, bfloat16 matmuls ran at 0.54-0.84x float32's and mixed_bfloat16
trained slower, while on an AMD EPYC with avx512_bf16 (1.95x) it trained 1.3-1.4x faster
(``benchmarks/precision.py``; numbers in docs/distributed.md). A resumed run keeps the precision it
started with. Variables stay float32 and the logits are computed in float32 (`keep_logits_float32`).

``train.jit_compile``: ``auto`` (the default), ``on`` or ``off``. ``auto`` means XLA on GPUs and
TPUs and off on CPUs, where it measured 1.2-1.9x slower at those sizes (only tiny batches gained)
and adds compilation for every new batch shape.

The policy is global in Keras and must be set before the model is built::

    settings = choose(recipe.train, "CPU")   # Precision(policy="mixed_bfloat16", jit_compile=False, ...)
    with settings.applied():                             # float32 again afterwards: evaluation and export run in it
        with strategy.scope():
            model = build_classifier(...)
            keep_logits_float32(model)
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from kerasft.errors import UserError

HEAD_NAMES = ("classifier", "score", "logits_proj", "sequence_summary")  # the classification heads of HF TF models


def cpu_supports_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True if the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16 in its flags)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


# auto trains a CPU run in mixed_bfloat16 only where bfloat16 matmuls measure at least this many times float32's.
# Measured at size 2048 (benchmarks/peak.py): 1.95x on an AMD EPYC and 4.2x on a Xeon with AMX, where
# mixed_bfloat16 trained faster (1.3-1.4x on the EPYC); 0.54-0.73x on a Xeon whose hypervisor hides AMX, where it
# trained slower (BENCHMARKS.md, speed round 6). The margin above 1 keeps a noisy measurement from flipping the
# choice between runs on the same machine.
BFLOAT16_MIN_SPEEDUP = 1.25


def matmul_seconds(size: int, dtype: str, repeats: int) -> list[float]:
    """The seconds of ``repeats`` ``size`` x ``size`` matmuls in ``dtype`` ("float32", "bfloat16") on TensorFlow's
    default device and threads, after one call that traces and warms up."""
    import tensorflow as tf

    first = tf.cast(tf.random.stateless_normal([size, size], seed=[1, 2]), dtype)
    second = tf.cast(tf.random.stateless_normal([size, size], seed=[3, 4]), dtype)
    multiply = tf.function(tf.linalg.matmul)
    multiply(first, second).numpy()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        multiply(first, second).numpy()
        seconds.append(time.perf_counter() - started)
    return seconds


def bfloat16_matmul_speedup(size: int = 1024, repeats: int = 9) -> float:
    """How many times faster this CPU multiplies ``size`` x ``size`` matrices in bfloat16 than in float32.

    The CPU's flags say whether bfloat16 instructions exist, not whether oneDNN's bfloat16 kernels beat its
    float32 ones here; this does, in about half a second on 2 cores. The fastest call of each dtype is compared:
    another process on a shared machine only ever slows a call down::

        bfloat16_matmul_speedup()   # 0.62-0.84 on a 2-core Xeon whose hypervisor hides AMX (BENCHMARKS.md)
    """
    return min(matmul_seconds(size, "float32", repeats)) / min(matmul_seconds(size, "bfloat16", repeats))


@dataclass(frozen=True)
class Precision:
    """A run's compute dtype policy and XLA setting, and why (``notes``: warnings worth printing; ``reason``: how
    ``auto`` chose on a CPU, ``bfloat16_speedup``: what it measured)."""

    policy: str  # a Keras dtype policy: float32, mixed_float16, mixed_bfloat16
    jit_compile: bool
    device_kind: str  # CPU, GPU or TPU: what the replicas run on
    notes: tuple[str, ...] = field(default=())
    reason: str | None = None
    bfloat16_speedup: float | None = None

    @contextlib.contextmanager
    def applied(self):
        """Keras' global dtype policy set to ``policy`` for the layers built inside; float32 again after."""
        import tf_keras as keras

        keras.mixed_precision.set_global_policy(self.policy)
        try:
            yield self
        finally:
            keras.mixed_precision.set_global_policy("float32")


def choose(
    train_config, kind: str, measure: bool = True, started_in: tuple[str, float | None] | None = None
) -> Precision:
    """The run's precision policy and XLA setting, from the recipe and the kind of device (CPU, GPU, TPU) the
    replicas run on.

    ``measure=False`` makes ``auto`` on a CPU follow its flags alone: the workers of a multi-worker run could
    measure different speedups, and must agree. ``started_in``: the policy a resumed run started with and the
    speedup measured then, which ``auto`` keeps (a measurement now could differ, and the run must go on in the
    dtype it trained in).
    """
    requested = train_config.mixed_precision
    reason, speedup = None, None
    if requested == "auto" and started_in:
        policy, speedup = started_in
        reason = f"{policy}, as when the run started"
    elif requested == "auto":
        policy = {"GPU": "mixed_float16", "TPU": "mixed_bfloat16"}.get(kind)
        if policy is None:
            policy, reason, speedup = _auto_cpu_policy(measure)
    elif requested == "off":
        policy = "float32"
    else:
        policy = requested
    notes = []
    if policy == "mixed_bfloat16" and kind == "CPU" and not cpu_supports_bfloat16():
        notes.append("this CPU has no native bfloat16 (avx512_bf16/amx_bf16): mixed_bfloat16 will be emulated and slow")
    if policy == "mixed_float16" and kind == "CPU":
        notes.append("mixed_float16 on a CPU is emulated and slow; mixed_bfloat16 or off suit CPUs")
    jit = train_config.jit_compile
    jit_compile = kind in ("GPU", "TPU") if jit == "auto" else jit == "on"
    return Precision(policy, jit_compile, kind, tuple(notes), reason, speedup)


def _auto_cpu_policy(measure: bool) -> tuple[str, str | None, float | None]:
    """``auto``'s policy on a CPU, the line saying why, and the bfloat16 speedup it measured (None if it did not)."""
    if not cpu_supports_bfloat16():
        return "float32", None, None
    if not measure:
        return "mixed_bfloat16", "a multi-worker run follows the CPU flags (avx512_bf16/amx_bf16), unmeasured", None
    speedup = round(bfloat16_matmul_speedup(), 2)
    policy = "mixed_bfloat16" if speedup >= BFLOAT16_MIN_SPEEDUP else "float32"
    return (
        policy,
        f"bfloat16 matmuls measured {speedup:.2f}x float32's on this CPU (mixed_bfloat16 from "
        f"{BFLOAT16_MIN_SPEEDUP:.2f}x): {policy}; train.mixed_precision=mixed_bfloat16 or off sets it",
        speedup,
    )


def keep_logits_float32(model) -> None:
    """Makes the classification head compute in float32, so logits (and the loss) are float32 under mixed precision.

    Hugging Face TF models build every layer with the global policy, so their logits come out
    in float16/bfloat16; Keras' advice is a float32 output layer. The head's variables are
    float32 already: switching its policy only changes the dtype it computes in.
    """
    import tf_keras as keras

    if keras.mixed_precision.global_policy().name == "float32":
        return
    heads = [getattr(model, name) for name in HEAD_NAMES if isinstance(getattr(model, name, None), keras.layers.Layer)]
    if not heads:
        raise UserError(
            f"{type(model).__name__} has no classification head kerasft knows ({', '.join(HEAD_NAMES)}); set "
            "train.mixed_precision=off"
        )
    policy = keras.mixed_precision.Policy("float32")
    for head in heads:
        for layer in [head, *head._flatten_layers(include_self=False)]:
            layer._set_dtype_policy(policy)
