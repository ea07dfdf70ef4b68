"""Cluster: which processes train together, read from the scheduler that started them, as a TF_CONFIG.

`kerasft run --cluster auto|tf-config|slurm|kubernetes|vertex` (default ``auto``) builds the
``TF_CONFIG`` that MultiWorkerMirroredStrategy reads from the scheduler's own variables, so that
nobody writes it by hand:

- ``slurm``: ``SLURM_PROCID`` (this task), ``SLURM_STEP_NUM_TASKS`` or ``SLURM_NTASKS``, the
  expanded ``SLURM_STEP_NODELIST`` or ``SLURM_JOB_NODELIST`` and ``SLURM_STEP_TASKS_PER_NODE`` or
  ``SLURM_TASKS_PER_NODE`` (tasks are placed by block, Slurm's default); tasks sharing a node get
  consecutive ports, so ``SLURM_JOB_NODELIST=localhost`` with 2 tasks runs on one machine.
- ``kubernetes``: an Indexed Job's ``JOB_COMPLETION_INDEX``, ``KERASFT_WORKERS`` (the Job's
  parallelism, set in the manifest) and the pods' DNS names ``<job>-<index>.<KERASFT_SERVICE>``
  (the headless Service named as the pods' subdomain); the job name is ``KERASFT_JOB_NAME``, else
  the pod's hostname without its ``-<index>``.
- ``vertex``: the ``TF_CONFIG`` Vertex AI gives every replica, else its ``CLUSTER_SPEC``
  (``workerpool0`` is the chief, ``workerpool1`` the workers).
- ``tf-config``: ``TF_CONFIG`` as written by hand.
- ``auto``: the first of those whose variables describe more than one process; otherwise a single
  process, which stays single (a lone task's TF_CONFIG is dropped).

``KERASFT_PORT`` sets the port (Slurm: the first of a node's ports). The run name shared by all
workers, when ``--run-name`` is absent, comes from the scheduler's job id::

    cluster = from_environment("slurm", {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1",
                                         "SLURM_JOB_NODELIST": "localhost", "SLURM_JOB_ID": "77"})
    cluster.tf_config["cluster"]                   # {"worker": ["localhost:23080", "localhost:23081"]}
    cluster.tf_config["task"]                      # {"type": "worker", "index": 1}
    cluster.run_name("emotion")                    # "emotion-slurm-77"
    expand_nodelist("gpu[01-03,07],login1")        # ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from itertools import product

from kerasft.errors import UserError

LAUNCHERS = ("auto", "tf-config", "slurm", "kubernetes", "vertex")
KUBERNETES_PORT = 12345
SINGLE = "single process"

_requested: str | None = None  # --cluster, applied once by apply_requested (before TensorFlow starts)
_applied: Cluster | None = None


@dataclass(frozen=True)
class Cluster:
    """The processes of one training job, as TF_CONFIG describes them (``tf_config`` None: one process)."""

    launcher: str  # "single process", "tf-config", "slurm", "kubernetes" or "vertex"
    tf_config: dict | None = None
    job_id: str | None = None  # the scheduler's, e.g. "slurm-4242"; names the run when --run-name is absent
    sources: tuple[str, ...] = field(default=(), compare=False)  # the variables it was built from

    @property
    def processes(self) -> int:
        return sum(len(tasks) for tasks in self.tf_config["cluster"].values()) if self.tf_config else 1

    def run_name(self, recipe_name: str) -> str | None:
        """The run directory's name every worker derives alike: ``<recipe>-<job id>``, or None without a job id."""
        return f"{recipe_name}-{self.job_id}" if self.job_id and self.processes > 1 else None

    def describe(self) -> str:
        """One line saying what was built: launcher, job, processes, this task's address, everyone's."""
        if self.tf_config is None:
            return f"kerasft: cluster: {self.launcher}{f' (job {self.job_id})' if self.job_id else ''}"
        task = self.tf_config["task"]
        address = self.tf_config["cluster"][task["type"]][task["index"]]
        everyone = ", ".join(f"{kind} {', '.join(tasks)}" for kind, tasks in self.tf_config["cluster"].items())
        return (
            f"kerasft: cluster: {self.launcher}{f', job {self.job_id}' if self.job_id else ''} "
            f"({', '.join(self.sources)}): {self.processes} processes, this is {task['type']} {task['index']} at "
            f"{address}; {everyone}"
        )

    def manifest(self) -> dict:
        """What recipe.json records under ``run.cluster``."""
        return {"launcher": self.launcher, "job_id": self.job_id, "processes": self.processes} | (
            {"cluster": self.tf_config["cluster"], "task": self.tf_config["task"]} if self.tf_config else {}
        )


