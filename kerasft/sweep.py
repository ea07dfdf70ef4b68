"""Sweeps: one run per point of a grid of recipe overrides, and a table that compares them.

    kerasft sweep recipes/emotion.py train.class_weight=none,balanced train.seed=1,2,3 data.train=train.txt ...
    kerasft sweep --resume runs/emotion-sweep-20261201-101500      # the points not yet done

``KEY=v1,v2`` tries every value; a key with one value (``KEY=VALUE``) is set on every point; the
points are every combination, in the order the keys are given. Each point is an ordinary run
(`kerasft.runner`): its own run directory ``<output-dir>/<sweep-name>-<point>`` with everything a run
writes (``kerasft runs`` lists it, ``kerasft run --resume`` and ``kerasft export`` take it), and its
TensorBoard folder under ``<tensorboard-dir>/<sweep-name>/``, whose HParams tab then compares the
points side by side. The sweep's own folder ``<output-dir>/<sweep-name>/`` holds ``sweep.json`` (the
grid, each point's recipe and run, and their figures) and ``sweep.md`` (the table, best point marked),
rewritten after every point. The best point has the highest validation macro F1 (of its kept epoch):
chosen on validation, so that the test figures stay an unbiased estimate.

Every point's recipe is checked, and the first point's data and model prepared, before anything is
written. A point that fails (a NaN loss, say) is marked and the sweep goes on; Ctrl-C stops the
sweep after saving the running point, like ``kerasft run``. ``--resume`` skips the complete points,
resumes a point that was cut off from its backup (``kerasft run --resume``), and runs the rest.
"""

from __future__ import annotations

import itertools
import json
import shlex
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path

from kerasft.errors import UserError
from kerasft.files import write_atomic, write_json
from kerasft.recipe import Recipe, apply_overrides, field_types, load_recipe, parse_value
from kerasft.rundir import (
    FOLDER_TIME_FORMAT,
    RunDir,
    check_free_space,
    check_run_name,
    check_writable_folder,
    space_needed,
)

SWEEP_JSON, SWEEP_MD = "sweep.json", "sweep.md"
BEST_BY = ("validation", "macro_f1")  # the kept epoch's validation macro F1 picks the best point
FIGURES = (  # sweep.md's columns of figures: (heading, part, key)
    ("val macro F1", "validation", "macro_f1"),
    ("val accuracy", "validation", "accuracy"),
    ("test macro F1", "test", "macro_f1"),
    ("test accuracy", "test", "accuracy"),
)


@dataclass(frozen=True)
class Grid:
    """The swept keys with their values, in the order given, and the overrides every point shares.

    >>> grid = Grid.parse(["train.seed=1,2", "train.class_weight=none,balanced", "train.epochs=1"])
    >>> grid.fixed, len(grid.points())
    (['train.epochs=1'], 4)
    >>> grid.points()[1]
    {'train.seed': '1', 'train.class_weight': 'balanced'}
    """

    axes: dict[str, list[str]]
    fixed: list[str]

    @classmethod
    def parse(cls, overrides: list[str]) -> Grid:
        axes, fixed, seen = {}, [], set()
        for override in overrides:
            key, sep, text = override.partition("=")
            key = key.strip()
            if not sep or not key:
                raise UserError(f"sweep value {override!r} is not KEY=VALUE or KEY=v1,v2 (e.g. train.seed=1,2,3)")
            if key in seen:
                raise UserError(f"{key} is given twice; give all its values once, separated by commas: {key}=v1,v2")
            seen.add(key)
            values = [text] if _takes_a_list(key) else [piece.strip() for piece in text.split(",")]
            if len(values) > 1 and not all(values):
                raise UserError(f"{override!r} has an empty value; a sweep separates a key's values with commas")
            for value in values:
                parse_value(key, value)  # an unknown key or a value of the wrong type: one line, before anything runs
            if len(set(values)) < len(values):
                raise UserError(f"{override!r} repeats a value; each point of a sweep must differ")
            if len(values) == 1:
                fixed.append(f"{key}={values[0]}")
            else:
                axes[key] = values
        if not axes:
            raise UserError(
                "nothing to sweep: every key has a single value; give at least one KEY=v1,v2 (e.g. train.seed=1,2,3), "
                "or use `kerasft run` for one run"
            )
        return cls(axes, fixed)

    def points(self) -> list[dict[str, str]]:
        return [dict(zip(self.axes, values)) for values in itertools.product(*self.axes.values())]


def _takes_a_list(key: str) -> bool:
    hint = field_types()[key] if key in field_types() else None
    return any(typing.get_origin(arg) is list for arg in (hint, *typing.get_args(hint)))


