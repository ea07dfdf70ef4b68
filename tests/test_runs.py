"""`kerasft runs`: every run folder (finished or not) in a table, newest first."""

from __future__ import annotations

import json

import pytest

from conftest import kerasft


def _run(folder, status=None, recipe=None, metrics=None, checkpoints=(), exports=()):
    folder.mkdir(parents=True)
    for name, value in (("status.json", status), ("recipe.json", recipe), ("metrics.json", metrics)):
        if value is not None:
            (folder / name).write_text(json.dumps(value))
    for epoch in checkpoints:
        (folder / "checkpoints").mkdir(exist_ok=True)
        (folder / "checkpoints" / f"epoch-{epoch}.index").write_bytes(b"")
    for version in exports:
        (folder / "export" / "model" / version).mkdir(parents=True)
        (folder / "export" / "model" / version / "saved_model.pb").write_bytes(b"")


@pytest.fixture
def runs_dir(tmp_path):
    runs = tmp_path / "runs"
    _run(
        runs / "finished",
        status={"state": "complete", "started": "2024-01-02T10:00:00", "finished": "2024-01-02T10:30:00"},
        recipe={"name": "emotion", "train": {"epochs": 5}},
        metrics={"train": [{}, {}, {}], "best_epoch": 2, "test": {"accuracy": 0.912345, "macro_f1": 0.88}},
        exports=("1", "2"),
    )  # `kerasft export` made version 2 after the run
    _run(
        runs / "crashed",
        status={"state": "failed", "error": "OOM", "started": "2024-01-03T09:00:00"},
        recipe={"name": "imdb", "train": {"epochs": 4}},
        checkpoints=(1, 2),
    )
    _run(
        runs / "training",
        status={"state": "running", "started": "2024-01-01T08:00:00"},
        recipe={"name": "quickstart", "train": {"epochs": 3}},
    )
    _run(
        runs / "older",
        status={"state": "complete", "finished": "2023-12-31T12:00:00"},  # before status.json kept "started"
        recipe={"name": "quickstart", "train": {"epochs": 1}},
        metrics={"train": [{}], "seconds": 3600, "test": {"accuracy": 0.5, "macro_f1": 0.4}},
    )
    (runs / "inspect-emotion-20240101-000000").mkdir()
    (runs / "inspect-emotion-20240101-000000" / "overview.json").write_text("{}")
    (runs / "notes").mkdir()
    (runs / "README.txt").write_text("not a run")
    return runs


def test_runs_are_listed_newest_first_with_their_state(runs_dir):
    from kerasft.runlist import list_runs

    rows = list_runs(runs_dir)
    assert [row["run"] for row in rows] == ["crashed", "finished", "training", "older"]
    crashed, finished, training, older = rows
    assert (
        crashed["state"],
        crashed["recipe"],
        crashed["epochs"],
        crashed["epochs_planned"],
        crashed["test_accuracy"],
    ) == ("failed", "imdb", 2, 4, None)
    assert finished["export"].endswith("finished/export/model/2") and finished["best_epoch"] == 2
    assert (finished["epochs"], finished["test_accuracy"], finished["test_macro_f1"]) == (3, 0.912345, 0.88)
    assert training["state"] == "running" and training["epochs"] is None
    assert older["started"] == "2023-12-31 11:00:00"  # finished minus the run's seconds


@pytest.mark.slow
def test_runs_command_prints_a_table(runs_dir, tmp_path):
    result = kerasft("runs", "--output-dir", runs_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "RUN",
        "RECIPE",
        "STARTED",
        "STATE",
        "EPOCHS",
        "BEST",
        "TEST",
        "ACC",
        "MACRO",
        "F1",
        "EXPORT",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["crashed", "finished", "training", "older"]
    assert lines[2].split() == [
        "finished",
        "emotion",
        "2024-01-02",
        "10:00",
        "complete",
        "3/5",
        "2",
        "0.9123",
        "0.8800",
        "runs/finished/export/model/2",
    ]
    assert lines[1].split()[4:9] == ["failed", "2/4", "-", "-", "-"]
    assert all(
        line[lines[0].index("STATE") - 2 : lines[0].index("STATE")] == "  " for line in lines[1:]
    )  # aligned columns


def test_runs_without_a_runs_folder_is_a_user_error(tmp_path):
    from kerasft.errors import UserError
    from kerasft.runlist import list_runs

    with pytest.raises(UserError, match="no runs folder"):
        list_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert list_runs(tmp_path / "empty") == []


def test_a_damaged_run_is_listed_with_what_can_be_read_and_the_others_still_are(runs_dir):
    from kerasft.runlist import list_runs

    _run(runs_dir / "damaged", recipe={"name": "x", "train": 5}, metrics=[])  # JSON, but not of the shapes written
    _run(runs_dir / "other-damage", recipe={"name": "y"}, metrics={"test": [0.5], "train": 3})
    rows = {row["run"]: row for row in list_runs(runs_dir)}
    assert {"finished", "crashed", "training", "older", "damaged", "other-damage"} <= set(rows)
    assert rows["damaged"]["recipe"] == "x" and rows["damaged"]["epochs_planned"] is None
    assert rows["other-damage"]["test_accuracy"] is None and rows["other-damage"]["epochs"] is None
