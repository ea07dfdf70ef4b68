"""Run directories and atomic writes: a file is either absent or complete, and no run overwrites another."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from kerasft.errors import UserError


def write_atomic(path: Path, data: str | bytes) -> None:
    """Writes to a temporary file beside ``path``, then renames it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, mode) as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def create_run_dir(output_dir: Path, run_name: str | None, recipe_name: str, needed_bytes: int = 0) -> Path:
    """Creates ``output_dir/run_name`` (default ``<recipe>-<timestamp>``); an existing one is never reused.

    Refuses, before anything is written, an output directory that cannot be created or written,
    or whose filesystem has less than ``needed_bytes`` free.
    """
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output directory {output_dir}: {error.strerror}; pick another with --output-dir") from None
    if not os.access(output_dir, os.W_OK):
        raise UserError(f"output directory {output_dir} is not writable; pick another with --output-dir")
    free = shutil.disk_usage(output_dir).free
    if free < needed_bytes:
        raise UserError(f"output directory {output_dir} has {free / 1e6:.0f} MB free but this run writes about {needed_bytes / 1e6:.0f} MB "
                        "(checkpoints, backup, export); free some space, pick another --output-dir, or lower train.keep_checkpoints")
    if run_name is not None:
        if not run_name or "/" in run_name or run_name.startswith("."):
            raise UserError(f"run name {run_name!r} must be a plain folder name")
        candidates = [run_name]
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        candidates = [f"{recipe_name}-{stamp}"] + [f"{recipe_name}-{stamp}-{n}" for n in range(2, 100)]
    for name in candidates:
        try:
            (output_dir / name).mkdir()  # atomic: of two runs racing for a name, one gets it
            return output_dir / name
        except FileExistsError:
            continue
    raise UserError(f"run directory {output_dir / candidates[0]} already exists; choose another --run-name (earlier runs are never overwritten)")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(error: BaseException, run_dir: Path, resume: str) -> UserError | None:
    """A UserError for a write that failed because the disk (or quota) is full; None for any other error."""
    if not (isinstance(error, OSError) and error.errno in DISK_FULL):
        return None
    where = error.filename or run_dir
    return UserError(f"no space left on the device writing {where}; free some space, then continue with: {resume}")
