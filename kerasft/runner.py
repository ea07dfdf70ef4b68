"""A run: data -> model -> strategy -> train -> evaluate -> export, into its own run directory.

    run_dir = run_recipe(load_recipe("recipes/quickstart.py"), output_dir=Path("runs"))

Everything that can fail on bad input (recipe, data, checkpoint) is checked before the run
directory is created, so a refused run leaves nothing behind and touches no earlier run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sys
import time
from pathlib import Path

from kerasft.files import create_run_dir, disk_full_error, write_atomic, write_json
from kerasft.recipe import Recipe

# The run directory's layout, relative to the run directory.
RECIPE_FILE = "recipe.json"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
MODEL_FILES = "model"  # config and tokenizer, to rebuild the model for `kerasft export`
CHECKPOINTS = "checkpoints"
EXPORT = "export"
LEARNING_CURVES = "learning_curves.png"


def resolved(recipe: Recipe, max_length: int) -> Recipe:
    """The recipe as run: local paths made absolute, max_length filled in."""
    from kerasft.model import is_local

    data = dataclasses.replace(
        recipe.data, **{name: str(Path(getattr(recipe.data, name)).resolve()) for name in ("train", "validation", "test") if getattr(recipe.data, name)}
    )
    checkpoint = str(Path(recipe.model.checkpoint).expanduser().resolve()) if is_local(recipe.model.checkpoint) else recipe.model.checkpoint
    model = dataclasses.replace(recipe.model, checkpoint=checkpoint, max_length=max_length, name=recipe.model.name or recipe.name)
    return dataclasses.replace(recipe, data=data, model=model)


def run_recipe(recipe: Recipe | None, output_dir: Path = Path("runs"), run_name: str | None = None, tensorboard_dir: Path | None = None,
               strategy_name: str | None = None, resume_dir: Path | None = None) -> Path:
    """Runs ``recipe`` into a new run directory, or continues ``resume_dir`` with the recipe stored in it.

    ``strategy_name`` (``--strategy``) overrides ``train.strategy``. In a multi-worker run every
    worker calls this with the same arguments; only the chief creates and writes the run directory.
    """
    import tf_keras as keras

    from kerasft import data, model as models, precision, resume, strategy as strategies
    from kerasft.errors import UserError
    from kerasft.optimizer import LazyAdam

    started = time.time()
    manifest = {}
    if resume_dir is not None:
        stored, manifest = resume.load_run(resume_dir)
        recipe = Recipe.from_dict(stored)
        tensorboard_dir = Path(manifest.get("tensorboard_dir") or tensorboard_dir or "tensorboard_logs")
    tensorboard_dir = Path(tensorboard_dir or "tensorboard_logs")
    if strategy_name:
        recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, strategy=strategy_name))
    strategy = strategies.choose_strategy(recipe.train.strategy)  # first: a multi-worker strategy must precede TensorFlow's device set-up
    keras.utils.set_random_seed(recipe.train.seed)
    chief = strategies.is_chief(strategy)
    if strategies.num_workers(strategy) > 1 and resume_dir is None and run_name is None:
        raise UserError("a multi-worker run needs --run-name NAME (the same on every worker, with the same --output-dir on a shared filesystem) "
                        "so that all workers agree on the run directory")
    if resume_dir is not None and chief:
        resume.check_resumable(resume_dir)
    strategies.per_replica_batch(strategy, recipe.train.batch_size)
    settings = precision.choose(recipe.train, strategy)
    tokenizer = models.load_tokenizer(recipe.model.checkpoint)
    splits, label_names = data.load_splits(recipe.data, seed=recipe.train.seed)
    learning_rate = recipe.train.learning_rate * (strategy.num_replicas_in_sync if recipe.train.scale_learning_rate else 1)
    precision.apply(settings)
    sigterm = contextlib.ExitStack()  # held open across the try below, closed in its finally
    sigterm.enter_context(resume.terminate_like_interrupt())
    try:
        with strategy.scope():
            model = models.build_classifier(recipe.model.checkpoint, label_names)
            precision.keep_logits_float32(model)
            models.compile_classifier(model, learning_rate, jit_compile=settings["jit_compile"], optimizer=LazyAdam if recipe.train.lazy_adam else None)
        max_length = data.resolve_max_length(tokenizer, model.config, recipe.model.max_length)
        recipe = resolved(recipe, max_length)
        tokenized = data.tokenize(splits, tokenizer, max_length)

        if resume_dir is not None:
            run_dir = resume_dir
        elif chief:
            run_dir = create_run_dir(output_dir, run_name, recipe.name, needed_bytes=bytes_written(model, recipe.train.keep_checkpoints))
        else:  # the chief creates it; this worker writes nothing there but Keras' temporary backup files
            run_dir = output_dir / run_name
        command = resume.resume_command(run_dir, strategies.requested_devices())
        run = strategies.describe(strategy) | {
            "global_batch": recipe.train.batch_size,
            "per_replica_batch": strategies.per_replica_batch(strategy, recipe.train.batch_size),
            "learning_rate": learning_rate,
            "optimizer": type(getattr(model.optimizer, "inner_optimizer", model.optimizer)).__name__,  # under a LossScaleOptimizer
            "mixed_precision": settings["mixed_precision"],
            "jit_compile": settings["jit_compile"],
            "device_request": strategies.requested_devices(),
            "tensorboard_dir": str(tensorboard_dir.resolve()),
            "resumed_at": manifest.get("resumed_at", []),
        }
        progress = {"stage": "train", "saved_at": None}
        if chief:
            write_json(run_dir / STATUS_FILE, {"state": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                               "pid": os.getpid(), "host": socket.gethostname(), "resume": command})
        try:
            _train_evaluate_export(recipe, run_dir, strategy, tokenizer, model, splits, tokenized, label_names, tensorboard_dir, started,
                                   run=run, settings=settings, chief=chief, resuming=resume_dir is not None, progress=progress)
        except BaseException as error:  # the run directory must say it did not finish, and how to go on
            disk_full = disk_full_error(error, run_dir, command)
            if chief:
                state = "failed" if isinstance(error, Exception) else "interrupted"
                try:
                    write_json(run_dir / STATUS_FILE, {"state": state, "error": f"{type(error).__name__}: {error}", "stage": progress["stage"],
                                                       "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)), "resume": command})
                except OSError:  # a full disk: status.json keeps saying "running", which `kerasft runs` shows as killed
                    pass
                if not isinstance(error, UserError) and not disk_full:
                    print(f"\nkerasft: run {state} during {progress['stage']}; {_saved_state(run_dir, progress)}. Resume with"
                          + (" (on every worker)" if strategies.num_workers(strategy) > 1 else "") + f":\n  {command}", file=sys.stderr, flush=True)
            if disk_full:
                raise disk_full from error
            raise
    finally:
        precision.reset()
        sigterm.close()
    return run_dir


def _train_evaluate_export(recipe, run_dir, strategy, tokenizer, model, splits, tokenized, label_names, tensorboard_dir, started,
                           run=None, settings=None, chief=True, resuming=False, progress=None):
    from kerasft import precision, strategy as strategies

    max_length = recipe.model.max_length
    run = run or strategies.describe(strategy)
    progress = progress if progress is not None else {}
    print(f"kerasft: run {run_dir.name}: {len(label_names)} labels, "
          + ", ".join(f"{len(split)} {name}" for name, split in splits.items())
          + f"; {run['replicas']} replica(s) with {run['strategy']} on {', '.join(run['devices'])}"
          + (f", global batch {recipe.train.batch_size} = {run['replicas']} x {run['per_replica_batch']}" if "per_replica_batch" in run else "")
          + (f"; {run['mixed_precision']}, XLA {'on' if run['jit_compile'] else 'off'}" if "mixed_precision" in run else ""))
    for note in (settings or {}).get("notes", []):
        print(f"kerasft: warning: {note}")

    history, steps = _train(recipe, run_dir, strategy, tokenizer, model, tokenized, tensorboard_dir, run, settings or {}, chief, resuming, progress)
    progress["stage"] = "evaluate"
    precision.reset()  # evaluation and export run in float32, on a copy outside the strategy where needed
    if not chief:  # the chief evaluates and exports; this worker waits for it, then ends
        print(f"kerasft: worker {_task_index()} finished training ({steps} steps, weights {weights_fingerprint(model)}); the chief evaluates and exports")
        if not strategies.barrier(strategy, ok=True):
            from kerasft.errors import UserError

            raise UserError("the chief failed after training (see its log); this worker has nothing to write")
        return
    try:
        _evaluate_export(recipe, run_dir, strategy, tokenizer, model, splits, tokenized, label_names, tensorboard_dir, started, run, history, steps, progress)
    except BaseException:
        strategies.barrier(strategy, ok=False)
        raise
    strategies.barrier(strategy, ok=True)


def _train(recipe, run_dir, strategy, tokenizer, model, tokenized, tensorboard_dir, run, settings, chief, resuming, progress):
    """Trains (or, resuming a run whose training had finished, restores its final weights); returns History and step count."""

    from kerasft import pipeline, resume, strategy as strategies, train

    tpu = settings.get("device_kind") == "TPU"
    plan = pipeline.Plan(len(tokenized["train"]), recipe.train.batch_size, seed=recipe.train.seed, epochs=recipe.train.epochs, drop_remainder=tpu,
                         lengths=pipeline.token_lengths(tokenized["train"]))  # length-bucketed batches
    epochs = resume.EpochHistory(run_dir, write=chief)
    trained = resume.trained_checkpoint(run_dir) if resuming else None
    start = resume.backup_position(run_dir, plan.steps_per_epoch) if resuming and not trained else None
    if start:
        run["resumed_at"] = run.get("resumed_at", []) + [{"epoch": start[0] + 1, "step": start[1] + 1, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}]
    run["steps_per_epoch"] = plan.steps_per_epoch
    if chief:
        write_json(run_dir / RECIPE_FILE, recipe.to_dict() | {"run": run})
        tokenizer.save_pretrained(run_dir / MODEL_FILES)
        model.config.save_pretrained(run_dir / MODEL_FILES)
    if trained:
        print(f"kerasft: resuming {run_dir.name}: training had finished; restoring its final weights to evaluate and export")
        resume.restore_trained(model, trained)
        return epochs.merged(_NoHistory()), resume.trained_steps(run_dir)
    if start:
        print(f"kerasft: resuming {run_dir.name} at epoch {start[0] + 1}, step {start[1] + 1} of {plan.steps_per_epoch} "
              f"(from {run_dir / resume.BACKUP})")
    elif resuming:
        print(f"kerasft: resuming {run_dir.name}: no backup was saved yet; training from the start")
    plan = dataclasses.replace(plan, start_epoch=start[0], start_step=start[1]) if start else plan
    padding = {"pad_to_length": recipe.model.max_length} if tpu else {"pad_to_multiple_of": pipeline.pad_multiple(settings.get("device_kind"), settings.get("jit_compile"))}
    train_ds = pipeline.batches_dataset(tokenized["train"], tokenizer, plan, **padding)
    validation_plan = pipeline.Plan(len(tokenized["validation"]), recipe.train.batch_size, shuffle=False, lengths=pipeline.token_lengths(tokenized["validation"]))
    validation_ds = pipeline.batches_dataset(tokenized["validation"], tokenizer, validation_plan, **padding)
    # Ctrl-C backs up after the step in progress; not in multi-worker runs, where saving takes every worker
    saver = resume.SaveOnInterrupt() if strategies.num_workers(strategy) == 1 else None
    callbacks = [resume.backup_callback(run_dir, recipe.train.backup_every_steps, plan.steps_per_epoch), epochs.callback()]
    with saver.installed() if saver else contextlib.nullcontext():
        try:
            history = train.fit(model, train_ds, validation_ds, recipe, run_dir, tensorboard_dir / run_dir.name, steps_per_epoch=plan.steps_per_epoch,
                                extra_callbacks=callbacks + ([saver.callback()] if saver else []), chief=chief)
        finally:
            progress["saved_at"] = saver.saved_at if saver else None
    if start:
        run["resumed_at"][-1]["optimizer_step"] = epochs.first_step  # the step count restored from the backup
        if chief:
            write_json(run_dir / RECIPE_FILE, recipe.to_dict() | {"run": run})
    resume.save_trained(model, run_dir, chief)
    if saver and saver.requested:  # Ctrl-C came during the last validation: training is complete and saved
        raise KeyboardInterrupt
    return epochs.merged(history), int(model.optimizer.iterations.numpy())


def bytes_written(model, keep_checkpoints: int) -> int:
    """About what a run writes, for the free-space check: weights and Adam's two slots (3x the model) in each kept
    checkpoint and in the backup, the final weights, and the export."""
    model_bytes = sum(int(weight.shape.num_elements()) * weight.dtype.size for weight in model.weights)
    return model_bytes * (3 * keep_checkpoints + 3 + 1 + 1)


def _saved_state(run_dir: Path, progress: dict) -> str:
    from kerasft import resume

    if progress.get("saved_at"):
        epoch, step = progress["saved_at"]
        return f"the training state is saved at epoch {epoch + 1}, step {step + 1}"
    if progress.get("stage") != "train" or resume.trained_checkpoint(run_dir):
        return "training had finished and its weights are saved"
    if (run_dir / resume.BACKUP).is_dir():
        return f"its last backup is in {run_dir / resume.BACKUP}"
    return "no backup was saved yet (resuming starts training again)"


class _NoHistory:
    history: dict = {}
    epoch: list = []


def _task_index() -> int:
    return int(json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {}).get("index", 0))


def weights_fingerprint(model) -> str:
    """A short SHA-256 of every weight's bytes: equal on every worker of a multi-worker run."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


