"""Past runs (`kerasft runs`): one row per run folder, newest first, read from the files each run leaves.

Incomplete runs are listed too, with their state (running, failed, interrupted, or killed: "running"
on this host but its process is gone) and the epochs their checkpoints reached::

    rows = list_runs(Path("runs"))
    print(format_table(rows))
"""

from __future__ import annotations

import os
from pathlib import Path

from kerasft.errors import UserError
from kerasft.rundir import RunDir

COLUMNS = (  # key, heading
    ("run", "RUN"),
    ("recipe", "RECIPE"),
    ("started", "STARTED"),
    ("state", "STATE"),
    ("epochs", "EPOCHS"),
    ("best_epoch", "BEST"),
    ("test_accuracy", "TEST ACC"),
    ("test_macro_f1", "MACRO F1"),
    ("export", "EXPORT"),
)


def list_runs(output_dir: Path) -> list[dict]:
    """Every run folder in ``output_dir``, newest first (kerasft.rundir reads each one)."""
    if not output_dir.is_dir():
        raise UserError(f"no runs folder {output_dir}; pass the --output-dir your runs used")
    runs = [RunDir(entry) for entry in output_dir.iterdir() if entry.is_dir()]
    rows = [run.describe() for run in runs if run.is_run()]
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