class Sweep:
    """A sweep's folder: ``sweep.json`` (the plan, and each point's figures once run) and ``sweep.md`` (the table)."""

    def __init__(self, path: Path, plan: dict | None = None):
        self.path = Path(path)
        self.plan = plan or {}

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def output_dir(self) -> Path:
        return Path(self.plan["output_dir"])

    @property
    def tensorboard_dir(self) -> Path:
        return Path(self.plan["tensorboard_dir"])

    def run_dir(self, point: dict) -> RunDir:
        return RunDir(self.output_dir / point["run"])

    @classmethod
    def create(cls, output_dir: Path, name: str | None, stem: str, plan: dict) -> Sweep:
        """Creates ``output_dir/name`` (default ``<stem>-<timestamp>``), with ``sweep.json``. Neither the folder nor
        its points' run folders (``output_dir/<name>-<point>``) may exist: earlier runs are never taken over."""
        check_writable_folder(output_dir, "--output-dir")
        output_dir.mkdir(parents=True, exist_ok=True)
        if name is not None:
            check_run_name(name)
        candidates = [name] if name else [f"{stem}-{time.strftime(FOLDER_TIME_FORMAT)}"]
        candidates += [] if name else [f"{candidates[0]}-{n}" for n in range(2, 100)]
        for candidate in candidates:
            runs = [f"{candidate}-{point['point']}" for point in plan["points"]]
            taken = [run for run in runs if (output_dir / run).exists()]
            if taken and name:
                raise UserError(
                    f"{output_dir / taken[0]} already exists, and this sweep's point {taken[0]} would run there; "
                    "choose another --sweep-name (earlier runs are never overwritten)"
                )
            if taken:  # a name made from the time: the next one
                continue
            try:
                (output_dir / candidate).mkdir()
            except FileExistsError:
                continue
            sweep = cls(output_dir / candidate)
            tensorboard_dir = Path(plan.pop("tensorboard_dir") or "tensorboard_logs") / candidate
            points = [point | {"run": run} for point, run in zip(plan.pop("points"), runs)]
            sweep.plan = plan | {
                "sweep": candidate,
                "output_dir": str(output_dir.resolve()),
                "tensorboard_dir": str(tensorboard_dir.resolve()),
                "points": points,
            }
            sweep.write()
            return sweep
        raise UserError(f"sweep folder {output_dir / candidates[0]} already exists; choose another --sweep-name")

    @classmethod
    def existing(cls, path: Path) -> Sweep:
        file = Path(path) / SWEEP_JSON
        if not file.is_file():
            raise UserError(f"--resume {path}: not a sweep folder (no {SWEEP_JSON}); give the folder a sweep printed")
        try:
            plan = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(plan, dict) or not isinstance(plan.get("points"), list):
                raise ValueError("not a sweep plan")
        except (OSError, ValueError) as error:
            raise UserError(f"--resume {path}: {file} cannot be read ({error}); the sweep folder is damaged") from None
        return cls(path, plan)

    # --- figures -----------------------------------------------------------------------------------------------------

    def results(self) -> list[dict]:
        """Every point with its state and, once complete, its validation and test figures and per-label test recall."""
        return [point | point_figures(self.run_dir(point), point.get("error")) for point in self.plan["points"]]

    def write(self) -> list[dict]:
        """Rewrites sweep.json and sweep.md with every point's current state and figures; returns the points."""
        results = self.results()
        best = best_point(results)
        self.plan["best"] = None if best is None else {"point": best, "by": "validation macro_f1 of the kept epoch"}
        write_json(self.path / SWEEP_JSON, self.plan | {"points": results})
        write_atomic(self.path / SWEEP_MD, self.markdown(results, best))
        return results

    def rows(self, results: list[dict], best: int | None) -> tuple[list[str], list[list[str]]]:
        keys = list(self.plan["grid"])
        heading = ["point", *keys, "state", *(name for name, _, _ in FIGURES), "lowest test recall", "run"]
        rows = []
        for point in results:
            figures = [_figure(point.get(part, {}).get(key)) for _, part, key in FIGURES]
            recall = point.get("test_recall") or {}
            lowest = min(recall, key=recall.get) if recall else None
            mark = " (best)" if point["point"] == best else ""
            rows.append(
                [f"{point['point']}{mark}", *(point["values"][key] for key in keys), point["state"], *figures]
                + [f"{lowest} {recall[lowest]:.4f}" if lowest else "", point["run"]]
            )
        return heading, rows

    def markdown(self, results: list[dict], best: int | None) -> str:
        heading, rows = self.rows(results, best)
        lines = [
            f"# Sweep {self.name}",
            "",
            f"`{self.plan['command']}`",
            "",
            f"Recipe `{self.plan['recipe']}`; every point also sets: {', '.join(self.plan['overrides']) or 'nothing'}.",
            "Best (in bold): the highest validation macro F1 of the kept epoch. Compare the points in TensorBoard's "
            f"HParams tab: `tensorboard --logdir {self.tensorboard_dir}`.",
            "",
            "| " + " | ".join(heading) + " |",
            "|" + "|".join("---:" if name in {f[0] for f in FIGURES} else "---" for name in heading) + "|",
        ]
        for row, point in zip(rows, results):
            cells = [f"**{cell}**" if point["point"] == best and cell else cell for cell in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def table(self) -> str:
        """sweep.md's table as aligned text, for the terminal."""
        results = self.results()
        heading, rows = self.rows(results, best_point(results))
        widths = [max(len(row[i]) for row in [heading, *rows]) for i in range(len(heading))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [heading, *rows])


def point_figures(run_dir: RunDir, error: str | None = None) -> dict:
    """A point's state, the kept epoch's validation figures, the test figures and each label's test recall."""
    if not run_dir.path.is_dir():
        return {"state": "failed" if error else "pending"}
    state = run_dir.state() if run_dir.is_run() else "pending"
    found = {"state": state} | ({"error": error} if error and state != "complete" else {})
    if state != "complete":
        return found
    metrics = json.loads((run_dir / RunDir.METRICS).read_text())
    report = json.loads((run_dir / RunDir.REPORT_JSON).read_text())
    kept = next((record for record in metrics.get("validation", []) if record["epoch"] == metrics["best_epoch"]), {})
    labels = [name for name, value in report.items() if isinstance(value, dict) and name not in _AVERAGES]
    return found | {
        "best_epoch": metrics["best_epoch"],
        "validation": {key: kept.get(key) for key in ("accuracy", "macro_f1", "loss")},
        "test": {key: metrics["test"][key] for key in ("accuracy", "macro_f1", "weighted_f1", "loss")},
        "test_recall": {name: report[name]["recall"] for name in labels},
    }


_AVERAGES = ("macro avg", "weighted avg", "micro avg", "samples avg")


def best_point(results: list[dict]) -> int | None:
    scored = [
        point for point in results if point["state"] == "complete" and point.get("validation", {}).get("macro_f1")
    ]
    if not scored:
        return None
    return max(scored, key=lambda point: point["validation"]["macro_f1"])["point"]


def _figure(value) -> str:
    return "" if value is None else f"{value:.4f}"


# --- running -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepGrid:
    """A sweep's recipe file, its grid, and the recipe of every point: all checked without TensorFlow.

    grid = SweepGrid.read(Path("recipes/emotion.py"), ["train.learning_rate=1e-5,3e-5", "train.epochs=1"])
    [values for values, _ in grid.points]   # [{'train.learning_rate': '1e-5'}, {'train.learning_rate': '3e-5'}]
    """

    recipe_path: Path
    grid: Grid
    base: Recipe
    points: list[tuple[dict, Recipe]]  # each point's values and its recipe

    @classmethod
    def read(cls, recipe_path: Path, overrides: list[str]) -> SweepGrid:
        """The recipe file with each point's overrides applied; a bad file, key or value is refused here."""
        from kerasft.strategy import multi_worker_pending

        if multi_worker_pending():
            raise UserError("kerasft sweep runs on one machine; unset TF_CONFIG, or run each point with `kerasft run`")
        grid = Grid.parse(overrides)
        base = load_recipe(recipe_path)
        points = [
            (values, apply_overrides(base, grid.fixed + [f"{k}={v}" for k, v in values.items()]))
            for values in grid.points()
        ]
        return cls(Path(recipe_path), grid, base, points)


def run_sweep(planned: SweepGrid, options: SweepOptions) -> Sweep:
    """Prepares the first point, creates the sweep folder, then runs the points one after another."""
    from kerasft.session import Session

    grid, base = planned.grid, planned.base
    points, recipes = [values for values, _ in planned.points], [recipe for _, recipe in planned.points]
    first = Session(recipes[0], options.strategy).prepare()  # bad data or checkpoint: refused, nothing written
    tensorboard_dir = options.tensorboard_dir or Path("tensorboard_logs")
    needs = space_needed(first.model_bytes(), first.recipe.train, options.output_dir, tensorboard_dir)
    check_free_space({folder: size * len(points) for folder, size in needs.items()})
    plan = {
        "command": options.command,
        "recipe": str(planned.recipe_path.resolve()),
        "grid": grid.axes,
        "overrides": grid.fixed,
        "tensorboard_dir": options.tensorboard_dir,
        "points": [
            {"point": number, "values": values, "recipe": _with_absolute_paths(recipe).to_dict()}
            for number, (values, recipe) in enumerate(zip(points, recipes), start=1)
        ],
    }
    sweep = Sweep.create(options.output_dir, options.sweep_name, f"{base.name}-sweep", plan)
    print(f"kerasft: sweep {sweep.name}: {len(points)} points ({' x '.join(map(str, map(len, grid.axes.values())))})")
    _run_points(sweep, options.strategy, prepared={1: first})
    return sweep


def resume_sweep(sweep: Sweep, strategy: str | None = None) -> Sweep:
    """Runs the points of ``sweep`` (`Sweep.existing`) that are not complete: cut-off points resume from their
    backup."""
    done = sum(point["state"] == "complete" for point in sweep.results())
    print(f"kerasft: resuming sweep {sweep.name}: {done} of {len(sweep.plan['points'])} points complete")
    _run_points(sweep, strategy, prepared={})
    return sweep


@dataclass(frozen=True)
class SweepOptions:
    """What `kerasft sweep` takes besides the recipe and the grid."""

    output_dir: Path = Path("runs")
    sweep_name: str | None = None
    tensorboard_dir: Path | None = None
    strategy: str | None = None
    command: str = ""


def _run_points(sweep: Sweep, strategy: str | None, prepared: dict) -> None:
    from kerasft.runner import resume_run, run_session
    from kerasft.session import Session

    for point in sweep.plan["points"]:
        run_dir = sweep.run_dir(point)
        if point_figures(run_dir)["state"] == "complete":
            continue
        print(
            f"\nkerasft: sweep {sweep.name}: point {point['point']} of {len(sweep.plan['points'])}: "
            + ", ".join(f"{key}={value}" for key, value in point["values"].items())
        )
        point.pop("error", None)
        try:
            if run_dir.is_run():  # cut off earlier: continue it from its backup
                resume_run(run_dir.path, strategy)
            else:
                if run_dir.path.is_dir() and not any(run_dir.path.iterdir()):
                    run_dir.path.rmdir()  # created, then stopped before anything was written in it
                session = prepared.pop(point["point"], None) or Session(Recipe.from_dict(point["recipe"]), strategy)
                run_session(session, sweep.output_dir, point["run"], sweep.tensorboard_dir)
        except KeyboardInterrupt:
            sweep.write()
            print(
                f"kerasft: sweep {sweep.name} interrupted at point {point['point']}; resume it with:\n"
                f"  {resume_command(sweep)}",
                file=sys.stderr,
                flush=True,
            )
            raise
        except Exception as error:  # this point's own failure (a NaN loss, ...): marked, and the sweep goes on
            point["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
            print(f"kerasft: sweep point {point['point']} failed: {point['error']}", file=sys.stderr, flush=True)
        finally:
            _release_memory()
        sweep.write()


def _release_memory() -> None:
    """Drops the finished point's model and Keras' global state before the next point builds its own."""
    import gc

    import tf_keras as keras

    keras.backend.clear_session()
    gc.collect()


def resume_command(sweep: Sweep) -> str:
    from kerasft.strategy import requested_devices

    devices = requested_devices()
    return f"kerasft sweep --resume {shlex.quote(str(sweep.path.resolve()))}" + (
        f" --devices {devices}" if devices else ""
    )


def _with_absolute_paths(recipe: Recipe) -> Recipe:
    """The point's recipe with its local data files and checkpoint made absolute, so that --resume works from any
    folder (as kerasft.session does for recipe.json)."""
    from kerasft.model import is_local

    data = {
        name: str(Path(path).resolve())
        for name in ("train", "validation", "test")
        if (path := getattr(recipe.data, name))
    }
    recipe = Recipe.from_dict(recipe.to_dict() | {"data": recipe.to_dict()["data"] | data})
    if is_local(recipe.model.checkpoint):
        recipe.model.checkpoint = str(Path(recipe.model.checkpoint).expanduser().resolve())
    return recipe


def summary(sweep: Sweep) -> str:
    """The end of `kerasft sweep`: the table, then where everything is."""
    results = sweep.results()
    failed = [point["point"] for point in results if point["state"] != "complete"]
    lines = [
        f"\nkerasft: sweep {sweep.name}: {len(results) - len(failed)} of {len(results)} points complete",
        "",
        sweep.table(),
        "",
    ]
    lines += [
        f"  summary      {sweep.path / SWEEP_MD}  (and {SWEEP_JSON})",
        f"  tensorboard  tensorboard --logdir {sweep.tensorboard_dir}  (HParams tab)",
    ]
    if failed:
        lines.append(
            f"  points not complete: {', '.join(map(str, failed))}; try them again with: {resume_command(sweep)}"
        )
    return "\n".join(lines)


def command_line(arguments: list[str]) -> str:
    """How this sweep was started, for sweep.json and sweep.md."""
    return " ".join(["kerasft", "sweep", *map(shlex.quote, arguments)])