def _evaluate_export(recipe, run_dir, strategy, tokenizer, model, splits, tokenized, label_names, tensorboard_dir, started, run, history, steps, progress):
    from kerasft import evaluate, export, model as models, monitor, plots, resume, train

    max_length = recipe.model.max_length
    batch_size = recipe.train.batch_size
    if run["replicas"] > 1 or run.get("workers", 1) > 1 or run.get("mixed_precision", "float32") != "float32" or "TPU" in run["strategy"]:
        model = export.copy_without_optimizer(model)  # one float32 copy on this host scores every test example once, in order
        models.trace_without_autograph(model)
    kept = monitor.kept_epoch(history.history, recipe.train)  # with early stopping, the model now holds the best epoch's weights
    if kept["early_stopping"]:
        stop = kept["early_stopping"]
        print(f"kerasft: early stopping on {stop['metric']}: best epoch {kept['best_epoch']} of {stop['epochs_run']} run "
              f"({stop['metric']} {stop['best_value']:.4f}); the test figures and the export use its weights")

    test = tokenized["test"]
    probabilities = evaluate.predict_split(model, test, tokenizer, batch_size)  # batched by length, returned in input order
    metrics = {"test": evaluate.write_reports(run_dir, test["label"], probabilities, label_names, test["text"])}
    metrics |= train.per_epoch(history) | kept
    metrics["training"] = {"steps": steps, "steps_per_epoch": run.get("steps_per_epoch"), "resumed_at": run.get("resumed_at", []),
                           "weights": weights_fingerprint(model)}
    kept_label = f"kept: epoch {kept['best_epoch']}" + (f" (best {kept['early_stopping']['metric']})" if kept["early_stopping"] else " (the last)")
    write_atomic(run_dir / LEARNING_CURVES, plots.learning_curves_png(
        metrics["train"], metrics["validation"], kept["best_epoch"], f"Learning curves of {run_dir.name}: train vs validation", kept_label))
    monitor.write_final_metrics(tensorboard_dir / run_dir.name, metrics)
    progress["stage"] = "export"
    _, facts = export.export_model(
        model, tokenizer, label_names, max_length, run_dir / EXPORT, recipe.model.name,
        parity_texts=test["text"], parity_probabilities=probabilities,
    )
    metrics["export"] = facts
    metrics["seconds"] = round(time.time() - started, 1)
    progress["stage"] = "finish"
    write_json(run_dir / METRICS_FILE, metrics)
    resume.clean_up(run_dir)
    write_json(run_dir / STATUS_FILE, {"state": "complete", "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                       "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))})
    _print_summary(run_dir, metrics, tensorboard_dir / run_dir.name)


