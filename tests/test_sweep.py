"""`kerasft sweep`: the grid, the refusals, and a sweep of the tiny BERT that is interrupted and resumed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import write_recipe
from kerasft.cli import main
from kerasft.errors import UserError
from kerasft.sweep import Grid


def test_the_grid_is_every_combination_in_the_order_given():
    grid = Grid.parse(["train.seed=1,2,3", "train.class_weight=none,balanced", "train.epochs=1", "data.columns=a,b"])
    assert grid.fixed == ["train.epochs=1", "data.columns=a,b"]  # a list field takes its commas whole
    assert grid.points()[:3] == [
        {"train.seed": "1", "train.class_weight": "none"},
        {"train.seed": "1", "train.class_weight": "balanced"},
        {"train.seed": "2", "train.class_weight": "none"},
    ]
    assert len(grid.points()) == 6


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["train.seed=1", "train.epochs=2"], "nothing to sweep: every key has a single value"),
        (["train.sed=1,2"], "unknown recipe key 'train.sed'; valid keys:"),
        (["train.seed=1,two"], r"train.seed='two': expected int"),
        (["train.seed=1,,2"], "has an empty value"),
        (["train.seed=1,1"], "repeats a value"),
        (["train.seed=1,2", "train.seed=3"], "train.seed is given twice"),
        (["train.seed"], "is not KEY=VALUE or KEY=v1,v2"),
    ],
)
def test_a_grid_that_cannot_be_swept_is_refused(overrides, expected):
    with pytest.raises(UserError, match=expected):
        Grid.parse(overrides)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train.seed=1", "train.epochs=1"], "nothing to sweep: every key has a single value"),
        (["train.seeds=1,2"], "unknown recipe key 'train.seeds'"),
        (["train.seed=1,2", "train.gradient_accumulation_steps=0"], "train.gradient_accumulation_steps must be 1"),
        (["train.warmup_ratio=0.1,1.2"], "train.warmup_ratio must be between 0 and 1"),
    ],
)
def test_bad_sweeps_get_one_line_exit_2_and_write_nothing(tmp_path, tiny_checkpoint, small_data, args, expected):
    recipe = write_recipe(tmp_path / "tiny.py", tiny_checkpoint, small_data)
    result = CliRunner().invoke(main, ["sweep", str(recipe), *args, "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasft: error: ") and expected in lines[0], result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tensorboard_logs").exists()


@pytest.mark.slow
def test_a_sweep_runs_every_point_compares_them_and_resumes_after_an_interruption(
    tmp_path, tiny_checkpoint, small_data, monkeypatch
):
    from test_monitoring import read_events

    from kerasft import train

    recipe = write_recipe(tmp_path / "tiny.py", tiny_checkpoint, small_data, epochs=1, mixed_precision="off")
    folders = ["--output-dir", str(tmp_path / "runs"), "--tensorboard-dir", str(tmp_path / "tb")]
    args = ["sweep", str(recipe), "train.class_weight=none,balanced", "train.learning_rate=5e-3", *folders]

    real_train, calls = train.train, []

    def interrupted_at_the_second_point(*arguments, **keywords):  # Ctrl-C as the second point starts training
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*arguments, **keywords)

    monkeypatch.setattr(train, "train", interrupted_at_the_second_point)
    stopped = CliRunner().invoke(main, [*args, "--sweep-name", "cw"])
    assert stopped.exit_code == 130, stopped.output[-3000:]
    sweep_dir = tmp_path / "runs" / "cw"
    assert "kerasft sweep --resume" in stopped.stderr and str(sweep_dir.resolve()) in stopped.stderr
    states = [point["state"] for point in json.loads((sweep_dir / "sweep.json").read_text())["points"]]
    assert states == ["complete", "interrupted"]
    first_metrics = (tmp_path / "runs" / "cw-1" / "metrics.json").stat().st_mtime_ns
    monkeypatch.setattr(train, "train", real_train)

    refused = CliRunner().invoke(main, ["sweep", "--resume", str(sweep_dir), "train.seed=3,4"])
    assert refused.exit_code == 2 and "drop train.seed=3,4" in refused.stderr
    resumed = CliRunner().invoke(main, ["sweep", "--resume", str(sweep_dir)])
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert "resuming sweep cw: 1 of 2 points complete" in resumed.output
    assert "point 1 of 2" not in resumed.output and "point 2 of 2" in resumed.output  # only the point not done
    assert (tmp_path / "runs" / "cw-1" / "metrics.json").stat().st_mtime_ns == first_metrics

    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["grid"] == {"train.class_weight": ["none", "balanced"]}
    assert summary["overrides"] == ["train.learning_rate=5e-3"]
    points = summary["points"]
    assert [point["state"] for point in points] == ["complete", "complete"]
    assert [point["run"] for point in points] == ["cw-1", "cw-2"]
    for point in points:
        run = tmp_path / "runs" / point["run"]
        metrics = json.loads((run / "metrics.json").read_text())
        assert point["test"]["macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
        assert point["validation"]["macro_f1"] == pytest.approx(metrics["validation"][-1]["macro_f1"])
        assert set(point["test_recall"]) == {"account", "billing", "delivery", "feedback", "technical"}
        recorded = json.loads((run / "recipe.json").read_text())
        assert recorded["train"]["class_weight"] == point["values"]["train.class_weight"]
        assert recorded["train"]["learning_rate"] == 5e-3
    best = max(points, key=lambda point: point["validation"]["macro_f1"])["point"]
    assert summary["best"]["point"] == best
    table = (sweep_dir / "sweep.md").read_text()
    assert f"| **{best} (best)** |" in table and table.count("(best)") == 1
    assert "| point | train.class_weight | state | val macro F1 |" in table
    assert f"{best} (best)" in resumed.output and "sweep.md" in resumed.output
    report = (tmp_path / "runs" / "cw-2" / "classification_report.txt").read_text()
    assert (
        "train.class_weight=balanced" in report
        and "class_weight" not in (tmp_path / "runs" / "cw-1" / "classification_report.txt").read_text()
    )

    # TensorBoard: each point a run of its own under <tensorboard-dir>/<sweep>, in the HParams tab with its values
    from tensorboard.plugins.hparams import plugin_data_pb2

    for point in points:
        events = read_events(tmp_path / "tb" / "cw" / point["run"])
        plugin = {t: plugin_data_pb2.HParamsPluginData.FromString(c) for t, c in events["_hparams"].items()}
        hparams = plugin["_hparams_/session_start_info"].session_start_info.hparams
        assert hparams["train.class_weight"].string_value == point["values"]["train.class_weight"]
        assert events["final/val_macro_f1"][-1][1] == pytest.approx(point["validation"]["macro_f1"], abs=1e-6)


def test_a_sweep_never_takes_over_earlier_runs_named_like_its_points(tmp_path, tiny_checkpoint, small_data):
    """Points run in <output-dir>/<sweep-name>-<point>: a folder already there (a run of an earlier sweep or of
    `kerasft run --run-name`) is refused, not resumed or marked best."""
    recipe = write_recipe(tmp_path / "tiny.py", tiny_checkpoint, small_data, epochs=1)
    earlier = tmp_path / "runs" / "exp-2"
    earlier.mkdir(parents=True)
    (earlier / "metrics.json").write_text('{"test": {"accuracy": 0.5}}')
    args = ["sweep", str(recipe), "train.seed=1,2", "--output-dir", str(tmp_path / "runs"), "--sweep-name", "exp"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "exp-2 already exists" in lines[0] and "choose another --sweep-name" in lines[0]
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["exp-2"]
    assert (earlier / "metrics.json").read_text() == '{"test": {"accuracy": 0.5}}'


def test_a_sweep_named_by_time_passes_over_names_taken_by_earlier_runs(tmp_path):
    from kerasft.sweep import Sweep

    points = [{"point": 1, "values": {}}, {"point": 2, "values": {}}]
    plan = {"command": "", "recipe": "tiny.py", "grid": {}, "overrides": [], "tensorboard_dir": None, "points": points}
    first = Sweep.create(tmp_path, None, "tiny-sweep", {**plan, "points": list(plan["points"])})
    (tmp_path / f"{first.name}-2-1").mkdir()  # an earlier run where the next name's first point would go
    second = Sweep.create(tmp_path, None, "tiny-sweep", {**plan, "points": list(plan["points"])})
    assert second.name not in (first.name, f"{first.name}-2")
    assert [point["run"] for point in second.plan["points"]] == [f"{second.name}-1", f"{second.name}-2"]
