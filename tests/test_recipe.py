"""The recipe: loading recipe files, key=value overrides typed by field, validation."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from kerasft.errors import UserError
from kerasft.recipe import DataConfig, Recipe, apply_overrides, field_types, ignored_settings, load_recipe, parse_value


@pytest.mark.parametrize("name", ["quickstart", "emotion", "imdb", "nsmc"])
def test_shipped_recipes_load(name):
    recipe = load_recipe(REPO / "recipes" / f"{name}.py")
    assert recipe.name == name


def test_emotion_and_imdb_keep_the_classic_settings():
    emotion = load_recipe(REPO / "recipes" / "emotion.py")
    assert (emotion.data.hub, emotion.model.checkpoint) == ("dair-ai/emotion", "distilbert-base-uncased")
    assert (emotion.train.batch_size, emotion.train.learning_rate) == (64, 5e-5)
    imdb = load_recipe(REPO / "recipes" / "imdb.py")
    assert (imdb.data.hub, imdb.model.checkpoint, imdb.train.batch_size, imdb.train.epochs) == (
        "imdb",
        "bert-base-uncased",
        8,
        3,
    )
    assert (imdb.data.train_samples, imdb.data.test_samples) == (1000, 500)


def test_overrides_are_typed_by_field():
    recipe = apply_overrides(
        Recipe(data=DataConfig(hub="x")),
        [
            "train.epochs=3",
            "train.learning_rate=2e-5",
            "data.columns=text, label",
            "data.sep=;",
            "model.max_length=none",
            "data.train_samples=100",
            "name=mine",
        ],
    )
    assert recipe.train.epochs == 3 and isinstance(recipe.train.epochs, int)
    assert recipe.train.learning_rate == 2e-5
    assert recipe.data.columns == ["text", "label"]
    assert recipe.data.sep == ";"
    assert recipe.model.max_length is None
    assert recipe.data.train_samples == 100
    assert recipe.name == "mine"


def test_overrides_do_not_change_the_original_recipe():
    original = load_recipe(REPO / "recipes" / "emotion.py")
    apply_overrides(original, ["train.epochs=9"])
    assert original.train.epochs == 2


def test_unknown_key_is_refused_naming_the_valid_keys():
    with pytest.raises(UserError) as error:
        apply_overrides(load_recipe(REPO / "recipes" / "emotion.py"), ["train.epoch=3"])
    message = str(error.value)
    assert "train.epoch" in message and "train.epochs" in message and "data.text_column" in message


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.epochs=three", "expected int"),
        ("train.learning_rate=fast", "expected float"),
        ("train.epochs=none", "expected int"),
        ("train.epochs", "KEY=VALUE"),
        ("train.epochs=0", "greater than 0"),
        ("data.validation_fraction=1.5", "between 0 and 1"),
        ("train.warmup_ratio=-0.1", "train.warmup_ratio must be between 0 and 1"),
        ("train.warmup_ratio=1.5", "train.warmup_ratio must be between 0 and 1"),
        ("train.warmup_steps=-2", "train.warmup_steps must be 0 or more"),
        ("train.gradient_accumulation_steps=0", "train.gradient_accumulation_steps must be 1 .* or more, got 0"),
        ("train.weight_decay=-0.01", "train.weight_decay must be 0 or more"),
        ("train.class_weight=inverse", "train.class_weight must be one of none, balanced"),
        ("train.lr_schedule=step", "train.lr_schedule must be one of constant, linear, cosine"),
    ],
)
def test_bad_values_are_refused(override, expected):
    with pytest.raises(UserError, match=expected):
        apply_overrides(load_recipe(REPO / "recipes" / "emotion.py"), [override])


def test_every_documented_field_exists():
    keys = set(field_types())
    assert {
        "model.checkpoint",
        "data.hub",
        "data.train",
        "data.validation",
        "data.test",
        "data.sep",
        "data.columns",
        "data.text_column",
        "data.label_column",
        "data.train_samples",
        "data.test_samples",
        "train.epochs",
        "train.batch_size",
        "train.learning_rate",
        "train.seed",
    } <= keys


def test_parse_value_lists_and_optionals():
    assert parse_value("data.columns", "a,b,c") == ["a", "b", "c"]
    assert parse_value("data.hub", "null") is None


def test_recipe_round_trips_through_json():
    recipe = apply_overrides(load_recipe(REPO / "recipes" / "imdb.py"), ["data.columns=a,b"])
    assert Recipe.from_dict(json.loads(recipe.to_json())) == recipe


@pytest.mark.parametrize(
    "source, expected",
    [
        (None, "recipe file not found"),
        ("recipe = Recipe(\n", "line 1: syntax error"),
        ("x = 1\n", "defines no `recipe = Recipe(...)`"),
        ("raise RuntimeError('boom')\n", "failed to run: RuntimeError: boom"),
        (
            "from kerasft.recipe import Recipe, TrainConfig\nrecipe = Recipe(train=TrainConfig(epochs='3'))\n",
            "train.epochs = '3': expected int",
        ),
        ("from kerasft.recipe import Recipe\nrecipe = Recipe()\n", "names no data"),
    ],
    ids=["missing file", "syntax error", "no recipe object", "recipe raises", "wrong type", "no data"],
)
def test_broken_recipe_files_are_refused(tmp_path, source, expected):
    path = tmp_path / "recipe.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_recipe(path)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["train.warmup_ratio=0.1", "train.warmup_steps=10"], "both set the warmup; set one of them"),
        (["train.lazy_adam=true", "train.gradient_accumulation_steps=2"], "train.lazy_adam=true cannot accumulate"),
    ],
)
def test_contradictory_training_knobs_are_refused(overrides, expected):
    with pytest.raises(UserError, match=expected):
        apply_overrides(load_recipe(REPO / "recipes" / "emotion.py"), overrides)


def test_the_training_knobs_default_to_todays_training():
    train = load_recipe(REPO / "recipes" / "emotion.py").train
    assert (train.class_weight, train.lr_schedule, train.warmup_ratio, train.warmup_steps) == ("none", "constant", 0, 0)
    assert (train.weight_decay, train.gradient_accumulation_steps) == (0.0, 1)


@pytest.mark.parametrize(
    "overrides, warned",
    [
        ([], []),
        (["train.threshold=0.3"], ["train.threshold=0.3"]),
        (["train.threshold=tune", "data.label_sep=|"], ["train.threshold=tune", "data.label_sep=|"]),
        (["data.multi_label=true", "train.threshold=0.3", "data.label_sep=|"], []),
    ],
    ids=["defaults", "a threshold", "both", "multi-label"],
)
def test_a_single_label_recipe_is_warned_of_the_multi_label_settings_it_ignores(overrides, warned):
    warnings = ignored_settings(apply_overrides(load_recipe(REPO / "recipes" / "emotion.py"), overrides))
    assert [warning.split(" ")[0] for warning in warnings] == warned
    assert all("is for multi-label runs (data.multi_label=true)" in warning for warning in warnings)
