"""The run directory: the one owner of a run's layout, its state, and what is read back from it.

    run_dir = RunDir.create(Path("runs"), run_name=None, stem="emotion")  # runs/emotion-20261129-101500
    run_dir.set_state("running", resume="kerasft run --resume ...")
    run_dir.write_recipe(recipe, manifest)
    ...
    run_dir.set_state("complete")
    RunDir(Path("runs/emotion-20261129-101500")).state()  # "complete"

Layout (``kerasft runs``, ``--resume`` and ``kerasft export`` read it back)::

    recipe.json                  the recipe as run, with the run's manifest under "run"
    status.json                  running | interrupted | failed | complete (and "killed": running, process gone)
    metrics.json                 test figures, per-epoch train/validation figures, training and export facts
    classification_report.txt/.json, confusion_matrix.png (label_scores.png if multi-label), learning_curves.png,
    predictions.csv
    model/                       config and tokenizer, to rebuild the model for `kerasft export`
    checkpoints/epoch-N.*        the last train.keep_checkpoints epochs
    backup/, trained/, history.json    while unfinished: what `--resume` continues from
    export/<model-name>/<version>/     SavedModels for TF Serving

Every file is written whole or not at all (kerasft.files, or a staging folder renamed into place);
TensorFlow writes checkpoints the same way (a temporary name, then a rename).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

from kerasft.errors import UserError
from kerasft.files import write_atomic, write_json

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # in status.json
FOLDER_TIME_FORMAT = "%Y%m%d-%H%M%S"  # in default run names: <recipe>-20261129-101500
STATES = ("running", "interrupted", "failed", "complete")  # what status.json says; "killed" is read, never written
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# What a run writes besides weights, per epoch, into its TensorBoard folder: the validation confusion matrix picture
# (the largest part) and the report text; scalars are a few hundred bytes. Measured on the quickstart: about 0.1 MB.
TENSORBOARD_BYTES_PER_EPOCH = 1_000_000


def timestamp(seconds: float | None = None) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(seconds))


def parse_timestamp(text) -> float | None:
    try:
        return time.mktime(time.strptime(text, TIME_FORMAT))
    except (TypeError, ValueError):
        return None


def export_versions(model_dir: Path) -> list[Path]:
    """The SavedModel versions in ``export/<model-name>``, oldest first: TF Serving's all-digit folder names."""
    found = [entry for entry in model_dir.iterdir() if entry.name.isdigit()] if model_dir.is_dir() else []
    return sorted(found, key=lambda entry: int(entry.name))


def disk_full_path(error: BaseException) -> str | None:
    """For a write that failed because the disk or quota is full, the file it was writing (or "" if unknown); else None.

    Python raises OSError with the errno; TensorFlow's file systems raise their own types
    (ResourceExhaustedError for ENOSPC) whose message is ``<path>; No space left on device``.
    """
    while error is not None:
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error.filename or ""
        for code in DISK_FULL:
            found = re.search(rf"(\S+); {re.escape(os.strerror(code))}", str(error))
            if found or os.strerror(code) in str(error):
                return found.group(1) if found else ""
        error = error.__cause__ or error.__context__
    return None


def is_disk_full(error: BaseException) -> bool:
    return disk_full_path(error) is not None


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that holds ``path`` (or would: its nearest existing parent)."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def space_needed(
    model_bytes: int, train_config, run_folder: Path, tensorboard_dir: Path, rewritten: int = 0
) -> dict[Path, int]:
    """About what a run writes, by folder. Into its run directory: the weights and Adam's two slots (3x the model;
    4x with gradient accumulation's sums) in each kept checkpoint and in the backup, the final weights, and the
    export (docs/reliability.md measures the ratio), less what a resumed run rewrites in place; into TensorBoard's,
    the per-epoch pictures and text."""
    with_optimizer = 3 + (train_config.gradient_accumulation_steps > 1)
    run = model_bytes * (with_optimizer * (train_config.keep_checkpoints + 1) + 1 + 1)
    return {run_folder: max(0, run - rewritten), tensorboard_dir: TENSORBOARD_BYTES_PER_EPOCH * train_config.epochs}


SPACE_FIX = "free some space, pick another --output-dir or --tensorboard-dir, or lower train.keep_checkpoints"


def check_free_space(needs: dict[Path, int], fix: str = SPACE_FIX) -> None:
    """Refuses, naming the folder, when a filesystem has less free space than the folders on it will take."""
    by_device: dict[int, tuple[list[Path], int]] = {}
    for folder, size in needs.items():
        anchor = folder.resolve()
        while not anchor.exists():
            anchor = anchor.parent
        folders, total = by_device.get(anchor.stat().st_dev, ([], 0))
        by_device[anchor.stat().st_dev] = (folders + [folder], total + size)
    for folders, total in by_device.values():
        free = free_bytes(folders[0])
        if free < total:
            raise UserError(
                f"the filesystem of {' and '.join(map(str, folders))} has {free / 1e6:.0f} MB free but this run writes "
                f"about {total / 1e6:.0f} MB "
                f"there (checkpoints, backup, export, TensorBoard); {fix}"
            )


