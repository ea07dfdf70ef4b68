"""Precision and compilation: Keras mixed precision and XLA, chosen per device kind.

``train.mixed_precision``: ``auto`` (the default), ``off``, ``mixed_float16`` or ``mixed_bfloat16``.
``auto`` means ``mixed_float16`` on GPUs, ``mixed_bfloat16`` on TPUs and on CPUs that compute
bfloat16 natively (avx512_bf16 or amx_bf16 in /proc/cpuinfo), float32 on other CPUs. On this
project's reference CPU (2 cores with avx512_bf16) ``mixed_bfloat16`` trained
all-MiniLM-L6-v2 1.3-1.4x faster at batch 16-32 and 64-128 tokens, 1.08x at batch 8 and 32
tokens (``benchmarks/precision.py``; numbers in docs/distributed.md). Variables stay float32
and the logits are computed in float32 (`keep_logits_float32`).

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


@dataclass(frozen=True)
class Precision:
    """A run's compute dtype policy and XLA setting, and why (``notes``: warnings worth printing)."""

    policy: str  # a Keras dtype policy: float32, mixed_float16, mixed_bfloat16
    jit_compile: bool
    device_kind: str  # CPU, GPU or TPU: what the replicas run on
    notes: tuple[str, ...] = field(default=())

    @contextlib.contextmanager
    def applied(self):
        """Keras' global dtype policy set to ``policy`` for the layers built inside; float32 again after."""
        import tf_keras as keras

        keras.mixed_precision.set_global_policy(self.policy)
        try:
            yield self
        finally:
            keras.mixed_precision.set_global_policy("float32")


def choose(train_config, kind: str) -> Precision:
    """The run's precision policy and XLA setting, from the recipe and the kind of device (CPU, GPU, TPU) the
    replicas run on."""
    requested = train_config.mixed_precision
    if requested == "auto":
        policy = {"GPU": "mixed_float16", "TPU": "mixed_bfloat16"}.get(kind) or (
            "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"
        )
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
    return Precision(policy, jit_compile, kind, tuple(notes))


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
