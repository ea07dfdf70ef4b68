"""The `kerasft` command: run a recipe, re-export a run, predict with an export, inspect data, list runs."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import click

from kerasft.cluster import LAUNCHERS
from kerasft.cluster import applied as applied_cluster
from kerasft.cluster import request as request_cluster
from kerasft.errors import UserError


def start_tensorflow(serving: bool = False) -> None:
    """Imports TensorFlow and sets up its devices, with its start-up lines hidden (shown with --debug).

    Commands call it after the checks that need no TensorFlow (the recipe, its overrides, a sweep's
    grid), so that a mistyped path or value is refused at once instead of after TensorFlow's seconds
    of start-up; and before anything else imports TensorFlow, which would print those lines.
    ``serving``: the command answers with an export (predict, evaluate), with kerasft.serve's thread settings.
    """
    context = click.get_current_context(silent=True)
    show_lines = context is not None and context.meta.get(DEBUG, False)
    with contextlib.nullcontext() if show_lines else stderr_hidden():
        import tensorflow as tf

        from kerasft.strategy import apply_requested_devices, multi_worker_pending

        # `--devices cpu:N` and the threads must be set before TensorFlow sets up its devices, just below
        apply_requested_devices()
        if serving:
            from kerasft.serve import use_serving_threads

            use_serving_threads()
        if not multi_worker_pending():  # MultiWorkerMirroredStrategy must come first; its start-up lines then show
            tf.config.list_logical_devices()


DEBUG = "kerasft.debug"  # click's context.meta key: the command runs with --debug


def check_folders(output_dir: Path, tensorboard_dir: Path | None = None, run_name: str | None = None) -> None:
    """The folders a command will write in, checked (not created) before TensorFlow starts, so that a mistyped one is
    refused at once rather than after the data and the model have loaded. ``tensorboard_dir``: None for commands
    that write no TensorBoard logs; pass the default for those that do. A taken ``run_name`` is refused here only
    for a single process: the workers of a multi-worker run share theirs, and the chief creates it."""
    from kerasft.rundir import check_new_run_name, check_run_name, check_writable_folder
    from kerasft.strategy import multi_worker_pending

    check_writable_folder(output_dir, "--output-dir")
    if tensorboard_dir is not None:
        check_writable_folder(tensorboard_dir, "--tensorboard-dir")
    if run_name is not None and multi_worker_pending():
        check_run_name(run_name)
    elif run_name is not None:
        check_new_run_name(output_dir, run_name)


@contextlib.contextmanager
def stderr_hidden():
    """stderr silenced, down to the file descriptor: TensorFlow's start-up lines (oneDNN, CUDA probing) are
    logged before absl reads TF_CPP_MIN_LOG_LEVEL, so no setting hides them. Shown if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def user_errors(command):
    """Bad input: one line on stderr and exit code 2; with --debug, the traceback too.

    The command starts TensorFlow itself (`start_tensorflow`), after the checks that need none."""

    @click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
    @functools.wraps(command)
    def wrapper(*args, debug: bool, **kwargs):
        click.get_current_context().meta[DEBUG] = debug
        try:
            from kerasft.cluster import apply_requested

            apply_requested()  # `run --cluster`: TF_CONFIG must be set before TensorFlow starts
            return command(*args, **kwargs)
        except UserError as error:
            if debug:
                raise
            click.echo(f"kerasft: error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("kerasft: interrupted", err=True)
            sys.exit(130)
        except Exception as error:
            from kerasft.export import ExportError

            if debug or not isinstance(error, ExportError):
                raise
            click.echo(f"kerasft: export failed: {error}", err=True)
            sys.exit(1)

    return wrapper


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, or one line saying why they cannot be read."""
    if not path.is_file():
        raise UserError(f"text file not found: {path}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise UserError(
            f"text file {path} line {line}: not valid UTF-8 ({error.reason}); re-save it as UTF-8"
        ) from None
    except OSError as error:
        raise UserError(f"cannot read text file {path}: {error.strerror}") from None


class OneLineErrors(click.Group):
    """click's own usage errors (a bad option value, a missing argument, an unknown option) as kerasft's: one line,
    exit code 2. click would print the usage line and a hint above the error, three lines where one is the contract."""

    def main(self, *args, **kwargs):
        try:
            result = super().main(*args, **kwargs | {"standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as error:  # `kerasft` alone: the help, as click shows it
            error.show()
            sys.exit(error.exit_code)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else "kerasft"
            click.echo(f"kerasft: error: {error.format_message()} (see {command} --help)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"kerasft: error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:  # Ctrl-C, as click reports it
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)  # an int: the code of click's Exit (--help, --version)


@click.group(cls=OneLineErrors)
@click.version_option(package_name="kerasft")
def main():
    """Fine-tune Hugging Face transformer text classifiers with TensorFlow/Keras."""


def _request_devices(ctx, param, value):
    """Records --devices while the command line is parsed, before TensorFlow starts (see kerasft.strategy)."""
    from kerasft.strategy import request_devices

    try:
        request_devices(value)
    except UserError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1]) from None
    return value


# run and sweep take it alike
devices_option = click.option(
    "--devices",
    callback=_request_devices,
    expose_value=False,
    metavar="cpu:N",
    help="Split the CPU into N logical devices, e.g. to try MirroredStrategy without GPUs.",
)


@main.command()
@click.argument("recipe_path", metavar="RECIPE", required=False, type=click.Path(path_type=Path))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--run-name", help="Folder name of this run (default: <recipe>-<timestamp>).")
@click.option(
    "--output-dir", default="runs", show_default=True, type=click.Path(path_type=Path), help="Where run folders go."
)
@click.option(
    "--tensorboard-dir",
    type=click.Path(path_type=Path),
    help="TensorBoard event files go in <dir>/<run-name>/ (default: tensorboard_logs).",
)
@click.option(
    "--strategy",
    help="tf.distribute strategy, overriding train.strategy: auto, default, one-device, mirrored, multi-worker, tpu.",
)
@devices_option
@click.option(
    "--cluster",
    type=click.Choice(LAUNCHERS),
    default="auto",
    show_default=True,
    callback=lambda ctx, param, value: request_cluster(value),
    expose_value=False,
    help="Where the workers of a multi-worker run are described: auto detects a Slurm step, a Kubernetes Indexed "
    "Job, a Vertex AI job or TF_CONFIG; a single process stays single.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Continue the unfinished run RUN_DIR from its last backup, with the recipe stored in it.",
)
@user_errors
def run(recipe_path, overrides, run_name, output_dir, tensorboard_dir, strategy, resume_dir):
    """Train, evaluate and export RECIPE, with KEY=VALUE overrides (e.g. train.epochs=3).

    With --resume RUN_DIR, continue an interrupted or failed run instead: RUN_DIR's recipe.json
    is the recipe, so no RECIPE or overrides are taken.
    """
    if resume_dir is not None:
        extras = [str(item) for item in ([recipe_path] if recipe_path else []) + list(overrides)]
        if extras:
            raise UserError(
                f"--resume continues {resume_dir} with the recipe stored in its recipe.json; "
                f"drop the recipe and overrides ({' '.join(extras)}), or start a new run with them"
            )
        if run_name or tensorboard_dir:
            raise UserError(
                f"--resume continues {resume_dir} in place, with its own TensorBoard folder; drop --run-name and "
                "--tensorboard-dir"
            )
        start_tensorflow()
        from kerasft.runner import resume_run

        run_dir = resume_run(resume_dir, strategy_name=strategy)
    else:
        if recipe_path is None:
            raise UserError(
                "give a RECIPE to run (a .py file defining `recipe = Recipe(...)`), or --resume RUN_DIR to continue a "
                "run"
            )
        from kerasft.recipe import apply_overrides, load_recipe

        recipe = apply_overrides(load_recipe(recipe_path), list(overrides))
        check_folders(output_dir, tensorboard_dir or Path("tensorboard_logs"), run_name)
        start_tensorflow()
        cluster = applied_cluster()
        run_name = run_name or (cluster.run_name(recipe.name) if cluster else None)  # the same on every worker
        from kerasft.runner import run_recipe

        run_dir = run_recipe(
            recipe, output_dir=output_dir, run_name=run_name, tensorboard_dir=tensorboard_dir, strategy_name=strategy
        )
    if run_dir is not None:  # the chief's; other workers of a multi-worker run end without a summary
        click.echo(run_summary(run_dir))


def run_summary(run_dir) -> str:
    """The end of `kerasft run`: the test figures, then where everything is."""
    from kerasft.rundir import RunDir

    metrics, (_, manifest) = json.loads((run_dir / RunDir.METRICS).read_text()), run_dir.read_recipe()
    test = metrics["test"]
    tensorboard_run = Path(manifest["tensorboard_dir"]) / run_dir.name
    how = f"best {metrics['early_stopping']['metric']}" if metrics.get("early_stopping") else "the last"
    rows = (
        [("run directory", run_dir.path)]
        + [(name, run_dir / name) for name in RunDir.RESULTS if (run_dir / name).exists()]
        + [
            ("kept epoch", f"{metrics['best_epoch']} ({how}): the weights evaluated and exported"),
            ("export", metrics["export"]["path"]),
            ("tensorboard", f"{tensorboard_run}  (tensorboard --logdir {tensorboard_run.parent})"),
        ]
    )
    width = max(len(label) for label, _ in rows) + 1
    lines = [f"\nkerasft: {test_figures(test)}"]
    lines += [f"  {label:<{width}} {value}" for label, value in rows]
    if "note" in metrics["export"]:
        lines.append(f"  note: {metrics['export']['note']}")
    return "\n".join(lines)


def test_figures(test: dict) -> str:
    """The test figures in one line: accuracy and F1; for multi-label runs micro/macro/samples F1 and subset
    accuracy."""
    if "micro_f1" in test:
        return (
            f"test micro F1 {test['micro_f1']:.4f}, macro F1 {test['macro_f1']:.4f}, samples F1 "
            f"{test['samples_f1']:.4f}, subset accuracy {test['subset_accuracy']:.4f} on {test['examples']} examples"
        )
    return (
        f"test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, "
        f"weighted F1 {test['weighted_f1']:.4f} on {test['examples']} examples"
    )


@main.command()
@click.argument("recipe_path", metavar="RECIPE", required=False, type=click.Path(path_type=Path))
@click.argument("overrides", nargs=-1, metavar="KEY=v1,v2 [KEY=VALUE]...")
@click.option(
    "--output-dir", default="runs", show_default=True, type=click.Path(path_type=Path), help="Where run folders go."
)
@click.option("--sweep-name", help="Folder name of the sweep (default: <recipe>-sweep-<timestamp>).")
@click.option(
    "--tensorboard-dir",
    type=click.Path(path_type=Path),
    help="The points' TensorBoard folders go in <dir>/<sweep-name>/ (default: tensorboard_logs).",
)
@click.option("--strategy", help="tf.distribute strategy for every point, overriding train.strategy.")
@devices_option
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path),
    metavar="SWEEP_DIR",
    help="Run the points of the sweep in SWEEP_DIR that are not complete.",
)
@user_errors
def sweep(recipe_path, overrides, output_dir, sweep_name, tensorboard_dir, strategy, resume_dir):
    """Run RECIPE once per point of a grid: KEY=v1,v2 tries each value, KEY=VALUE sets one on every point.

    Each point is an ordinary run (<output-dir>/<sweep-name>-<point>); sweep.json and sweep.md in
    <output-dir>/<sweep-name>/ compare them, the best (highest validation macro F1) marked.
    """
    from kerasft import sweep as sweeps

    if resume_dir is not None:
        extras = [str(item) for item in ([recipe_path] if recipe_path else []) + list(overrides)]
        if extras or sweep_name or tensorboard_dir:
            raise UserError(
                f"--resume continues the sweep in {resume_dir} with its own grid and folders; drop "
                f"{' '.join(extras) or '--sweep-name and --tensorboard-dir'}"
            )
        planned = sweeps.Sweep.existing(resume_dir)  # not a sweep folder, or a damaged one: refused at once
        start_tensorflow()
        result = sweeps.resume_sweep(planned, strategy)
    else:
        if recipe_path is None:
            raise UserError("give a RECIPE and KEY=v1,v2 values to sweep, or --resume SWEEP_DIR to continue a sweep")
        command = sweeps.command_line(sys.argv[2:] if sys.argv[1:2] == ["sweep"] else [str(recipe_path), *overrides])
        options = sweeps.SweepOptions(output_dir, sweep_name, tensorboard_dir, strategy, command)
        grid = sweeps.SweepGrid.read(recipe_path, list(overrides))
        check_folders(output_dir, tensorboard_dir or Path("tensorboard_logs"))
        start_tensorflow()
        result = sweeps.run_sweep(grid, options)
    click.echo(sweeps.summary(result))
    if any(point["state"] != "complete" for point in result.results()):
        sys.exit(1)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    help="A checkpoint prefix, e.g. RUN_DIR/checkpoints/epoch-2 "
    "(default: the epoch the run kept and exported, else the newest).",
)
@user_errors
def export(run_dir, checkpoint):
    """Export RUN_DIR's saved weights again, as the next version of its SavedModel."""
    start_tensorflow()
    from kerasft.runner import export_again

    path, facts = export_again(run_dir, checkpoint)
    click.echo(f"kerasft: exported {facts['checkpoint']} to {path}")


@main.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.argument("texts", nargs=-1)
@click.option(
    "--pair",
    "pairs",
    multiple=True,
    help="Pair models: the second text of a pair, one --pair for each TEXT, in order.",
)
@click.option(
    "--file",
    "text_file",
    type=click.Path(path_type=Path),
    help="Read texts from FILE, one per line (pair models: text<TAB>text_pair, read literally).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list like a Hugging Face pipeline's output.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@user_errors
def predict(export_dir, texts, pairs, text_file, as_json, batch_size):
    """Classify TEXTS (or --file) with the SavedModel in EXPORT_DIR.

    Prints label<TAB>score per text; for multi-label models every label above its threshold with its
    score (label<TAB>score<TAB>label<TAB>score...; an empty line for none).
    """
    lines = read_lines(text_file) if text_file is not None else None
    if not texts and not lines:
        raise UserError("no texts: pass them as arguments or with --file FILE")
    start_tensorflow(serving=True)
    from kerasft.serve import load_text_signature, read_pair_lines, takes_pairs
    from kerasft.serve import predict as predict_texts

    texts, pairs = list(texts), list(pairs) if pairs else None
    signature = load_text_signature(export_dir)
    if lines:
        if takes_pairs(signature):
            more_texts, more_pairs = read_pair_lines(lines, text_file)
            texts, pairs = texts + more_texts, (pairs or []) + more_pairs
        else:
            texts += lines
    results = predict_texts(export_dir, texts, batch_size=batch_size, pairs=pairs)
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False))
        return
    for result in results:
        chosen = result["labels"] if "labels" in result else [result]
        click.echo("\t".join(f"{item['label']}\t{item['score']:.4f}" for item in chosen))