class RunDir:
    """One run's folder: file names, state transitions, the manifest, and reading them back."""

    RECIPE, STATUS, METRICS, HISTORY = "recipe.json", "status.json", "metrics.json", "history.json"
    REPORT_TEXT, REPORT_JSON = "classification_report.txt", "classification_report.json"
    CONFUSION_MATRIX, LEARNING_CURVES, PREDICTIONS = "confusion_matrix.png", "learning_curves.png", "predictions.csv"
    LABEL_SCORES = "label_scores.png"  # multi-label runs: each label's F1, precision and recall (no confusion matrix)
    MODEL, CHECKPOINTS, BACKUP, TRAINED, EXPORT = "model", "checkpoints", "backup", "trained", "export"
    RESULTS = (
        METRICS,
        REPORT_TEXT,
        CONFUSION_MATRIX,
        LABEL_SCORES,
        LEARNING_CURVES,
        PREDICTIONS,
        CHECKPOINTS,
    )  # the end-of-run summary lists those the run wrote

    def __init__(self, path: Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # --- creating and opening ---------------------------------------------------------------------------------------

    @classmethod
    def create(cls, output_dir: Path, run_name: str | None, stem: str) -> RunDir:
        """Creates ``output_dir/run_name`` (default ``<stem>-<timestamp>``); an existing folder is never reused.

        Refuses, before anything is written, an output directory that cannot be created or written.
        """
        check_writable_folder(output_dir, "--output-dir")
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(
                f"cannot create output directory {output_dir}: {error.strerror}; pick another with --output-dir"
            ) from None
        if run_name is not None:
            check_run_name(run_name)
            candidates = [run_name]
        else:
            stamp = time.strftime(FOLDER_TIME_FORMAT)
            candidates = [f"{stem}-{stamp}"] + [f"{stem}-{stamp}-{n}" for n in range(2, 100)]
        for name in candidates:
            try:
                (output_dir / name).mkdir()  # atomic: of two runs racing for a name, one gets it
                return cls(output_dir / name)
            except FileExistsError:
                continue
        raise UserError(RUN_NAME_TAKEN.format(path=output_dir / candidates[0]))

    @classmethod
    def existing(cls, path: Path, purpose: str) -> RunDir:
        """An existing run directory, or a UserError saying ``purpose`` (e.g. ``--resume RUN``) needs one."""
        run_dir = cls(path)
        if not (run_dir / cls.RECIPE).is_file():
            raise UserError(
                f"{purpose}: {path} is not a kerasft run directory (no {cls.RECIPE}); "
                "give the folder a run printed or `kerasft runs` lists"
            )
        run_dir.read_recipe(purpose)  # a readable recipe, or one line saying it is not
        return run_dir

    # --- the recipe and manifest ------------------------------------------------------------------------------------

    def write_recipe(self, recipe_dict: dict, manifest: dict) -> None:
        """recipe.json: the recipe as run, and the run's manifest (strategy, devices, batch, precision...) under
        "run"."""
        write_json(self / self.RECIPE, recipe_dict | {"run": manifest})

    def read_recipe(self, purpose: str = "kerasft") -> tuple[dict, dict]:
        """The stored recipe (as a dict) and the run's manifest."""
        stored = self._read_json(self.RECIPE)
        if not isinstance(stored, dict):
            raise UserError(f"{purpose}: {self / self.RECIPE} is not a JSON object; the run directory is damaged")
        return {key: value for key, value in stored.items() if key != "run"}, stored.get("run") or {}

    def recipe(self, purpose: str):
        """The stored recipe as a `Recipe`, and the run's manifest; one line naming recipe.json if it cannot be run."""
        from kerasft.recipe import Recipe

        stored, manifest = self.read_recipe(purpose)
        try:
            return Recipe.from_dict(stored), manifest
        except UserError as error:
            raise UserError(
                f"{purpose}: {self / self.RECIPE} does not hold a recipe this kerasft can run ({error})"
            ) from None

    def _read_json(self, name: str, default=None):
        path = self / name
        if not path.is_file():
            return default
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UserError(
                f"{path} cannot be read ({type(error).__name__}: {error}); the run directory is damaged"
            ) from None

    # --- state ------------------------------------------------------------------------------------------------------

    def status(self) -> dict:
        """status.json, or {} if absent or unreadable (a run being written, or from an older version)."""
        try:
            value = self._read_json(self.STATUS, {})
        except UserError:
            return {}
        return value if isinstance(value, dict) else {}

    def set_state(self, state: str, **facts) -> None:
        """Writes status.json: the state, when the run started and, for a running one, who runs it."""
        assert state in STATES, state
        started = facts.pop("started", None) or self.status().get("started") or timestamp()
        status = {"state": state, "started": started} | facts
        if state == "running":
            status |= {"pid": os.getpid(), "host": socket.gethostname()}
        if state == "complete":
            status["finished"] = timestamp()
        write_json(self / self.STATUS, status)

    def start(self, recipe_dict: dict, manifest: dict, resume: str, tokenizer, config) -> None:
        """A run begins (or resumes): status "running", recipe.json with the manifest, and model/ if not there yet."""
        self.set_state("running", resume=resume)
        self.write_recipe(recipe_dict, manifest)
        self.save_model_files(tokenizer, config)

    def mark_stopped(self, error: BaseException, stage: str, resume: str) -> None:
        """status.json says the run failed (an error) or was interrupted (Ctrl-C, SIGTERM), during which stage, and
        how to go on."""
        state = "failed" if isinstance(error, Exception) else "interrupted"
        try:
            self.set_state(state, error=f"{type(error).__name__}: {error}", stage=stage, resume=resume)
        except OSError:  # a full disk: status.json keeps saying "running", which `kerasft runs` shows as killed
            pass

    def state(self) -> str:
        """What status.json says, except "killed" for a run marked running on this host whose process is gone."""
        status = self.status()
        return "killed" if self.process_state(status) == "gone" else status.get("state", "unknown")

    @staticmethod
    def process_state(status: dict) -> str | None:
        """For a status saying "running" on this host: "alive" if its process is, "gone" if it was killed; else None."""
        pid = status.get("pid")
        if status.get("state") != "running" or not pid or status.get("host") != socket.gethostname():
            return None
        return "alive" if _alive(int(pid)) else "gone"

    def check_resumable(self) -> None:
        """Refuses a run that is complete or still running here."""
        status = self.status()
        if status.get("state") == "complete":
            raise UserError(
                f"--resume {self.path}: that run is complete; there is nothing to resume (start a new run, or `kerasft "
                "export` it again)"
            )
        if self.process_state(status) == "alive":
            raise UserError(
                f"--resume {self.path}: that run is still running (process {status['pid']}); stop it first, or wait "
                "for it"
            )

    # --- model files, checkpoints, exports -------------------------------------------------------------------------

    def save_model_files(self, tokenizer, config) -> None:
        """model/: the tokenizer and config, written to a staging folder and renamed into place (kept if already
        there)."""
        target = self / self.MODEL
        if target.is_dir():  # a resumed run: written whole by the first session
            return
        staging = self / f".{self.MODEL}-staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            tokenizer.save_pretrained(staging)
            config.save_pretrained(staging)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def checkpoint(self, epoch: int) -> Path:
        """The prefix of epoch ``epoch``'s checkpoint (``checkpoints/epoch-N``; its files add .index, .data-...)."""
        return self / self.CHECKPOINTS / f"epoch-{epoch}"

    def checkpoint_epochs(self) -> list[int]:
        """The epochs whose checkpoints are still there, in order."""
        found = (
            path.name.removeprefix("epoch-").removesuffix(".index")
            for path in (self / self.CHECKPOINTS).glob("epoch-*.index")
        )
        return sorted(int(number) for number in found if number.isdigit())

    def kept_epoch(self) -> int | None:
        """The epoch a finished run evaluated and exported (the best one, with early stopping)."""
        metrics = self._read_json(self.METRICS, {})
        return metrics.get("best_epoch") if isinstance(metrics, dict) else None

    def thresholds(self) -> list[float] | None:
        """A finished multi-label run's decision thresholds, one per label (metrics.json), for `kerasft export`."""
        metrics = self._read_json(self.METRICS, {})
        return ((metrics.get("thresholds") or {}).get("values")) if isinstance(metrics, dict) else None

    def checkpoint_to_export(self, requested: str | None = None) -> str:
        """``requested``, else the kept epoch's checkpoint, else the newest one; a UserError if it is not there."""
        kept = self.kept_epoch()
        if requested:
            chosen = requested
        elif kept is not None:
            chosen = str(self.checkpoint(kept))
            if not Path(f"{chosen}.index").is_file():
                raise UserError(
                    f"the run kept epoch {kept}, whose checkpoint is no longer in {self / self.CHECKPOINTS} "
                    "(train.keep_checkpoints pruned it); pass --checkpoint <run>/checkpoints/epoch-N to export another "
                    "epoch"
                )
        else:
            epochs = self.checkpoint_epochs()
            chosen = str(self.checkpoint(epochs[-1])) if epochs else None
        if not chosen or not Path(f"{chosen}.index").is_file():
            raise UserError(
                f"no checkpoint {chosen or 'in ' + str(self / self.CHECKPOINTS)}; pass --checkpoint "
                "<run>/checkpoints/epoch-N"
            )
        return chosen

    def export_dir(self, model_name: str) -> Path:
        return self / self.EXPORT / model_name

    def newest_export(self) -> Path | None:
        """The newest SavedModel version of any model name in export/."""
        versions = [
            version
            for model_dir in (self / self.EXPORT).glob("*")
            for version in export_versions(model_dir)
            if (version / "saved_model.pb").is_file()
        ]
        return max(versions, key=lambda version: int(version.name), default=None)

    def write(self, name: str, content: str | bytes) -> None:
        """Writes one result file (report, picture, predictions) whole or not at all."""
        write_atomic(self / name, content)

    def write_json(self, name: str, value) -> None:
        write_json(self / name, value)

    def bytes_on_disk(self, name: str) -> int:
        return sum(path.stat().st_size for path in (self / name).rglob("*") if path.is_file())

    def rewritten_on_resume(self) -> int:
        """What a resumed run writes again in place of what is there (kerasft.rundir.space_needed's ``rewritten``)."""
        return sum(self.bytes_on_disk(name) for name in (self.CHECKPOINTS, self.BACKUP, self.TRAINED))

    # --- reading past runs (`kerasft runs`) ------------------------------------------------------------------------

    def is_run(self) -> bool:
        """A folder with recipe.json or status.json (inspect folders have neither)."""
        return (self / self.RECIPE).exists() or (self / self.STATUS).exists()

    def describe(self) -> dict:
        """One row of `kerasft runs`: name, recipe, start, state, epochs run (of planned), kept epoch, test figures,
        newest export."""
        status = self.status()
        try:
            recipe, _ = self.read_recipe()
            metrics = self._read_json(self.METRICS, {})
        except UserError:  # being written by a live run, or damaged: list what can be read
            recipe, metrics = {}, {}
        # a damaged file may hold JSON of another shape: what is not an object (or a list) counts as absent
        metrics = _object(metrics)
        test, train = _object(metrics.get("test")), _object(recipe.get("train"))
        started = self._started(status, metrics)
        epochs = metrics.get("train") if isinstance(metrics.get("train"), list) else None
        export = self.newest_export()
        return {
            "run": self.name,
            "recipe": recipe.get("name"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "started_timestamp": started,
            "state": self.state(),
            "epochs": len(epochs) if epochs else max(self.checkpoint_epochs(), default=None),
            "epochs_planned": train.get("epochs"),
            "best_epoch": metrics.get("best_epoch"),
            "test_accuracy": test.get("accuracy", test.get("subset_accuracy")),  # multi-label: subset accuracy
            "test_macro_f1": test.get("macro_f1"),
            "export": str(export) if export else None,
            "path": str(self.path),
        }

    def _started(self, status: dict, metrics: dict) -> float:
        """When the run started: status.json says so; older runs: finished minus duration, else recipe.json's time."""
        started = parse_timestamp(status.get("started"))
        if started is not None:
            return started
        finished = parse_timestamp(status.get("finished"))
        if finished is not None:
            return finished - float(metrics.get("seconds") or 0)
        marker = next((self / name for name in (self.RECIPE, self.STATUS) if (self / name).exists()), self.path)
        return marker.stat().st_mtime


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def check_writable_folder(path: Path, option: str) -> None:
    """Refuses, without creating anything, a folder ``option`` names that kerasft could not create or write in: an
    existing file, or a folder (or the nearest existing parent of a new one) that is not writable."""
    path = Path(path)
    existing = next((folder for folder in (path, *path.absolute().parents) if folder.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is inside {existing}, a file"
        raise UserError(f"{option} {path} {what}, not a folder; pick another {option}")
    if not os.access(existing, os.W_OK):
        where = "" if existing == path else f" (its parent {existing} is not writable)"
        raise UserError(f"{option} {path} is not writable{where}; pick another {option}")


def check_run_name(run_name: str) -> None:
    if not run_name or "/" in run_name or run_name.startswith("."):
        raise UserError(f"run name {run_name!r} must be a plain folder name")


RUN_NAME_TAKEN = "run directory {path} already exists; choose another --run-name (earlier runs are never overwritten)"


def check_new_run_name(output_dir: Path, run_name: str) -> None:
    """A --run-name that is a plain folder name and not taken yet (RunDir.create takes it, atomically, later)."""
    check_run_name(run_name)
    if (Path(output_dir) / run_name).exists():
        raise UserError(RUN_NAME_TAKEN.format(path=Path(output_dir) / run_name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