def reexport(run_dir: Path, checkpoint: str | None = None) -> tuple[Path, dict]:
    """Exports a run again from its saved weights (the newest checkpoint unless one is named)."""
    import csv

    import tensorflow as tf
    from transformers import AutoConfig, AutoTokenizer, TFAutoModelForSequenceClassification

    from kerasft import evaluate, export
    from kerasft.errors import UserError

    recipe_file = run_dir / RECIPE_FILE
    if not recipe_file.is_file():
        raise UserError(f"{run_dir} is not a kerasft run directory (no {RECIPE_FILE})")
    recipe = Recipe.from_dict({key: value for key, value in json.loads(recipe_file.read_text()).items() if key != "run"})
    checkpoint = checkpoint or _kept_checkpoint(run_dir) or tf.train.latest_checkpoint(str(run_dir / CHECKPOINTS))
    if not checkpoint or not Path(f"{checkpoint}.index").is_file():
        raise UserError(f"no checkpoint {checkpoint or 'in ' + str(run_dir / CHECKPOINTS)}; pass --checkpoint <run>/checkpoints/epoch-N")
    config = AutoConfig.from_pretrained(run_dir / MODEL_FILES)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / MODEL_FILES)
    model = TFAutoModelForSequenceClassification.from_config(config)
    model(model.dummy_inputs, training=False)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
    label_names = [config.id2label[index] for index in range(config.num_labels)]
    with open(run_dir / "predictions.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    probabilities = evaluate.predict_texts(model, tokenizer, texts, recipe.model.max_length, recipe.train.batch_size)
    path, facts = export.export_model(
        model, tokenizer, label_names, recipe.model.max_length, run_dir / EXPORT, recipe.model.name,
        parity_texts=texts, parity_probabilities=probabilities,
    )
    return path, facts | {"checkpoint": checkpoint}


def _kept_checkpoint(run_dir: Path) -> str | None:
    """The checkpoint of the epoch a finished run evaluated and exported (the best one, with early stopping)."""
    metrics_file = run_dir / METRICS_FILE
    best_epoch = json.loads(metrics_file.read_text()).get("best_epoch") if metrics_file.is_file() else None
    if best_epoch is None:
        return None
    from kerasft.errors import UserError

    checkpoint = run_dir / CHECKPOINTS / f"epoch-{best_epoch}"
    if not Path(f"{checkpoint}.index").is_file():
        raise UserError(f"the run kept epoch {best_epoch}, whose checkpoint is no longer in {run_dir / CHECKPOINTS} "
                        "(train.keep_checkpoints pruned it); pass --checkpoint <run>/checkpoints/epoch-N to export another epoch")
    return str(checkpoint)


def _print_summary(run_dir: Path, metrics: dict, tensorboard_run: Path) -> None:
    test = metrics["test"]
    print(f"\nkerasft: test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, "
          f"weighted F1 {test['weighted_f1']:.4f} on {test['examples']} examples")
    names = (METRICS_FILE, "classification_report.txt", "confusion_matrix.png", LEARNING_CURVES, "predictions.csv", CHECKPOINTS)
    width = max(map(len, names)) + 1
    how = f"best {metrics['early_stopping']['metric']}" if metrics.get("early_stopping") else "the last"
    rows = [("run directory", run_dir)] + [(name, run_dir / name) for name in names] + [
        ("kept epoch", f"{metrics['best_epoch']} ({how}): the weights evaluated and exported"),
        ("export", metrics["export"]["path"]),
        ("tensorboard", f"{tensorboard_run}  (tensorboard --logdir {tensorboard_run.parent})"),
    ]
    for label, value in rows:
        print(f"  {label:<{width}} {value}")
    if "note" in metrics["export"]:
        print(f"  note: {metrics['export']['note']}")
