"""Launchers: the TF_CONFIG each scheduler's variables make, bad environments refused in one line, the deploy files.

The real 2-worker runs through a launcher are in test_distributed.py (Slurm's variables, Vertex AI's
CLUSTER_SPEC), which shares their baseline; here everything is fast and in this process.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from conftest import REPO, write_recipe
from kerasft import cluster as clusters
from kerasft.cli import main
from kerasft.cluster import expand_nodelist, expand_tasks_per_node, from_environment
from kerasft.errors import UserError

SLURM_ON_LOCALHOST = {"SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "localhost", "SLURM_JOB_ID": "4242"}


def test_slurm_nodelists_and_tasks_per_node_expand_like_scontrol():
    assert expand_nodelist("localhost") == ["localhost"]
    assert expand_nodelist("gpu[01-03,07],login1") == ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
    assert expand_nodelist("r[1-2]-n[8-9]") == ["r1-n8", "r1-n9", "r2-n8", "r2-n9"]
    assert expand_nodelist("node[098-101]") == ["node098", "node099", "node100", "node101"]
    assert expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1] and expand_tasks_per_node("4") == [4]
    for wrong in ("node[1-", "node[3-1]", "node[a-b]", "node]1["):
        with pytest.raises(UserError, match="SLURM nodelist"):
            expand_nodelist(wrong)
    with pytest.raises(UserError, match="SLURM_TASKS_PER_NODE"):
        expand_tasks_per_node("2(3)")


def test_slurm_tasks_sharing_a_node_get_distinct_ports_and_every_task_builds_the_same_cluster():
    specs = [
        from_environment("slurm", SLURM_ON_LOCALHOST | {"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)})
        for rank in (0, 1)
    ]
    base = 20000 + 242 * 40  # spread by job id, so two jobs sharing a node do not collide
    assert (
        specs[0].tf_config["cluster"]
        == specs[1].tf_config["cluster"]
        == {"worker": [f"localhost:{base}", f"localhost:{base + 1}"]}
    )
    assert [spec.tf_config["task"] for spec in specs] == [
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]
    assert specs[1].job_id == "slurm-4242" and specs[1].run_name("emotion") == "emotion-slurm-4242"
    assert "cluster: slurm, job slurm-4242" in specs[1].describe() and f"worker 1 at localhost:{base + 1}" in (
        specs[1].describe()
    )


def test_slurm_uses_the_steps_nodes_and_block_placement_over_several_nodes():
    env = {
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
        "SLURM_NTASKS": "8",  # the allocation's; srun's step has 4 tasks on 2 of its nodes
        "SLURM_JOB_NODELIST": "gpu[1-4]",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_STEP_NODELIST": "gpu[2-3]",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        "KERASFT_PORT": "3000",
    }
    cluster = from_environment("slurm", env)
    assert cluster.tf_config == {
        "cluster": {"worker": ["gpu2:3000", "gpu2:3001", "gpu3:3000", "gpu3:3001"]},
        "task": {"type": "worker", "index": 3},
    }
    with pytest.raises(UserError, match="SLURM_LOCALID=0 but block placement"):
        from_environment("slurm", env | {"SLURM_LOCALID": "0"})  # cyclic placement: ranks are not where we think


def test_kubernetes_indexed_job_addresses_are_the_pods_dns_names():
    env = {"JOB_COMPLETION_INDEX": "1", "KERASFT_WORKERS": "3", "KERASFT_SERVICE": "kerasft", "HOSTNAME": "emo-x-1"}
    cluster = from_environment("kubernetes", env)
    assert cluster.tf_config == {
        "cluster": {"worker": ["emo-x-0.kerasft:12345", "emo-x-1.kerasft:12345", "emo-x-2.kerasft:12345"]},
        "task": {"type": "worker", "index": 1},
    }
    assert cluster.run_name("emotion") == "emotion-emo-x"
    named = from_environment("kubernetes", env | {"KERASFT_JOB_NAME": "job", "KERASFT_PORT": "2222"})
    assert named.tf_config["cluster"]["worker"][0] == "job-0.kerasft:2222"


def test_vertex_ai_tf_config_and_cluster_spec_both_work_and_one_replica_stays_single():
    addresses = {"chief": ["cmle-chief-0:2222"], "worker": ["cmle-worker-0:2222", "cmle-worker-1:2222"]}
    tf_config = {"cluster": addresses, "task": {"type": "worker", "index": 1}, "environment": "cloud", "job": {}}
    cluster = from_environment("vertex", {"TF_CONFIG": json.dumps(tf_config), "CLOUD_ML_JOB_ID": "991"})
    assert cluster.tf_config == {"cluster": addresses, "task": {"type": "worker", "index": 1}}  # Vertex's extras gone
    assert cluster.run_name("emotion") == "emotion-vertex-991"
    spec = {"cluster": {"workerpool0": addresses["chief"], "workerpool1": addresses["worker"]}}
    with_index = spec | {"task": {"type": "workerpool1", "index": 0}, "environment": "cloud"}
    assert from_environment("auto", {"CLUSTER_SPEC": json.dumps(with_index)}).tf_config == {
        "cluster": addresses,
        "task": {"type": "worker", "index": 0},
    }
    alone = {"cluster": {"workerpool0": ["cmle-chief-0:2222"]}, "task": {"type": "workerpool0", "index": 0}}
    assert from_environment("vertex", {"CLUSTER_SPEC": json.dumps(alone)}).tf_config is None


def test_auto_detects_each_launcher_and_a_single_process_stays_single():
    assert from_environment("auto", {}).launcher == "single process"
    assert (
        from_environment("auto", {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "n1"}).tf_config
        is None
    )
    assert from_environment("auto", {"JOB_COMPLETION_INDEX": "0"}).tf_config is None  # an Indexed Job of single runs
    assert from_environment("auto", SLURM_ON_LOCALHOST | {"SLURM_PROCID": "0"}).launcher == "slurm"
    kubernetes = {"JOB_COMPLETION_INDEX": "0", "KERASFT_WORKERS": "2", "KERASFT_SERVICE": "s", "HOSTNAME": "j-0"}
    assert from_environment("auto", kubernetes).launcher == "kubernetes"
    by_hand = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}
    assert from_environment("auto", {"TF_CONFIG": json.dumps(by_hand)}).launcher == "tf-config"


BAD_ENVIRONMENTS = {
    "slurm without srun": ("slurm", {}, "SLURM_PROCID, SLURM_NTASKS, SLURM_JOB_NODELIST not set"),
    "slurm rank too high": ("slurm", SLURM_ON_LOCALHOST | {"SLURM_PROCID": "2"}, "does not match 2 tasks and task 2"),
    "slurm bad nodelist": (
        "slurm",
        SLURM_ON_LOCALHOST | {"SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "n[1-"},
        "unbalanced brackets",
    ),
    "slurm uneven": (
        "slurm",
        {"SLURM_PROCID": "0", "SLURM_NTASKS": "3", "SLURM_JOB_NODELIST": "n[1-2]"},
        "3 tasks do not spread evenly over 2 nodes",
    ),
    "slurm bad number": ("slurm", SLURM_ON_LOCALHOST | {"SLURM_PROCID": "zero"}, "SLURM_PROCID='zero' is not"),
    "kubernetes without variables": ("kubernetes", {"JOB_COMPLETION_INDEX": "0"}, "KERASFT_WORKERS, KERASFT_SERVICE"),
    "kubernetes index too high": (
        "kubernetes",
        {"JOB_COMPLETION_INDEX": "2", "KERASFT_WORKERS": "2", "KERASFT_SERVICE": "s"},
        "JOB_COMPLETION_INDEX=2 but KERASFT_WORKERS=2",
    ),
    "kubernetes no job name": (
        "kubernetes",
        {"JOB_COMPLETION_INDEX": "0", "KERASFT_WORKERS": "2", "KERASFT_SERVICE": "s", "HOSTNAME": "laptop"},
        "set KERASFT_JOB_NAME",
    ),
    "vertex outside vertex": ("vertex", {}, "neither TF_CONFIG nor CLUSTER_SPEC"),
    "vertex parameter servers": (
        "vertex",
        {
            "CLUSTER_SPEC": '{"cluster": {"workerpool0": ["a:1"], "workerpool2": ["p:1"]}, "task": '
            '{"type": "workerpool0", "index": 0}}'
        },
        "has ps tasks",
    ),
    "vertex task without index": (
        "vertex",
        {
            "CLUSTER_SPEC": '{"cluster": {"workerpool0": ["a:1"], "workerpool1": ["b:1"]}, '
            '"task": {"type": "workerpool0"}}'
        },
        "CLUSTER_SPEC lacks 'index'",
    ),
    "tf-config missing": ("tf-config", {}, "TF_CONFIG is not set"),
    "tf-config not json": ("tf-config", {"TF_CONFIG": "{cluster"}, "TF_CONFIG is not valid JSON"),
    "tf-config wrong index": (
        "tf-config",
        {"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}'},
        "not a valid cluster description (IndexError",
    ),
}


@pytest.mark.parametrize("case", BAD_ENVIRONMENTS)
def test_a_bad_environment_is_refused_with_one_line(case):
    launcher, env, message = BAD_ENVIRONMENTS[case]
    with pytest.raises(UserError) as refused:
        from_environment(launcher, env)
    assert message in str(refused.value) and "\n" not in str(refused.value)


@pytest.fixture
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SLURM_", "KERASFT_", "JOB_COMPLETION", "CLUSTER_SPEC", "CLOUD_ML", "TF_CONFIG")):
            monkeypatch.delenv(name)
    yield monkeypatch
    clusters.request(None)


def test_the_command_refuses_a_bad_launcher_environment_before_writing_anything(
    tmp_path, tiny_checkpoint, small_data, clean_environment
):
    write_recipe(tmp_path / "tiny.py", tiny_checkpoint, small_data)
    clean_environment.chdir(tmp_path)
    clean_environment.setenv("SLURM_PROCID", "5")
    for name, value in SLURM_ON_LOCALHOST.items():
        clean_environment.setenv(name, value)
    result = CliRunner().invoke(main, ["run", "tiny.py", "--cluster", "slurm"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "kerasft: error: --cluster slurm: 'localhost' (1 nodes) with tasks per node [2] does not match 2 tasks and "
        "task 5; run kerasft under srun, which sets them together"
    ]
    assert not (tmp_path / "runs").exists() and "TF_CONFIG" not in os.environ
    unknown = CliRunner().invoke(main, ["run", "tiny.py", "--cluster", "mesos"])
    assert unknown.exit_code == 2 and "'mesos' is not one of 'auto', 'tf-config', 'slurm'" in unknown.output


def test_applying_a_cluster_sets_tf_config_before_tensorflow_and_a_lone_task_drops_it(clean_environment, capsys):
    for name, value in SLURM_ON_LOCALHOST.items():
        clean_environment.setenv(name, value)
    clean_environment.setenv("SLURM_PROCID", "1")
    clusters.request("auto")
    cluster = clusters.apply_requested()
    assert json.loads(os.environ["TF_CONFIG"]) == cluster.tf_config and cluster.launcher == "slurm"
    assert clusters.applied() is cluster and "cluster: slurm, job slurm-4242" in capsys.readouterr().out
    assert cluster.manifest()["cluster"] == cluster.tf_config["cluster"]
    clean_environment.setenv("SLURM_NTASKS", "1")
    clean_environment.setenv("SLURM_PROCID", "0")
    clusters.request("slurm")
    assert clusters.apply_requested().tf_config is None and "TF_CONFIG" not in os.environ
    assert "training alone" in capsys.readouterr().out


# --- deploy/: the files users submit --------------------------------------------------------------------------------

DEPLOY = REPO / "deploy"


def test_the_kubernetes_manifest_gives_kerasft_what_it_reads():
    import yaml

    documents = {
        document["kind"]: document for document in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())
    }
    service, job, claim = documents["Service"], documents["Job"], documents["PersistentVolumeClaim"]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == int(
        env["KERASFT_WORKERS"]
    )
    assert service["spec"]["clusterIP"] == "None" and pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]}
    assert env["KERASFT_SERVICE"] == service["metadata"]["name"]
    assert [port["port"] for port in service["spec"]["ports"]] == [int(env["KERASFT_PORT"])]
    job_name = next(item for item in container["env"] if item["name"] == "KERASFT_JOB_NAME")
    assert job_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['job-name']"
    assert "--cluster kubernetes" in container["args"][0] and "--resume" in container["args"][0]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {f"{container['workingDir']}/runs", f"{container['workingDir']}/tensorboard_logs"} <= mounts
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    # what each pod builds from it: the pods' DNS names on the Service's port
    pods = [
        from_environment(
            "kubernetes", env | {"JOB_COMPLETION_INDEX": str(index), "HOSTNAME": f"kerasft-emotion-{index}"}
        )
        for index in range(spec["parallelism"])
    ]
    assert pods[1].tf_config["cluster"]["worker"] == [
        "kerasft-emotion-0.kerasft:12345",
        "kerasft-emotion-1.kerasft:12345",
    ]
    assert (
        pods[1].run_name("emotion") == "emotion-kerasft-emotion"
        and "runs/emotion-$KERASFT_JOB_NAME" in (container["args"][0])
    )


def test_the_slurm_script_starts_one_kerasft_per_task_under_srun():
    script = (DEPLOY / "slurm.sbatch").read_text()
    options = dict(
        line[len("#SBATCH --") :].split("=", 1) for line in script.splitlines() if line.startswith("#SBATCH")
    )
    assert options["ntasks-per-node"] == "1" and int(options["nodes"]) >= 2
    (launch,) = [line for line in script.splitlines() if line.startswith("srun ")]
    assert 'kerasft run "${args[@]}" --cluster slurm' in launch
    assert script.startswith("#!/bin/bash\n") and "sbatch deploy/slurm.sbatch --resume runs/emotion-slurm-" in script


def test_the_vertex_spec_has_a_chief_pool_and_a_worker_pool_on_a_shared_bucket():
    import yaml

    pools = yaml.safe_load((DEPLOY / "vertex.yaml").read_text())["workerPoolSpecs"]
    assert len(pools) == 2 and pools[0]["replicaCount"] == 1  # workerpool0 is the chief: one replica
    for pool in pools:
        command = pool["containerSpec"]["command"] + pool["containerSpec"]["args"]
        assert command[:3] == ["kerasft", "run", "recipes/emotion.py"] and command[-2:] == ["--cluster", "vertex"]
        assert command[command.index("--output-dir") + 1].startswith("/gcs/")  # the bucket every replica mounts
    assert pools[0]["containerSpec"] == pools[1]["containerSpec"]
