"""Strategy: which `tf.distribute` strategy a run uses.

``auto`` picks: ``TF_CONFIG`` set -> MultiWorkerMirroredStrategy; several GPUs ->
MirroredStrategy; one GPU -> OneDeviceStrategy on it; otherwise the default strategy.
"""

from __future__ import annotations

import json
import os

from kerasft.errors import UserError

STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker")


def choose_strategy(name: str = "auto"):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multi-worker"
        elif len(gpus) > 1:
            name = "mirrored"
        elif len(gpus) == 1:
            name = "one-device"
        else:
            name = "default"
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def describe(strategy) -> dict:
    """What the run records about its strategy: its class, replicas and devices."""
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list: it runs where TensorFlow places ops
        import tensorflow as tf

        devices = [device.name for device in tf.config.list_logical_devices("GPU")[:1] or tf.config.list_logical_devices("CPU")[:1]]
    return {
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "devices": devices,
        "is_chief": is_chief(),
    }


def is_chief() -> bool:
    """True on the one worker that evaluates and exports (worker 0, or the chief task if there is one)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
