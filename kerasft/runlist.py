"""Past runs (`kerasft runs`): one row per run folder, newest first, read from the files each run leaves.

Incomplete runs are listed too, with their state (running, failed, interrupted, or killed: "running"
on this host but its process is gone) and the epochs their checkpoints reached::

    rows = list_runs(Path("runs"))
    print(format_table(rows))
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

from kerasft.errors import UserError
from kerasft.resume import process_state

MARKERS = ("recipe.json", "status.json")  # a folder with either is a run (inspect folders have neither)
COLUMNS = (  # key, heading
    ("run", "RUN"), ("recipe", "RECIPE"), ("started", "STARTED"), ("state", "STATE"), ("epochs", "EPOCHS"),
    ("best_epoch", "BEST"), ("test_accuracy", "TEST ACC"), ("test_macro_f1", "MACRO F1"), ("export", "EXPORT"),
)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or being written by a run that has not finished
        return {}
    return value if isinstance(value, dict) else {}


def _started(folder: Path, status: dict, metrics: dict) -> float:
    """When the run started: status.json says so; older runs: finished minus duration, else recipe.json's time."""
    for key, offset in (("started", 0.0), ("finished", float(metrics.get("seconds") or 0))):
        try:
            return time.mktime(time.strptime(status[key], "%Y-%m-%dT%H:%M:%S")) - offset
        except (KeyError, TypeError, ValueError):
            continue
    marker = next((folder / name for name in MARKERS if (folder / name).exists()), folder)
    return marker.stat().st_mtime


def _checkpoint_epochs(folder: Path) -> int | None:
    numbers = [int(match.group(1)) for path in (folder / "checkpoints").glob("epoch-*.index") if (match := re.fullmatch(r"epoch-(\d+)\.index", path.name))]
    return max(numbers, default=None)


def _newest_export(folder: Path) -> Path | None:
    versions = [(int(version.name), version) for version in (folder / "export").glob("*/*")
                if version.name.isdigit() and (version / "saved_model.pb").is_file()]
    return max(versions)[1] if versions else None


def describe_run(folder: Path) -> dict:
    """One run's row: name, recipe, start, state, epochs run (of planned), kept epoch, test figures, newest export."""
    status, recipe, metrics = (_read_json(folder / name) for name in ("status.json", "recipe.json", "metrics.json"))
    started = _started(folder, status, metrics)
    test = metrics.get("test") or {}
    epochs = len(metrics["train"]) if metrics.get("train") else _checkpoint_epochs(folder)
    export = _newest_export(folder)
    return {
        "run": folder.name,
        "recipe": recipe.get("name"),
        "started": datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S"),
        "started_timestamp": started,
        "state": "killed" if process_state(status) == "gone" else status.get("state", "unknown"),
        "epochs": epochs,
        "epochs_planned": (recipe.get("train") or {}).get("epochs"),
        "best_epoch": metrics.get("best_epoch"),
        "test_accuracy": test.get("accuracy"),
        "test_macro_f1": test.get("macro_f1"),
        "export": str(export) if export else None,
        "path": str(folder),
    }


def list_runs(output_dir: Path) -> list[dict]:
    """Every run folder in ``output_dir``, newest first."""
    if not output_dir.is_dir():
        raise UserError(f"no runs folder {output_dir}; pass the --output-dir your runs used")
    folders = [entry for entry in output_dir.iterdir() if entry.is_dir() and any((entry / name).exists() for name in MARKERS)]
    rows = [describe_run(folder) for folder in folders]
    return sorted(rows, key=lambda row: (row["started_timestamp"], row["run"]), reverse=True)


def _cell(row: dict, key: str) -> str:
    value = row[key]
    if key == "epochs" and value is not None and row["epochs_planned"] is not None:
        return f"{value}/{row['epochs_planned']}"
    if key == "started":
        return value[:16]
    if key == "export" and value is not None:
        relative = os.path.relpath(value)
        return relative if not relative.startswith("..") else value
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def format_table(rows: list[dict]) -> str:
    """A plain-text table, one line per run, columns padded to their widest cell."""
    cells = [[heading for _, heading in COLUMNS]] + [[_cell(row, key) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)
