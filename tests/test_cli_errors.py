"""Bad input through the command: one line naming the problem and the fix, exit 2, no traceback, nothing touched.

Every case runs through the `kerasft` command in this process (click's CliRunner); a few also run as a
process of their own, which shows that nothing else reaches stderr (TensorFlow's start-up lines included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import REPO, kerasft, write_recipe
from kerasft.cli import main


@pytest.fixture
def workdir(tmp_path, tiny_checkpoint, small_data):
    recipe = write_recipe(tmp_path / "tiny.py", tiny_checkpoint, small_data)
    earlier = tmp_path / "runs" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "metrics.json").write_text('{"test": {"accuracy": 0.5}}')
    (tmp_path / "broken.py").write_text("recipe = Recipe(\n")
    (tmp_path / "headerless.txt").write_text("good day;joy\nbad day;sadness\n")
    (tmp_path / "ragged.txt").write_text("good day;joy\nbad;day;sadness\n")
    (tmp_path / "binary.csv").write_bytes(b"text,label\ngood,joy\n\xff\xfe,sadness\n")
    (tmp_path / "empty.csv").write_text("text,label\n")
    (tmp_path / "two.csv").write_text("text,label\ngood day,joy\nbad day,sadness\n")
    (tmp_path / "nolabel.csv").write_text("text,emotion\ngood,joy\nbad,sadness\n")
    (tmp_path / "otherlabels.csv").write_text(
        "text,label\nwhere is it,parcel\nit broke,repair\n"
    )  # no label shared with train
    (tmp_path / "recipe.txt").write_text(recipe.read_text())  # a good recipe under a name Python cannot import
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "names-latin1.txt").write_bytes("joie\ntristesse\ncol\xe8re\n".encode("latin-1"))
    (tmp_path / "damaged-sweep").mkdir()
    (tmp_path / "damaged-sweep" / "sweep.json").write_text("{bad")
    return tmp_path, recipe


CASES = {
    "missing recipe": (["missing.py"], "recipe file not found: missing.py"),
    "broken recipe": (["broken.py"], "line 1: syntax error"),
    "unknown key": (["tiny.py", "train.epoch=3"], "unknown recipe key 'train.epoch'; valid keys:"),
    "wrong type": (["tiny.py", "train.batch_size=big"], "train.batch_size='big': expected int"),
    "missing data file": (["tiny.py", "data.train=nowhere.csv"], "data file not found: nowhere.csv"),
    "empty split": (["tiny.py", "data.test=empty.csv"], "empty.csv has no rows"),
    "missing text column": (["tiny.py", "data.text_column=body"], "no text column 'body'"),
    "missing label column": (["tiny.py", "data.test=nolabel.csv"], "test split has no label column 'label'"),
    "txt without columns": (["tiny.py", "data.train=headerless.txt"], "need data.sep and data.columns"),
    "ragged line": (
        ["tiny.py", "data.train=ragged.txt", "data.sep=;", "data.columns=text,label"],
        "ragged.txt line 2: expected 2 fields",
    ),
    "undecodable line": (["tiny.py", "data.validation=binary.csv"], "binary.csv line 3: not valid UTF-8"),
    "two-character separator": (["tiny.py", "data.sep=,,"], "data.sep must be one character, got ',,'"),
    "max_length past the positions": (["tiny.py", "model.max_length=100000"], "more than the 64 tokens the checkpoint"),
    "text column is the label column": (
        ["tiny.py", "data.text_column=label"],
        "data.text_column and data.label_column both name 'label'",
    ),
    "train carved away": (
        ["tiny.py", "data.train=two.csv", "data.validation=null", "data.test=null"],
        "the train split's 2 rows all went to the test and validation carved from it",
    ),
    "data file is a folder": (["tiny.py", "data.train=a-folder"], "data file a-folder is a folder; name a file in it"),
    "test labels not in train": (
        ["tiny.py", "data.test=otherlabels.csv"],
        "test split has labels not seen in train: 'parcel', 'repair'",
    ),
    "batch not divisible by replicas": (
        ["tiny.py", "train.batch_size=7", "--devices", "cpu:2"],
        "train.batch_size=7 is the global batch and does not divide across 2 replicas",
    ),
    "missing checkpoint": (["tiny.py", "model.checkpoint=./no-model"], "checkpoint folder not found"),
    "hub id offline": (
        ["tiny.py", "model.checkpoint=distilbert-base-uncased"],
        "point model.checkpoint at a local folder",
    ),
    "recipe not a .py file": (["recipe.txt"], "recipe recipe.txt is not a .py file"),
    "recipe is a folder": (["a-folder"], "recipe a-folder is a folder"),
    "recipe calls sys.exit": (["exits.py"], "called sys.exit(0) while loading"),
    "seed out of range": (["tiny.py", "train.seed=-1"], "train.seed must be between 0 and 2**32 - 1"),
    "seed too large": (["tiny.py", "train.seed=4294967296"], "train.seed must be between 0 and 2**32 - 1"),
    "learning rate nan": (["tiny.py", "train.learning_rate=nan"], "train.learning_rate must be a finite number"),
    "weight decay inf": (["tiny.py", "train.weight_decay=inf"], "train.weight_decay must be a finite number"),
    "model name outside export/": (["tiny.py", "model.name=.."], "model.name '..' must be a plain folder name"),
    "model name with a slash": (["tiny.py", "model.name=a/b"], "model.name 'a/b' must be a plain folder name"),
    "tensorboard dir is a file": (["tiny.py", "--tensorboard-dir", "a-file"], "--tensorboard-dir a-file is a file"),
    "run name taken": (["tiny.py", "--run-name", "earlier"], "run directory runs/earlier already exists"),
    "label names not UTF-8": (["tiny.py", "data.label_names=names-latin1.txt"], "names-latin1.txt is not UTF-8 text"),
    "label names a folder": (["tiny.py", "data.label_names=a-folder"], "data.label_names a-folder is a folder"),
    "click: unknown option": (["tiny.py", "--bogus"], "No such option '--bogus'. (see "),  # `kerasft run --help`
}


# --devices must be applied before TensorFlow starts, which in this process it has: that case runs in its own process.
IN_PROCESS = [case for case in CASES if "--devices" not in CASES[case][0]]
OWN_PROCESS = ["missing recipe", "missing data file", "batch not divisible by replicas"]


def assert_one_line_and_nothing_touched(folder, code: int, stdout: str, stderr: str, expected: str) -> None:
    assert code == 2, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kerasft: error: ") and expected in lines[0]
    assert "Traceback" not in stdout + stderr
    assert sorted(path.name for path in (folder / "runs").iterdir()) == ["earlier"]
    assert (folder / "runs" / "earlier" / "metrics.json").read_text() == '{"test": {"accuracy": 0.5}}'


@pytest.mark.parametrize("case", IN_PROCESS)
def test_bad_input_gets_one_line_and_exit_code_2(workdir, case, monkeypatch):
    folder, _ = workdir
    args, expected = CASES[case]
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # offline for sure, even on a machine with a network
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, ["run", *args, "--output-dir", "runs"])
    assert_one_line_and_nothing_touched(folder, result.exit_code, result.stdout, result.stderr, expected)


@pytest.mark.slow
@pytest.mark.parametrize("case", OWN_PROCESS)
def test_the_real_command_prints_that_one_line_and_nothing_else(workdir, case, monkeypatch):
    folder, _ = workdir
    args, expected = CASES[case]
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    result = kerasft("run", *args, "--output-dir", "runs", cwd=folder)
    assert_one_line_and_nothing_touched(folder, result.returncode, result.stdout, result.stderr, expected)


# A mistake in the recipe or its overrides needs no TensorFlow to find: it is refused before TensorFlow's seconds of
# start-up. `kerasft runs` reads JSON files only and never starts it.
BEFORE_TENSORFLOW = {
    "run: missing recipe": (["run", "missing.py"], 2, "recipe file not found: missing.py"),
    "run: unknown key": (["run", "tiny.py", "train.epoch=3"], 2, "unknown recipe key 'train.epoch'"),
    "sweep: a wrong value": (["sweep", "tiny.py", "train.batch_size=8,big"], 2, "train.batch_size='big'"),
    "inspect: broken recipe": (["inspect", "broken.py"], 2, "line 1: syntax error"),
    "run: tensorboard dir is a file": (["run", "tiny.py", "--tensorboard-dir", "a-file"], 2, "a-file is a file"),
    "run: run name taken": (["run", "tiny.py", "--run-name", "earlier"], 2, "runs/earlier already exists"),
    "sweep: output dir is a file": (["sweep", "tiny.py", "train.seed=1,2", "--output-dir", "a-file"], 2, "is a file"),
    "sweep: a damaged sweep": (["sweep", "--resume", "damaged-sweep"], 2, "sweep.json cannot be read"),
    "evaluate: output dir is a file": (["evaluate", "x", "--data", "d.csv", "--output-dir", "a-file"], 2, "a file"),
    "evaluate: a two-character --sep": (["evaluate", "x", "--data", "d.csv", "--sep", ",,"], 2, "--sep must be one"),
    "run: a two-character data.sep": (["run", "tiny.py", "data.sep=,,"], 2, "data.sep must be one character"),
    "inspect: learning rate nan": (["inspect", "tiny.py", "train.learning_rate=nan"], 2, "must be a finite number"),
    "runs": (["runs"], 0, ""),
}


# the command in a process of its own (the tests' process has TensorFlow loaded), then whether it loaded TensorFlow and
# with which (intra-op, inter-op) threads
COMMAND_REPORTING_TENSORFLOW = """
import json, sys
from kerasft.cli import main
try:
    main()