@main.command()
@click.argument("export_dir", metavar="EXPORT", type=click.Path(path_type=Path))
@click.option("--data", "data_file", required=True, help="A labelled file: .csv, .tsv, .json, .jsonl, .parquet, .txt.")
@click.option("--sep", help="Field separator (.txt files need it; overrides that of .csv/.tsv).")
@click.option("--columns", help="Column names for a file without a header line, e.g. text,label.")
@click.option("--quoting", type=click.Choice(["csv", "none"]), default="csv", show_default=True)
@click.option("--text-column", default="text", show_default=True)
@click.option("--text-pair-column", help="Pair models: the second text's column (default: text_pair).")
@click.option("--label-column", default="label", show_default=True)
@click.option("--label-sep", default=",", show_default=True, help="Multi-label models: separates a cell's labels.")
@click.option(
    "--output-dir",
    default="runs",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The results go in a new folder <dir>/evaluate-<model>-<timestamp>/.",
)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@user_errors
def evaluate(export_dir, data_file, sep, columns, quoting, text_column, text_pair_column, label_column, label_sep,
             output_dir, batch_size):  # fmt: skip
    """Score the SavedModel EXPORT on new labelled data, through its own signature: the report, picture,
    predictions.csv and metrics.json a run writes."""
    from kerasft.recipe import DataConfig, check_separator

    check_folders(output_dir)
    check_separator(sep, "--sep")
    start_tensorflow(serving=True)
    from kerasft.evaluate import evaluate_export

    options = DataConfig(
        train=data_file,
        sep=sep,
        columns=[name.strip() for name in columns.split(",")] if columns else None,
        quoting=quoting,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        label_sep=label_sep,
    )
    try:
        folder, figures = evaluate_export(export_dir, data_file, options, output_dir, batch_size)
    except UserError as error:
        raise UserError(with_option_names(str(error))) from error
    click.echo(f"kerasft: {test_figures(figures)}")
    click.echo(f"  results in {folder.path}")


