"""A run, as the flow reads: prepare the session -> run directory -> train -> evaluate -> export.

    run_dir = run_recipe(load_recipe("recipes/quickstart.py"), output_dir=Path("runs"))
    resume_run(Path("runs/quickstart-20261129-101500"))       # continues where a killed or stopped run was
    export_again(Path("runs/quickstart-20261129-101500"))      # the kept epoch, as the next SavedModel version

Everything that can fail on bad input (recipe, data, checkpoint, strategy, disk space) fails in
`Session.prepare` or before it, so a refused run leaves nothing behind and touches no earlier run.
In a multi-worker run every worker calls `run_recipe` with the same arguments; only the chief
creates and writes the run directory, evaluates and exports.
"""

from __future__ import annotations

import time
from pathlib import Path

from kerasft import evaluate, export, monitor, train
from kerasft import strategy as strategies
from kerasft.errors import UserError
from kerasft.model import weights_fingerprint
from kerasft.recipe import Recipe
from kerasft.resume import TrainingState, resume_command, terminate_like_interrupt
from kerasft.rundir import RunDir, check_free_space, space_needed
from kerasft.session import Session


def run_recipe(
    recipe: Recipe,
    output_dir: Path = Path("runs"),
    run_name: str | None = None,
    tensorboard_dir: Path | None = None,
    strategy_name: str | None = None,
) -> RunDir | None:
    """Trains, evaluates and exports ``recipe`` into a new run directory (``--strategy`` overrides
    ``train.strategy``)."""
    return run_session(Session(recipe, strategy_name), output_dir, run_name, tensorboard_dir)


def run_session(
    session: Session, output_dir: Path, run_name: str | None, tensorboard_dir: Path | None
) -> RunDir | None:
    """`run_recipe` for a session built already (kerasft.sweep prepares its first point's before writing anything)."""
    if session.workers > 1 and run_name is None:
        raise UserError(
            "a multi-worker run needs --run-name NAME (the same on every worker, with the same --output-dir on a "
            "shared filesystem) so that all workers agree on the run directory"
        )
    session.prepare()
    tensorboard_dir = Path(tensorboard_dir or "tensorboard_logs")
    if not session.chief:  # only the chief creates the run directory; the others write there only Keras' backups
        return _run(session, RunDir(output_dir / run_name), tensorboard_dir)
    check_free_space(space_needed(session.model_bytes(), session.recipe.train, output_dir, tensorboard_dir))
    return _run(session, RunDir.create(output_dir, run_name, session.recipe.name), tensorboard_dir)


def resume_run(path: Path, strategy_name: str | None = None) -> RunDir | None:
    """Continues the unfinished run in ``path`` from its last backup, with the recipe stored in it."""
    run_dir = RunDir.existing(path, "--resume")
    recipe, manifest = run_dir.recipe("--resume")
    session = Session.resumed(recipe, manifest, strategy_name)
    if session.chief:
        run_dir.check_resumable()
    session.prepare()
    tensorboard_dir = Path(manifest.get("tensorboard_dir") or "tensorboard_logs")
    if session.chief:  # what a resumed run writes again replaces what is there
        rewritten = run_dir.rewritten_on_resume()
        check_free_space(
            space_needed(session.model_bytes(), session.recipe.train, run_dir.path, tensorboard_dir, rewritten)
        )
    return _run(session, run_dir, tensorboard_dir, resumed_at=manifest.get("resumed_at", []))


def export_again(path: Path, checkpoint: str | None = None) -> tuple[Path, dict]:
    """Exports a finished run's weights (the kept epoch's unless ``checkpoint`` names another) as the next version."""
    run_dir = RunDir.existing(path, "kerasft export")
    recipe, _ = run_dir.recipe("kerasft export")
    if not (run_dir / RunDir.PREDICTIONS).is_file():  # the texts a new export's answers are checked on
        raise UserError(
            f"kerasft export: {path} is {run_dir.state()} and has no test predictions ({RunDir.PREDICTIONS}) to check "
            f"a new export against; finish the run first: kerasft run --resume {path}"
        )
    checkpoint = run_dir.checkpoint_to_export(checkpoint)
    session = Session.of_run(recipe, run_dir / RunDir.MODEL, checkpoint)
    texts, pairs = evaluate.predicted_texts(run_dir)
    probabilities = evaluate.predict_texts(
        session.model, session.tokenizer, texts, session.max_length, session.recipe.train.batch_size, pairs
    )
    parity = export.Parity(texts, probabilities, pairs=pairs)
    path, facts = export.export_session(session, session.model, run_dir, parity, run_dir.thresholds())
    return path, facts | {"checkpoint": checkpoint}


def _run(session: Session, run_dir: RunDir, tensorboard_dir: Path, resumed_at: list | None = None) -> RunDir | None:
    started, stage, resuming = time.time(), "train", resumed_at is not None
    state = TrainingState(run_dir, session.chief, strategies.task_index(session.strategy))
    command = resume_command(run_dir, strategies.requested_devices())
    steps_per_epoch = train.training_plan(session).steps_per_epoch
    position = state.position(steps_per_epoch) if resuming and not state.trained() else None
    resumed_at = (resumed_at or []) + ([position.record()] if position else [])
    tensorboard_run = tensorboard_dir / run_dir.name
    with terminate_like_interrupt():  # SIGTERM (a scheduler's stop) ends the run like Ctrl-C: saved, marked, resumable
        try:
            if session.chief:
                where = {"tensorboard_dir": str(tensorboard_dir.resolve()), "steps_per_epoch": steps_per_epoch}
                manifest = session.manifest() | where | {"resumed_at": resumed_at}
                run_dir.start(session.recipe.to_dict(), manifest, command, session.tokenizer, session.model.config)
            print(session.describe(run_dir.name))
            state.announce(position, resuming, steps_per_epoch)
            if state.trained():  # resuming a run whose training had finished: its final weights
                state.restore_trained(session.model)
                history, steps = state.history({}), state.trained_steps()
            else:
                history = train.train(session, run_dir, tensorboard_run, state, train.training_plan(session, position))
                steps = int(session.model.optimizer.iterations.numpy())
            stage = "evaluate"
            training = {"steps": steps, "steps_per_epoch": steps_per_epoch, "resumed_at": resumed_at}
            training["weights"] = weights_fingerprint(session.model)
            if not session.chief:
                return strategies.wait_for_chief(session.strategy, training)
            with strategies.others_wait(session.strategy):
                metrics, probabilities = evaluate.evaluate(session, run_dir, history)
                monitor.write_final_metrics(tensorboard_run, metrics)
                stage = "export"
                metrics["export"] = _export(session, run_dir, probabilities, metrics)
                seconds = round(time.time() - started, 1)
                run_dir.write_json(RunDir.METRICS, metrics | {"training": training, "seconds": seconds})
                state.clean_up()
                run_dir.set_state("complete")
            return run_dir
        except BaseException as error:  # the run directory says it did not finish, and how to go on
            state.stopped(error, stage, command, session.workers)
            raise


def _export(session: Session, run_dir: RunDir, probabilities, metrics: dict) -> dict:
    """The next SavedModel version, checked against the test split's probabilities from evaluation."""
    texts, pairs = session.test_texts
    parity = export.Parity(texts, probabilities, pairs=pairs)
    thresholds = (metrics.get("thresholds") or {}).get("values")
    return export.export_session(session, evaluate.evaluation_model(session), run_dir, parity, thresholds)[1]