def from_environment(name: str = "auto", env=None) -> Cluster:
    """The cluster the launcher ``name`` describes in ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    if name not in LAUNCHERS:
        raise UserError(f"--cluster {name!r}: choose one of {', '.join(LAUNCHERS)}")
    if name == "auto":
        name = detect(env)
        if name == SINGLE:
            return Cluster(SINGLE)
    cluster = {"tf-config": _tf_config, "slurm": _slurm, "kubernetes": _kubernetes, "vertex": _vertex}[name](env)
    if cluster.processes == 1:  # one task is a single process: no collective ops to wait for
        return Cluster(SINGLE, job_id=cluster.job_id)
    return cluster


def detect(env) -> str:
    """The launcher whose variables describe several processes, else ``"single process"``."""
    if env.get("CLUSTER_SPEC") or (env.get("TF_CONFIG") and env.get("CLOUD_ML_JOB_ID")):
        return "vertex"
    if env.get("TF_CONFIG"):
        return "tf-config"
    if env.get("SLURM_PROCID") and _integer(env, _first(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"), 1) > 1:
        return "slurm"
    if env.get("JOB_COMPLETION_INDEX") and _integer(env, "KERASFT_WORKERS", 1) > 1:
        return "kubernetes"
    return SINGLE


# --- the launchers -------------------------------------------------------------------------------------------------


def _tf_config(env) -> Cluster:
    if not env.get("TF_CONFIG"):
        raise UserError("--cluster tf-config: TF_CONFIG is not set; set it on every worker (docs/distributed.md)")
    return Cluster("tf-config", checked_spec(json_object(env, "TF_CONFIG"), "TF_CONFIG"), sources=("TF_CONFIG",))


def _slurm(env) -> Cluster:
    tasks_name = _first(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
    nodes_name = _first(env, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST")
    needed = {"SLURM_PROCID": "SLURM_PROCID", "SLURM_NTASKS": tasks_name, "SLURM_JOB_NODELIST": nodes_name}
    missing = [shown for shown, name in needed.items() if not env.get(name)]
    if missing:
        raise UserError(
            f"--cluster slurm: {', '.join(missing)} not set; start one kerasft per task with srun inside an "
            "allocation (e.g. srun --ntasks-per-node=1 kerasft run ...)"
        )
    tasks, rank = _integer(env, tasks_name, minimum=1), _integer(env, "SLURM_PROCID", minimum=0)
    nodes = expand_nodelist(env[nodes_name])
    per_node_name = _first(env, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE")
    if env.get(per_node_name):
        per_node = expand_tasks_per_node(env[per_node_name])
    elif tasks % len(nodes) == 0:
        per_node = [tasks // len(nodes)] * len(nodes)
    else:
        raise UserError(
            f"--cluster slurm: {tasks} tasks do not spread evenly over {len(nodes)} nodes; set "
            "SLURM_TASKS_PER_NODE (srun does)"
        )
    if len(per_node) != len(nodes) or sum(per_node) != tasks or rank >= tasks:
        raise UserError(
            f"--cluster slurm: {env[nodes_name]!r} ({len(nodes)} nodes) with tasks per node {per_node} does not "
            f"match {tasks} tasks and task {rank}; run kerasft under srun, which sets them together"
        )
    job = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    base = _port(env, default=_slurm_port(job))
    addresses = [f"{node}:{base + local}" for node, count in zip(nodes, per_node) for local in range(count)]
    local = rank - sum(per_node[: _node_of(rank, per_node)])
    if env.get("SLURM_LOCALID") and _integer(env, "SLURM_LOCALID", minimum=0) != local:
        raise UserError(
            f"--cluster slurm: task {rank} has SLURM_LOCALID={env['SLURM_LOCALID']} but block placement puts it "
            f"{local}th on its node; use srun --distribution=block (the default)"
        )
    spec = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": rank}}
    return Cluster("slurm", spec, f"slurm-{job}" if job else None, ("SLURM_PROCID", tasks_name, nodes_name))


def _slurm_port(job: str | None) -> int:
    # Two jobs sharing a node must not pick the same ports: spread them by job id, 40 ports per job (tasks per node).
    return 20000 + (int(job) % 1000) * 40 if job and job.isdigit() else 20000


def _node_of(rank: int, per_node: list[int]) -> int:
    total = 0
    for node, count in enumerate(per_node):
        total += count
        if rank < total:
            return node
    raise AssertionError(rank)


def _kubernetes(env) -> Cluster:
    missing = [name for name in ("JOB_COMPLETION_INDEX", "KERASFT_WORKERS", "KERASFT_SERVICE") if not env.get(name)]
    if missing:
        raise UserError(
            f"--cluster kubernetes: {', '.join(missing)} not set; run kerasft in an Indexed Job whose pods set "
            "KERASFT_WORKERS (the Job's parallelism) and KERASFT_SERVICE (its headless Service), as in "
            "deploy/kubernetes.yaml"
        )
    index, workers = _integer(env, "JOB_COMPLETION_INDEX", minimum=0), _integer(env, "KERASFT_WORKERS", minimum=1)
    if index >= workers:
        raise UserError(
            f"--cluster kubernetes: JOB_COMPLETION_INDEX={index} but KERASFT_WORKERS={workers}; set "
            "KERASFT_WORKERS to the Job's completions and parallelism"
        )
    job = env.get("KERASFT_JOB_NAME") or _without_suffix(env.get("HOSTNAME", ""), f"-{index}")
    if not job:
        raise UserError(
            f"--cluster kubernetes: cannot tell the Job's name (HOSTNAME={env.get('HOSTNAME', '')!r} does not end in "
            f"-{index}); set KERASFT_JOB_NAME"
        )
    port = _port(env, default=KUBERNETES_PORT)
    addresses = [f"{job}-{number}.{env['KERASFT_SERVICE']}:{port}" for number in range(workers)]
    spec = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    return Cluster("kubernetes", spec, job, ("JOB_COMPLETION_INDEX", "KERASFT_WORKERS", "KERASFT_SERVICE"))


def _without_suffix(text: str, suffix: str) -> str | None:
    return text[: -len(suffix)] if text.endswith(suffix) and len(text) > len(suffix) else None


# Vertex AI's worker pools: CLUSTER_SPEC names them, its TF_CONFIG calls them chief, worker, ps, evaluator.
VERTEX_POOLS = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps", "workerpool3": "evaluator"}


def _vertex(env) -> Cluster:
    job = env.get("CLOUD_ML_JOB_ID")
    job_id = f"vertex-{job}" if job else None
    source = "TF_CONFIG" if env.get("TF_CONFIG") else "CLUSTER_SPEC" if env.get("CLUSTER_SPEC") else None
    if source is None:
        raise UserError("--cluster vertex: neither TF_CONFIG nor CLUSTER_SPEC is set; run in a Vertex AI custom job")
    given = json_object(env, source)
    try:  # CLUSTER_SPEC names worker pools; TF_CONFIG usually names TensorFlow's tasks already: both read alike
        spec = {
            "cluster": {VERTEX_POOLS.get(pool, pool): tasks for pool, tasks in given["cluster"].items()},
            "task": {
                "type": VERTEX_POOLS.get(given["task"]["type"], given["task"]["type"]),
                "index": given["task"]["index"],
            },
        }
    except (KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{source} lacks {error}; expected Vertex AI's cluster and task fields") from None
    return Cluster("vertex", checked_spec(spec, source), job_id, (source,))


def checked_spec(spec: dict, source: str) -> dict:
    """``spec`` as TF_CONFIG's cluster and task, refused in one line where MultiWorkerMirroredStrategy could not
    use it (also for a hand-written TF_CONFIG: kerasft.strategy)."""
    try:
        task = spec["task"]
        tasks = spec["cluster"][task["type"]]
        tasks[int(task["index"])]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise UserError(
            f"{source} is not a valid cluster description ({type(error).__name__}: {error}); expected e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    unused = sorted(set(spec["cluster"]) - {"chief", "worker"})
    if unused:
        raise UserError(
            f"{source} has {' and '.join(unused)} tasks; kerasft trains with MultiWorkerMirroredStrategy, which uses "
            "only chief and worker tasks: drop the other pools (e.g. Vertex AI's workerpool2 and workerpool3)"
        )
    return {"cluster": spec["cluster"], "task": {"type": task["type"], "index": int(task["index"])}}


# --- Slurm's compressed lists --------------------------------------------------------------------------------------
# `scontrol show hostnames` does this on a Slurm node, but kerasft must not depend on Slurm's tools being installed
# where it runs (containers often lack them), and TensorFlow's SlurmClusterResolver calls that very command.


def expand_nodelist(text: str) -> list[str]:
    """Slurm's compressed host list, expanded: ``"node[1-3,07],gpu-a[01-02]"`` -> every host in order."""
    hosts = []
    for item in _top_level_items(text.strip(), text):
        parts = re.split(r"(\[[^\]]*\])", item)
        choices = [_expand_range(part[1:-1], text) if part.startswith("[") else [part] for part in parts if part]
        hosts += ["".join(choice) for choice in product(*choices)]
    if not hosts:
        raise UserError(f"SLURM nodelist {text!r} names no host")
    return hosts