# kerasft.data's messages name the recipe's keys; `kerasft evaluate` takes the same settings as these options
DATA_KEYS = re.compile(r"\bdata\.(text_pair_column|text_column|label_column|label_sep|columns|quoting|sep)\b")


def with_option_names(message: str) -> str:
    """A data message as `kerasft evaluate`'s user reads it: its options where the message names recipe keys.

    >>> with_option_names("no label column 'y'; set data.label_column=<name>, or data.columns=... for files without")
    "no label column 'y'; set --label-column=<name>, or --columns=... for files without"
    """
    message = message.replace("the recipe's data.train/validation/test", "--data")
    return DATA_KEYS.sub(lambda key: "--" + key.group(1).replace("_", "-"), message)


@main.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(path_type=Path))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--output-dir",
    default="runs",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The overview goes in a new folder <dir>/inspect-<recipe>-<timestamp>/.",
)
@user_errors
def inspect(recipe_path, overrides, output_dir):
    """Look at RECIPE's data before training: labels, lengths, truncation, duplicates, leaks between splits."""
    from kerasft.recipe import apply_overrides, load_recipe

    recipe = apply_overrides(load_recipe(recipe_path), list(overrides))
    check_folders(output_dir)
    start_tensorflow()
    from kerasft.overview import format_summary, write_overview
    from kerasft.session import Session

    folder, overview = write_overview(Session(recipe), output_dir)
    click.echo(format_summary(overview, folder))


@main.command()
@click.option(
    "--output-dir",
    default="runs",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the run folders are.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@user_errors
def runs(output_dir, as_json):
    """List the runs in --output-dir, newest first: recipe, state, epochs, test figures, export."""
    from kerasft.runlist import format_table, list_runs

    rows = list_runs(output_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"kerasft: no runs in {output_dir}")
    else:
        click.echo(format_table(rows))
