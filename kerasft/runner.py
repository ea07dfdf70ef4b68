"""A run: data -> model -> strategy -> train -> evaluate -> export, into its own run directory.

    run_dir = run_recipe(load_recipe("recipes/quickstart.py"), output_dir=Path("runs"))

Everything that can fail on bad input (recipe, data, checkpoint) is checked before the run
directory is created, so a refused run leaves nothing behind and touches no earlier run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from kerasft.files import create_run_dir, write_json
from kerasft.recipe import Recipe

# The run directory's layout, relative to the run directory.
RECIPE_FILE = "recipe.json"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
MODEL_FILES = "model"  # config and tokenizer, to rebuild the model for `kerasft export`
CHECKPOINTS = "checkpoints"
EXPORT = "export"


def resolved(recipe: Recipe, max_length: int) -> Recipe:
    """The recipe as run: local paths made absolute, max_length filled in."""
    from kerasft.model import is_local

    data = dataclasses.replace(
        recipe.data, **{name: str(Path(getattr(recipe.data, name)).resolve()) for name in ("train", "validation", "test") if getattr(recipe.data, name)}
    )
    checkpoint = str(Path(recipe.model.checkpoint).expanduser().resolve()) if is_local(recipe.model.checkpoint) else recipe.model.checkpoint
    model = dataclasses.replace(recipe.model, checkpoint=checkpoint, max_length=max_length, name=recipe.model.name or recipe.name)
    return dataclasses.replace(recipe, data=data, model=model)


def run_recipe(recipe: Recipe, output_dir: Path, run_name: str | None = None, tensorboard_dir: Path = Path("tensorboard_logs"), strategy_name: str = "auto") -> Path:
    import tf_keras as keras

    from kerasft import data, model as models, strategy as strategies

    started = time.time()
    keras.utils.set_random_seed(recipe.train.seed)
    strategy = strategies.choose_strategy(strategy_name)
    tokenizer = models.load_tokenizer(recipe.model.checkpoint)
    splits, label_names = data.load_splits(recipe.data, seed=recipe.train.seed)
    with strategy.scope():
        model = models.build_classifier(recipe.model.checkpoint, label_names)
        models.compile_classifier(model, recipe.train.learning_rate)
    max_length = data.resolve_max_length(tokenizer, model.config, recipe.model.max_length)
    recipe = resolved(recipe, max_length)
    tokenized = data.tokenize(splits, tokenizer, max_length)

    run_dir = create_run_dir(output_dir, run_name, recipe.name)
    write_json(run_dir / STATUS_FILE, {"state": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    try:
        _train_evaluate_export(recipe, run_dir, strategy, tokenizer, model, splits, tokenized, label_names, tensorboard_dir, started)
    except BaseException as error:  # the run directory must say it did not finish
        write_json(run_dir / STATUS_FILE, {"state": "failed" if isinstance(error, Exception) else "interrupted", "error": f"{type(error).__name__}: {error}"})
        raise
    return run_dir


def _train_evaluate_export(recipe, run_dir, strategy, tokenizer, model, splits, tokenized, label_names, tensorboard_dir, started):
    from kerasft import data, evaluate, export, strategy as strategies, train

    max_length = recipe.model.max_length
    write_json(run_dir / RECIPE_FILE, recipe.to_dict() | {"run": strategies.describe(strategy)})
    tokenizer.save_pretrained(run_dir / MODEL_FILES)
    model.config.save_pretrained(run_dir / MODEL_FILES)
    print(f"kerasft: run {run_dir.name}: {len(label_names)} labels, "
          + ", ".join(f"{len(split)} {name}" for name, split in splits.items())
          + f"; {strategies.describe(strategy)['replicas']} replica(s) with {type(strategy).__name__}")

    batch_size = recipe.train.batch_size
    history = train.fit(
        model,
        data.to_tf_dataset(tokenized["train"], tokenizer, batch_size, shuffle=True),
        data.to_tf_dataset(tokenized["validation"], tokenizer, batch_size, shuffle=False),
        recipe,
        run_dir,
        tensorboard_dir / run_dir.name,
    )

    test = tokenized["test"]
    probabilities = evaluate.predict_probabilities(model, data.to_tf_dataset(test, tokenizer, batch_size, shuffle=False))
    metrics = {"test": evaluate.write_reports(run_dir, test["label"], probabilities, label_names, test["text"])}
    metrics |= train.per_epoch(history)
    _, facts = export.export_model(
        model, tokenizer, label_names, max_length, run_dir / EXPORT, recipe.model.name,
        parity_texts=test["text"], parity_probabilities=probabilities,
    )
    metrics["export"] = facts
    metrics["seconds"] = round(time.time() - started, 1)
    write_json(run_dir / METRICS_FILE, metrics)
    write_json(run_dir / STATUS_FILE, {"state": "complete", "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
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
    checkpoint = checkpoint or tf.train.latest_checkpoint(str(run_dir / CHECKPOINTS))
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


def _print_summary(run_dir: Path, metrics: dict, tensorboard_run: Path) -> None:
    test = metrics["test"]
    print(f"\nkerasft: test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, "
          f"weighted F1 {test['weighted_f1']:.4f} on {test['examples']} examples")
    print(f"  run directory   {run_dir}")
    for name in (METRICS_FILE, "classification_report.txt", "confusion_matrix.png", "predictions.csv", CHECKPOINTS):
        print(f"  {name:<15} {run_dir / name}")
    print(f"  export          {metrics['export']['path']}")
    if "note" in metrics["export"]:
        print(f"  note: {metrics['export']['note']}")
    print(f"  tensorboard     {tensorboard_run}  (tensorboard --logdir {tensorboard_run.parent})")