finally:
    threads = None
    if "tensorflow" in sys.modules:
        from tensorflow.config import threading
        threads = [threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()]
    print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "threads": threads}))
"""


def command_reporting_tensorflow(folder, *args) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run(
        [sys.executable, "-c", COMMAND_REPORTING_TENSORFLOW, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    return result, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", BEFORE_TENSORFLOW)
def test_a_recipe_mistake_is_refused_before_tensorflow_starts(workdir, case):
    folder, _ = workdir
    args, code, expected = BEFORE_TENSORFLOW[case]
    output = [] if "--output-dir" in args else ["--output-dir", "runs"]
    result, started = command_reporting_tensorflow(folder, *args, *output)
    assert not started["tensorflow"], result.stdout
    if code:
        assert_one_line_and_nothing_touched(folder, result.returncode, "", result.stderr, expected)
    else:
        assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_answering_with_an_export_uses_one_thread_per_op_and_every_core_across_ops(workdir):
    """kerasft.serve.serving_threads for predict (and evaluate); training keeps TensorFlow's defaults (0, 0)."""
    folder, _ = workdir
    result, started = command_reporting_tensorflow(folder, "predict", "no-export", "a text")
    assert result.returncode == 2 and "holds no SavedModel" in result.stderr
    assert started["threads"] == [1, len(os.sched_getaffinity(0))]
    result, started = command_reporting_tensorflow(folder, "run", "tiny.py", "data.train=nowhere.csv")
    assert result.returncode == 2 and "data file not found" in result.stderr
    assert started["threads"] == [0, 0]


@pytest.mark.slow
def test_debug_shows_the_traceback(workdir):
    folder, _ = workdir
    result = kerasft("run", "tiny.py", "data.train=nowhere.csv", "--debug", cwd=folder)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "data file not found" in result.stderr


def test_exporting_a_run_that_stopped_before_its_evaluation_says_to_finish_it(workdir):
    from kerasft.recipe import load_recipe

    folder, recipe = workdir
    run = folder / "runs" / "stopped"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps(load_recipe(recipe).to_dict()))
    (run / "status.json").write_text('{"state": "interrupted", "stage": "train"}')
    result = CliRunner().invoke(main, ["export", str(run)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output[-3000:]
    assert f"{run} is interrupted and has no test predictions" in result.stderr
    assert sorted(path.name for path in run.iterdir()) == ["recipe.json", "status.json"]
