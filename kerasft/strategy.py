"""Strategy: which `tf.distribute` strategy a run uses, on which devices, with which batch per replica.

``auto`` picks: ``TF_CONFIG`` set -> MultiWorkerMirroredStrategy; several GPUs ->
MirroredStrategy; one GPU -> OneDeviceStrategy on it; several logical CPU devices
(``--devices cpu:N``) -> MirroredStrategy over them; otherwise the default strategy.
``tpu`` is never picked by ``auto``: ask for it by name.

``--devices cpu:N`` splits the host CPU into N logical devices, so that distribution can be
tried without GPUs. TensorFlow allows that only before it initialises its devices, so the
command line records the request (`request_devices`) and it is applied as TensorFlow starts
(`apply_requested_devices`)::

    request_devices("cpu:2")
    apply_requested_devices()
    strategy = choose_strategy("auto")          # MirroredStrategy on CPU:0 and CPU:1
    per_replica = per_replica_batch(strategy, 32)  # 16, or a UserError naming a batch that divides
"""

from __future__ import annotations

import contextlib
import os
import re

from kerasft.errors import UserError
from kerasft.recipe import STRATEGIES

_requested_devices: tuple[str, int] | None = None  # ("cpu", N) from --devices, applied once by apply_requested_devices
_applied_devices: tuple[str, int] | None = None


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's or `taskset`'s share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_devices(spec: str) -> tuple[str, int]:
    """``"cpu:4"`` -> ``("cpu", 4)``; anything else is a UserError."""
    match = re.fullmatch(r"\s*cpu\s*:\s*(\d+)\s*", spec or "", flags=re.IGNORECASE)
    if not match or not 1 <= int(match.group(1)) <= 64:
        raise UserError(
            f"--devices {spec!r}: expected cpu:N with N from 1 to 64 (e.g. --devices cpu:2 splits the CPU into 2 "
            "logical devices)"
        )
    return "cpu", int(match.group(1))


def request_devices(spec: str | None) -> None:
    """Records ``--devices``; `apply_requested_devices` applies it before TensorFlow initialises its devices."""
    global _requested_devices
    _requested_devices = parse_devices(spec) if spec else None


def requested_devices() -> str | None:
    """The ``--devices`` value in force, e.g. ``"cpu:2"``, or None."""
    request = _applied_devices or _requested_devices
    return f"{request[0]}:{request[1]}" if request else None


def apply_requested_devices() -> None:
    """Splits the host CPU into the requested logical devices; must run before TensorFlow initialises them."""
    global _applied_devices
    if _requested_devices is None or _requested_devices == _applied_devices:
        return
    import tensorflow as tf

    _, count = _requested_devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError as error:  # TensorFlow had already initialised its devices
        raise UserError(
            f"--devices cpu:{count} came too late: TensorFlow has already set up its devices ({error})"
        ) from None
    _applied_devices = _requested_devices


def multi_worker_pending() -> bool:
    """True when TF_CONFIG is set: MultiWorkerMirroredStrategy must then be created before TensorFlow sets up its
    devices."""
    return bool(os.environ.get("TF_CONFIG"))


def choose_strategy(name: str = "auto"):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    apply_requested_devices()
    if name == "auto" and os.environ.get("TF_CONFIG"):
        name = "multi-worker"
    if name == "multi-worker":  # before anything lists devices: collective ops are configured at TensorFlow's start
        if not os.environ.get("TF_CONFIG"):
            raise UserError(
                "--strategy multi-worker needs TF_CONFIG set on every worker (see docs/distributed.md); without it, "
                "use --strategy auto"
            )
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        if len(gpus) > 1:
            name = "mirrored"
        elif len(gpus) == 1:
            name = "one-device"
        elif len(cpus) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(
            [device.name for device in gpus] if gpus else [device.name for device in cpus]
        )
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else cpus[0].name)
    if name == "tpu":
        return _tpu_strategy()
    return tf.distribute.get_strategy()