def _top_level_items(text: str, whole: str) -> list[str]:
    items, depth, start = [], 0, 0
    for position, character in enumerate(text):
        depth += {"[": 1, "]": -1}.get(character, 0)
        if depth not in (0, 1):
            raise UserError(f"SLURM nodelist {whole!r} is malformed (unbalanced brackets)")
        if character == "," and depth == 0:
            items.append(text[start:position])
            start = position + 1
    if depth:
        raise UserError(f"SLURM nodelist {whole!r} is malformed (unbalanced brackets)")
    return [item for item in [*items, text[start:]] if item]


def _expand_range(ranges: str, whole: str) -> list[str]:
    names = []
    for part in ranges.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise UserError(f"SLURM nodelist {whole!r}: cannot read the range {part!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        names += [str(number).zfill(len(first)) for number in range(int(first), int(last) + 1)]  # keeps "07"
    return names


def expand_tasks_per_node(text: str) -> list[int]:
    """``SLURM_TASKS_PER_NODE`` expanded: ``"2(x3),1"`` -> ``[2, 2, 2, 1]``."""
    counts = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not match:
            raise UserError(f"SLURM_TASKS_PER_NODE {text!r}: cannot read {part!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


# --- applying it, before TensorFlow starts -------------------------------------------------------------------------


def request(name: str | None) -> None:
    """Records ``--cluster``; `apply_requested` builds and applies it before TensorFlow starts."""
    global _requested, _applied
    _requested, _applied = name, None


def apply_requested() -> Cluster | None:
    """Builds the requested cluster, sets TF_CONFIG for MultiWorkerMirroredStrategy (or drops a lone task's) and
    prints what it built. Must run before TensorFlow sets up its devices."""
    global _requested, _applied
    if _requested is None:
        return _applied
    name, _requested = _requested, None  # once per command line
    cluster = from_environment(name)
    if cluster.tf_config is not None:
        os.environ["TF_CONFIG"] = json.dumps(cluster.tf_config)
        print(cluster.describe(), flush=True)
    elif os.environ.pop("TF_CONFIG", None) is not None:  # MultiWorkerMirroredStrategy would wait for no one
        print(f"kerasft: cluster: {cluster.launcher} describes one process; training alone, without TF_CONFIG")
    _applied = cluster
    return cluster


def applied() -> Cluster | None:
    """The cluster this process runs in, if `kerasft run` built one."""
    return _applied


# --- reading variables ---------------------------------------------------------------------------------------------


def _first(env, *names: str) -> str:
    return next((name for name in names if env.get(name)), names[-1])


def _integer(env, name: str, default: int | None = None, minimum: int | None = None) -> int:
    value = env.get(name)
    if not value and default is not None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or (minimum is not None and number < minimum):
        if default is not None:
            return default
        raise UserError(f"{name}={value!r} is not a whole number{f' >= {minimum}' if minimum is not None else ''}")
    return number


def _port(env, default: int) -> int:
    port = _integer(env, "KERASFT_PORT", minimum=1) if env.get("KERASFT_PORT") else default
    if port > 65000:
        raise UserError(f"KERASFT_PORT={port} leaves no room for a node's ports; pick a port below 65000")
    return port


def json_object(env, name: str) -> dict:
    """The JSON object in the environment variable ``name``, or a one-line refusal."""
    try:
        value = json.loads(env[name])
    except ValueError as error:
        raise UserError(f"{name} is not valid JSON ({error}); check how the job sets it") from None
    if not isinstance(value, dict):
        raise UserError(f"{name} is not a JSON object; expected a cluster and a task")
    return value
