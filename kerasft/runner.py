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

import sys
import time
from pathlib import Path

from kerasft import evaluate, export, monitor, train
from kerasft import strategy as strategies
from kerasft.errors import UserError
from kerasft.model import weights_fingerprint
from kerasft.recipe import Recipe
from kerasft.resume import TrainingState, resume_command, terminate_like_interrupt
from kerasft.rundir import RunDir, check_free_space, disk_full_path, is_disk_full, space_needed
from kerasft.session import Session

SPACE_FIX = "free some space, pick another --output-dir or --tensorboard-dir, or lower train.keep_checkpoints"


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
            "shared filesystem) "
            "so that all workers agree on the run directory"
        )
    session.prepare()
    tensorboard_dir = Path(tensorboard_dir or "tensorboard_logs")
    if (
        not session.chief
    ):  # the chief creates the run directory; this worker writes nothing there but Keras' temporary backup files
        return _run(session, RunDir(output_dir / run_name), tensorboard_dir)
    check_free_space(space_needed(session.model_bytes(), session.recipe.train, output_dir, tensorboard_dir), SPACE_FIX)
    return _run(session, RunDir.create(output_dir, run_name, session.recipe.name), tensorboard_dir)


def resume_run(path: Path, strategy_name: str | None = None) -> RunDir | None:
    """Continues the unfinished run in ``path`` from its last backup, with the recipe stored in it."""
    run_dir = RunDir.existing(path, "--resume")
    recipe, manifest = run_dir.recipe("--resume")
    session = Session(recipe, strategy_name)
    if session.chief:
        run_dir.check_resumable()
    session.prepare()
    tensorboard_dir = Path(manifest.get("tensorboard_dir") or "tensorboard_logs")
    if session.chief:  # what a resumed run writes again replaces what is there
        rewritten = sum(run_dir.bytes_on_disk(name) for name in (RunDir.CHECKPOINTS, RunDir.BACKUP, RunDir.TRAINED))
        check_free_space(
            space_needed(session.model_bytes(), session.recipe.train, run_dir.path, tensorboard_dir, rewritten),
            SPACE_FIX,
        )
    return _run(session, run_dir, tensorboard_dir, resumed_at=manifest.get("resumed_at", []))


def export_again(path: Path, checkpoint: str | None = None) -> tuple[Path, dict]:
    """Exports a finished run's weights (the kept epoch's unless ``checkpoint`` names another) as the next version."""
    run_dir = RunDir.existing(path, "kerasft export")
    recipe, _ = run_dir.recipe("kerasft export")
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
    started, stage = time.time(), "train"
    state, command = TrainingState(run_dir, session.chief), resume_command(run_dir, strategies.requested_devices())
    plan = train.training_plan(session)
    position = None if resumed_at is None or state.trained() else state.position(plan.steps_per_epoch)
    if position:
        resumed_at = resumed_at + [
            {"epoch": position.epoch + 1, "step": position.step + 1, "optimizer_step": position.optimizer_step}
        ]
    manifest = session.manifest() | {
        "tensorboard_dir": str(tensorboard_dir.resolve()),
        "steps_per_epoch": plan.steps_per_epoch,
        "resumed_at": resumed_at or [],
    }
    tensorboard_run = tensorboard_dir / run_dir.name
    with terminate_like_interrupt():  # SIGTERM (a scheduler's stop) ends the run like Ctrl-C: saved, marked, resumable
        try:
            if session.chief:
                run_dir.start(session.recipe.to_dict(), manifest, command, session.tokenizer, session.model.config)
            print(session.describe(run_dir.name))
            state.announce(position, resumed_at is not None, plan.steps_per_epoch)
            if state.trained():  # resuming a run whose training had finished: its final weights
                state.restore_trained(session.model)
                history, steps = state.history({}), state.trained_steps()
            else:
                history = train.train(session, run_dir, tensorboard_run, state, train.training_plan(session, position))
                steps = int(session.model.optimizer.iterations.numpy())
            stage = "evaluate"
            training = {
                "steps": steps,
                "steps_per_epoch": plan.steps_per_epoch,
                "resumed_at": manifest["resumed_at"],
                "weights": weights_fingerprint(session.model),
            }
            if not session.chief:
                return _wait_for_chief(session, training)
            completed = False
            try:  # the other workers wait at the barrier below for the chief's evaluation and export, whatever its end
                metrics, probabilities = evaluate.evaluate(session, run_dir, history)
                monitor.write_final_metrics(tensorboard_run, metrics)
                stage = "export"
                test = session.tokenized["test"]
                _, metrics["export"] = export.export_session(
                    session,
                    evaluate.evaluation_model(session),
                    run_dir,
                    export.Parity(test["text"], probabilities, pairs=test["text_pair"] if session.pairs else None),
                    (metrics.get("thresholds") or {}).get("values"),
                )
                run_dir.write_json(
                    RunDir.METRICS, metrics | {"training": training, "seconds": round(time.time() - started, 1)}
                )
                state.clean_up()
                run_dir.set_state("complete")
                completed = True
            finally:
                strategies.barrier(session.strategy, ok=completed)
            return run_dir
        except BaseException as error:  # the run directory says it did not finish, and how to go on
            if session.chief:
                run_dir.mark_stopped(error, stage, command)
                if message := state.stop_message(error, stage, command, session.workers):
                    print(message, file=sys.stderr, flush=True)
            if is_disk_full(error):
                where = disk_full_path(error) or run_dir.path
                raise UserError(
                    f"no space left on the device writing {where}; free some space, then continue with: {command}"
                ) from error
            raise


def _wait_for_chief(session: Session, training: dict) -> None:
    print(
        f"kerasft: worker {strategies.task_index(session.strategy)} finished training ({training['steps']} steps, "
        "weights "
        f"{training['weights']}); the chief evaluates and exports"
    )
    if not strategies.barrier(session.strategy, ok=True):
        raise UserError("the chief failed after training (see its log); this worker has nothing to write")