def _check_tf_config() -> None:
    """A hand-written TF_CONFIG is checked as the launchers check what they build (kerasft.cluster)."""
    from kerasft.cluster import checked_spec, json_object

    checked_spec(json_object(os.environ, "TF_CONFIG"), "TF_CONFIG")


def _tpu_strategy():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise UserError(
            f"--strategy tpu: no TPU found ({str(error).splitlines()[0]}); run on a TPU VM, or set TPU_NAME"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def num_workers(strategy) -> int:
    """How many worker processes train together (1 unless MultiWorkerMirroredStrategy spans several)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return 1
    return len(resolver.cluster_spec().as_dict().get("worker", [])) + len(
        resolver.cluster_spec().as_dict().get("chief", [])
    )


def device_kind(strategy) -> str:
    """``"TPU"``, ``"GPU"`` or ``"CPU"``: what the replicas run on."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "TPU"
    devices = describe(strategy)["devices"]
    return "GPU" if any("GPU" in device.upper() for device in devices) else "CPU"


def per_replica_batch(strategy, global_batch: int) -> int:
    """``train.batch_size`` is the global batch; this is each replica's share, or a UserError if it does not divide."""
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        below = global_batch // replicas * replicas
        above = below + replicas
        suggestion = (
            f"train.batch_size={above}" if below == 0 else f"train.batch_size={below} or train.batch_size={above}"
        )
        raise UserError(
            f"train.batch_size={global_batch} is the global batch and does not divide across {replicas} replicas "
            f"({strategy_name(strategy)}); use a multiple of {replicas}, e.g. {suggestion}"
        )
    return global_batch // replicas


def barrier(strategy, ok: bool = True) -> bool:
    """Waits for every worker of a multi-worker run; returns True if all of them passed ``ok=True``."""
    if num_workers(strategy) == 1:
        return ok
    import tensorflow as tf

    @tf.function
    def count_failures():
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(0.0 if ok else 1.0)), axis=None)

    return float(count_failures().numpy()) == 0.0


@contextlib.contextmanager
def others_wait(strategy):
    """The chief's work after training (evaluation, export), which the other workers wait for at `barrier`
    whatever its end: they learn whether it succeeded."""
    done = False
    try:
        yield
        done = True
    finally:
        barrier(strategy, ok=done)


def wait_for_chief(strategy, training: dict) -> None:
    """A worker other than the chief, done training, waits for the chief's evaluation and export."""
    print(
        f"kerasft: worker {task_index(strategy)} finished training ({training['steps']} steps, weights "
        f"{training['weights']}); the chief evaluates and exports"
    )
    if not barrier(strategy, ok=True):
        raise UserError("the chief failed after training (see its log); this worker has nothing to write")


def describe(strategy) -> dict:
    """What the run records about its strategy: its class, replicas and devices."""
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list: it runs where TensorFlow places ops
        import tensorflow as tf

        devices = [
            device.name
            for device in tf.config.list_logical_devices("GPU")[:1] or tf.config.list_logical_devices("CPU")[:1]
        ]
    return {
        "strategy": strategy_name(strategy),
        "replicas": strategy.num_replicas_in_sync,
        "devices": devices,
        "is_chief": is_chief(strategy),
        "workers": num_workers(strategy),
    }


def strategy_name(strategy) -> str:
    """The public `tf.distribute` name of ``strategy``'s class (``MultiWorkerMirroredStrategy``, not its alias)."""
    name = type(strategy).__name__
    return {
        "_DefaultDistributionStrategy": "default strategy",
        "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy",
    }.get(name, name)


def is_chief(strategy) -> bool:
    """True on the one worker that writes the run directory, evaluates and exports: the chief task, else worker 0.

    Asked of the run's strategy, never of the environment: a strategy that is not multi-worker is
    its own chief, even with a TF_CONFIG set.
    """
    if num_workers(strategy) == 1:
        return True
    resolver = strategy.cluster_resolver
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def task_index(strategy) -> int:
    """This worker's index in a multi-worker run (0 otherwise)."""
    return int(strategy.cluster_resolver.task_id or 0) if num_workers(strategy) > 1 else 0
