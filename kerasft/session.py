"""The session: everything a run holds in memory, built from the recipe in one place and in the order TensorFlow needs.

    session = Session(recipe)          # builds nothing yet; each part is built when first used, then kept
    session.data.label_names           # the splits, loaded with kerasft.data
    session.model                      # the compiled classifier, built in session.strategy's scope
    session.prepare()                  # every part a run needs, so that bad input fails before anything is written

Nothing here touches the disk but to read the recipe's data and checkpoint. `kerasft run` prepares
a whole session before it creates the run directory; `kerasft inspect` uses the tokenizer and data;
`kerasft export` a session of a finished run (`Session.of_run`): its tokenizer and config come from
the run's ``model/`` folder and its weights from one of its checkpoints; the benchmarks build their
models and pipelines through a session, as runs do.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

from kerasft import batching, tokenizing
from kerasft import class_weights as weighting
from kerasft import cluster as clusters
from kerasft import data as datasets
from kerasft import model as models
from kerasft import precision as precisions
from kerasft import strategy as strategies
from kerasft.optimization import Optimization
from kerasft.recipe import Recipe, ignored_settings

# A run's parts, in the order they must be built: the strategy before anything sets up TensorFlow's devices, the
# cheap checks of bad input (batch split, tokenizer, data) before the model, the in-graph tokenizer last.
RUN_PARTS = ("strategy", "per_replica_batch", "tokenizer", "data", "model", "tokenized", "graph_tokenizer")


class Session:
    """A recipe's strategy, precision, tokenizer, data and compiled model, each built once, on first use.

    ``strategy_name`` (``--strategy``) overrides ``train.strategy``. ``model_files`` and ``weights``
    make the session of a finished run: tokenizer and config from ``model_files``, weights
    restored from the checkpoint prefix ``weights``, no data, no optimizer.
    """

    def __init__(
        self,
        recipe: Recipe,
        strategy_name: str | None = None,
        model_files: Path | None = None,
        weights: str | None = None,
    ):
        if strategy_name:
            recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, strategy=strategy_name))
        self.requested = recipe
        self.model_files = model_files
        self.weights = weights
        # a resumed run's precision policy and measured bfloat16 speedup, which train.mixed_precision=auto keeps
        self.started_in: tuple[str, float | None] | None = None

    @classmethod
    def resumed(cls, recipe: Recipe, manifest: dict, strategy_name: str | None = None) -> Session:
        """The session of a run continued with ``--resume``: its stored recipe, in the precision it started in."""
        session = cls(recipe, strategy_name)
        if manifest.get("mixed_precision"):
            session.started_in = (manifest["mixed_precision"], manifest.get("bfloat16_matmul_speedup"))
        return session

    @classmethod
    def of_run(cls, recipe: Recipe, model_files: Path, weights: str) -> Session:
        return cls(recipe, model_files=model_files, weights=weights)

    # --- distribution and precision -------------------------------------------------------------------------------

    @cached_property
    def strategy(self):
        """Chosen first: a multi-worker strategy must exist before anything sets up TensorFlow's devices."""
        return strategies.choose_strategy(self.requested.train.strategy)

    @cached_property
    def chief(self) -> bool:
        """The one answer to "does this process write the run directory, evaluate and export?"."""
        return strategies.is_chief(self.strategy)

    @cached_property
    def workers(self) -> int:
        return strategies.num_workers(self.strategy)

    @cached_property
    def per_replica_batch(self) -> int:
        return strategies.per_replica_batch(self.strategy, self.requested.train.batch_size)

    @cached_property
    def precision(self) -> precisions.Precision:
        kind = strategies.device_kind(self.strategy)
        return precisions.choose(self.requested.train, kind, measure=self.workers == 1, started_in=self.started_in)

    @cached_property
    def learning_rate(self) -> float:
        scale = self.strategy.num_replicas_in_sync if self.requested.train.scale_learning_rate else 1
        return self.requested.train.learning_rate * scale

    # --- tokenizer, config, data ----------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """Where the tokenizer and config come from: the recipe's checkpoint, or a run's model/ folder."""
        return str(self.model_files) if self.model_files else self.requested.model.checkpoint

    @cached_property
    def tokenizer(self):
        return models.load_tokenizer(self.source)

    @cached_property
    def config(self):
        return models.load_config(self.source)

    @cached_property
    def max_length(self) -> int:
        return tokenizing.resolve_max_length(self.tokenizer, self.config, self.requested.model.max_length)

    @cached_property
    def recipe(self) -> Recipe:
        """The recipe as run: local paths made absolute, ``max_length`` and the model name filled in."""
        recipe = self.requested
        files = {
            name: str(Path(path).resolve())
            for name in ("train", "validation", "test")
            if (path := getattr(recipe.data, name))
        }
        label_names = recipe.data.label_names
        if label_names and len(label_names) == 1 and Path(label_names[0]).expanduser().is_file():  # a file of names
            files["label_names"] = [str(Path(label_names[0]).expanduser().resolve())]
        checkpoint = recipe.model.checkpoint
        if models.is_local(checkpoint):
            checkpoint = str(Path(checkpoint).expanduser().resolve())
        model = dataclasses.replace(
            recipe.model, checkpoint=checkpoint, max_length=self.max_length, name=recipe.model.name or recipe.name
        )
        return dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, **files), model=model)

    @cached_property
    def graph_tokenizer(self):
        """The tokenizer as TensorFlow ops for the export's raw-text signature and the one-line reason if there is none
        (kerasft.graph_tokenizers). A checkpoint missing a file the graph needs is refused: it is incomplete."""
        from kerasft.errors import UserError
        from kerasft.export import in_graph
        from kerasft.graph_tokenizers import MissingTokenizerFile

        try:
            return in_graph(self.tokenizer, self.max_length)
        except MissingTokenizerFile as error:
            raise UserError(f"checkpoint {self.source}: {error}; add it, or pick a complete checkpoint") from None

    @cached_property
    def data(self) -> datasets.Data:
        return datasets.load_splits(self.requested.data, seed=self.requested.train.seed)

    @cached_property
    def tokenized(self):
        """Every split as the tokenizer's inputs and the labels, truncated at ``max_length``, not padded; the texts
        stay in ``data.splits`` (`test_texts`)."""
        return tokenizing.tokenize(self.data.splits, self.tokenizer, self.max_length, log=True)

    @property
    def test_texts(self) -> tuple[list[str], list[str] | None]:
        """The test split's texts, and its second texts for pairs (None otherwise), in the tokenized split's order."""
        test = self.data.splits["test"]
        return test[datasets.TEXT], test[datasets.TEXT_PAIR] if self.pairs else None

    @property
    def label_names(self) -> list[str]:
        return models.label_names_of(self.config) if self.weights else self.data.label_names

    @property
    def multi_label(self) -> bool:
        """Several labels per example (``data.multi_label``; a finished run's config says so itself)."""
        return models.is_multi_label(self.config) if self.weights else self.requested.data.multi_label

    @property
    def pairs(self) -> bool:
        """Sentence pairs (``data.text_pair_column``)."""
        return self.requested.data.text_pair_column is not None

    # --- the training knobs: kerasft.optimization, kerasft.class_weights ---------------------------------------------

    @property
    def drop_remainder(self) -> bool:
        return self.precision.device_kind == "TPU"  # TPUs need every batch full

    @cached_property
    def optimization(self) -> Optimization:
        """The optimizer's schedule, weight decay and accumulation, resolved for the run's number of batches."""
        train = self.requested.train
        plan = batching.Plan(len(self.data.splits["train"]), train.batch_size, drop_remainder=self.drop_remainder)
        return Optimization.of(train, plan.steps_per_epoch)

    @cached_property
    def label_weights(self) -> dict[int, float] | None:
        """``train.class_weight``'s weight per label id, from the train split's labels (None for none): each class's
        weight, or for multi-label data each label's positive weight. A resumed run computes them again from the
        same split, so its loss weighs as the interrupted run's did."""
        train_labels = self.data.splits["train"]["label"]
        return weighting.weights_for(
            self.requested.train.class_weight, train_labels, len(self.label_names), multi_label=self.multi_label
        )

    @property
    def class_weights(self) -> dict[int, float] | None:
        """Keras' ``class_weight`` for `fit`: the single-label weights (multi-label ones are in the loss)."""
        return None if self.multi_label else self.label_weights

    @property
    def positive_weights(self) -> list[float] | None:
        """Each label's positive weight for the multi-label loss (kerasft.losses), in label id order."""
        weights = self.label_weights if self.multi_label else None
        return None if weights is None else [weights[index] for index in range(len(self.label_names))]

    # --- the model ------------------------------------------------------------------------------------------------

    @cached_property
    def model(self):
        """The classifier: from the checkpoint, compiled in the strategy's scope and precision; or a run's, restored."""
        import tf_keras as keras

        if self.weights:  # a finished run's weights, for export: float32, no strategy, no optimizer
            model = models.classifier_from_config(self.config)
            models.restore_weights(model, self.weights)
            return model
        # Dropout draws from tf.random.Generator variables, which kerasft.resume saves with each backup, so that a
        # resumed run draws what the uninterrupted one would (Keras' default op-level seeds cannot be saved).
        keras.backend.experimental.enable_tf_random_generator()
        keras.utils.set_random_seed(self.requested.train.seed)
        with self.precision.applied(), self.strategy.scope():
            model = models.build_classifier(
                self.requested.model.checkpoint, self.label_names, self.multi_label, self.requested.model.head_init
            )
            precisions.keep_logits_float32(model)
            models.compile_classifier(
                model,
                self.learning_rate,
                jit_compile=self.precision.jit_compile,
                optimizer=self.optimization.build,
                threshold=self.epoch_threshold,
                positive_weights=self.positive_weights,
            )
        return model

    @property
    def epoch_threshold(self) -> float:
        """The threshold of the per-epoch multi-label figures: ``train.threshold``, or 0.5 while it is to be tuned."""
        threshold = self.requested.train.threshold
        return 0.5 if isinstance(threshold, str) else float(threshold)

    def prepare(self) -> Session:
        """Builds every part a run needs, in TensorFlow's order, so that bad input fails before any folder exists."""
        for part in RUN_PARTS:
            getattr(self, part)
        return self

    def model_bytes(self) -> int:
        """The size of the model's weights, for the free-space check."""
        return sum(int(weight.shape.num_elements()) * weight.dtype.size for weight in self.model.weights)

    def describe(self, run_name: str) -> str:
        """The line a run starts with: labels, split sizes, replicas and devices, the batch split, precision; then
        warnings."""
        manifest = self.manifest()
        counts = ", ".join(f"{len(split)} {name}" for name, split in self.data.splits.items())
        kind = ("multi-label " if self.multi_label else "") + ("sentence pairs, " if self.pairs else "")
        lines = [
            f"kerasft: run {run_name}: {kind}{len(self.label_names)} labels, {counts}; "
            f"{manifest['replicas']} replica(s) with "
            f"{manifest['strategy']} on {', '.join(manifest['devices'])}, global batch {manifest['global_batch']} = "
            f"{manifest['replicas']} x {manifest['per_replica_batch']}; {manifest['mixed_precision']}, "
            f"XLA {'on' if manifest['jit_compile'] else 'off'}"
        ]
        notes = [
            *ignored_settings(self.requested),
            *self.precision.notes,
            *([self.graph_tokenizer[1]] if self.graph_tokenizer[1] else []),
        ]
        lines += [f"kerasft: precision: {self.precision.reason}"] if self.precision.reason else []
        lines += [f"kerasft: {line}" for line in self.optimization.summary()]
        lines += [
            f"kerasft: {line}" for line in weighting.summary(self.label_weights, self.label_names, self.multi_label)
        ]
        return "\n".join(lines + [f"kerasft: warning: {note}" for note in notes])

    def manifest(self) -> dict:
        """What recipe.json records about how the run ran: strategy, devices, batch split, learning rate, optimizer,
        precision."""
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)  # under a LossScaleOptimizer
        facts = strategies.describe(self.strategy) | {
            "global_batch": self.requested.train.batch_size,
            "per_replica_batch": self.per_replica_batch,
            "learning_rate": self.learning_rate,
            "optimizer": type(optimizer).__name__,
            "mixed_precision": self.precision.policy,
            "jit_compile": self.precision.jit_compile,
            "bfloat16_matmul_speedup": self.precision.bfloat16_speedup,
            "device_request": strategies.requested_devices(),
            "cluster": cluster.manifest() if (cluster := clusters.applied()) else None,
        }
        return facts | self.optimization.manifest() | weighting.manifest(self.label_weights, self.label_names)
