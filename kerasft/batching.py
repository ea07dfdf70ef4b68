"""Batching: the one place that orders examples by length, pads each batch to its own longest, and puts results back.

Every tf.data pipeline of a run comes from here and goes through `Dataset.to_tf_dataset`, with
`PadToLongest` as its ``collate_fn`` and the order chosen by a `Plan`:

* training: length-bucketed global batches in a seeded order (`Plan.order`), resumable mid-epoch,
  sharded by tf.distribute (`training_batches`);
* validation, test and prediction: longest first, results put back in input order
  (`ordered_batches`, `in_input_order`); ``kerasft predict`` orders raw texts the same way.

The export's signatures do the same in the graph (kerasft.export), tested against this module.

``train.batch_size`` is the global batch: every element of a training pipeline is one global batch.
tf.distribute splits it: across replicas by rebatching, and across the workers of a multi-worker run
by ``AutoShardPolicy.DATA``, so each worker gets its own slice of every global batch (``FILE``
sharding cannot apply: the source is an in-memory arrow table, not files). That needs every worker
to build the same global batches, so the order of epoch ``e`` is a function of ``(seed, e)``
computed with NumPy, never by a TensorFlow op whose seed depends on graph construction. The same
property lets a resumed run pick up in the middle of an epoch with exactly the batches it had not
yet trained on::

    plan = Plan(examples=len(split), global_batch=32, seed=42, epochs=3, start_epoch=1, start_step=5,
                lengths=token_lengths(split))
    train_ds = training_batches(split, plan, PadToLongest(tokenizer))  # (3 - 1) * steps_per_epoch - 5 batches

Batches are length-bucketed (given ``lengths``): each epoch shuffles the examples, cuts them into
chunks of ``BUCKET_CHUNK`` batches, sorts each chunk by length and shuffles the resulting batches,
as Hugging Face's LengthGroupedSampler does. Texts of similar length share a batch, so little of
each batch is padding, while the batches' contents and order still change every epoch.

Measured (BENCHMARKS.md, all-MiniLM-L6-v2, 2 CPU cores): an epoch through `to_tf_dataset` trained
115.4 examples/s against 116.3 for the ``Dataset.range(...).map(numpy_function)`` pipeline it replaced
(one process, one traced model, epochs alternating); the pipeline alone costs 3.6 against 3.2 ms of
CPU per batch of 32, in a step of about 330 ms.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

LABEL = "label"
MASK = "attention_mask"  # built by PadToLongest, not stored (kerasft.tokenizing)
BUCKET_CHUNK = 50  # batches sorted by length together: larger pads less, smaller mixes the data more
# Batches pad to their longest text rounded up to a multiple of this many tokens. On CPUs, 1: `fit`
# traces its step once for any width, and rounding up to 8 measured slower (72.4 against 91.5
# examples/s, BENCHMARKS.md).
PAD_MULTIPLE = 1
GPU_PAD_MULTIPLE = 8  # Tensor Cores want matrix sides in multiples of 8
XLA_PAD_MULTIPLE = 32  # XLA compiles once per shape: few, wider shapes


@dataclass(frozen=True)
class Plan:
    """Which examples make up each batch, from ``(start_epoch, start_step)`` to the end of training.

    >>> plan = Plan(examples=5, global_batch=2, shuffle=False, lengths=np.array([3, 9, 1, 9, 4]))
    >>> plan.order(0).tolist()  # longest first, ties in input order
    [1, 3, 4, 0, 2]
    >>> [plan.indices(batch).tolist() for batch in range(plan.batches)]
    [[1, 3], [4, 0], [2]]
    """

    examples: int
    global_batch: int
    seed: int = 0
    epochs: int = 1
    start_epoch: int = 0
    start_step: int = 0
    shuffle: bool = True
    drop_remainder: bool = False  # TPUs need every batch full; then the last partial batch of each epoch is skipped
    lengths: np.ndarray | None = field(
        default=None, compare=False, repr=False
    )  # token counts: batches by length if given

    @property
    def steps_per_epoch(self) -> int:
        if self.drop_remainder:
            return max(1, self.examples // self.global_batch)
        return math.ceil(self.examples / self.global_batch)

    @property
    def batches(self) -> int:
        """Batches from the starting point to the end of the last epoch."""
        return max(0, (self.epochs - self.start_epoch) * self.steps_per_epoch - self.start_step)

    def order(self, epoch: int) -> np.ndarray:
        """The example indices of ``epoch`` in batch order; the same on every worker and after a restart."""
        if self.lengths is None:
            if not self.shuffle:
                return np.arange(self.examples)
            return np.random.default_rng([self.seed, epoch]).permutation(self.examples)
        lengths = np.asarray(self.lengths)
        if not self.shuffle:
            return np.argsort(-lengths, kind="stable")  # longest first: a batch too big for memory fails at once
        rng = np.random.default_rng([self.seed, epoch])
        shuffled = rng.permutation(self.examples)
        chunk = BUCKET_CHUNK * self.global_batch
        grouped = np.concatenate(
            [
                part[np.argsort(-lengths[part], kind="stable")]
                for part in np.split(shuffled, range(chunk, self.examples, chunk))
            ]
        )
        full = self.examples // self.global_batch
        batches = grouped[: full * self.global_batch].reshape(full, self.global_batch)[rng.permutation(full)]
        return np.concatenate(
            [batches.reshape(-1), grouped[full * self.global_batch :]]
        )  # a partial batch goes last (dropped on TPUs)

    def remaining(self, epoch: int) -> np.ndarray:
        """The example indices of ``epoch`` still to train on: all of them, or those after ``start_step`` in the
        start epoch."""
        skip = self.start_step * self.global_batch if epoch == self.start_epoch else 0
        return self.order(epoch)[skip:]

    def indices(self, batch: int) -> np.ndarray:
        """The example indices of the ``batch``-th batch of this plan (counted from its starting point)."""
        epoch, step = divmod(self.start_epoch * self.steps_per_epoch + self.start_step + batch, self.steps_per_epoch)
        return self._order_of(epoch)[step * self.global_batch : (step + 1) * self.global_batch]

    def _order_of(self, epoch: int) -> np.ndarray:
        """`order`, kept for the epoch asked last (batches are asked for in order)."""
        cache = self.__dict__.setdefault("_cache", {})  # a frozen dataclass: its own attribute dict holds the cache
        if epoch not in cache:
            cache.clear()
            cache[epoch] = self.order(epoch)
        return cache[epoch]


def token_lengths(split) -> np.ndarray:
    """The number of tokens of every example of a tokenized split, read from the arrow column's offsets (no per-row
    Python)."""
    import pyarrow.compute as pc

    # in the split's order, after any select or shuffle; chunk by chunk: combining the chunks first copied every
    # token id (230 MB for 1M texts)
    return pc.list_value_length(split.with_format("arrow")["input_ids"]).to_numpy()


def pad_multiple(device_kind: str, jit_compile: bool) -> int:
    """The multiple training batches pad to on this kind of device (kerasft.precision's settings)."""
    if jit_compile:
        return XLA_PAD_MULTIPLE
    return GPU_PAD_MULTIPLE if device_kind == "GPU" else PAD_MULTIPLE


class PadToLongest:
    """The ``collate_fn`` of every pipeline: tokenized examples in, a batch padded to its longest example out.

    Builds what ``DataCollatorWithPadding(tokenizer, pad_to_multiple_of=...)`` builds, with NumPy
    instead of the tokenizer's per-example ``pad`` (a cost paid on every training step), and pads
    the tokenizer's side (left or right). ``pad_to_length`` pads every batch to one width (TPUs)::

        collate = PadToLongest(tokenizer)
        batch = collate([{"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "label": 2}, ...])

    Every input the tokenizer returns is padded, ``token_type_ids`` included (a pair's second text is
    segment 1). The ``attention_mask``, which kerasft.tokenizing does not store, is built from the
    lengths: ones over each example's tokens, zeros over its padding. Labels come out as int64 class
    ids, or float32 multi-hot rows for multi-label data.
    """

    def __init__(self, tokenizer, pad_to_multiple_of: int = PAD_MULTIPLE, pad_to_length: int | None = None):
        self.input_names = list(tokenizer.model_input_names)
        self.pad_id = tokenizer.pad_token_id
        self.left = tokenizer.padding_side == "left"
        self.multiple, self.fixed = pad_to_multiple_of, pad_to_length
        self.inferring = False  # True while `to_tf_dataset` infers shapes (see _to_tf_dataset)

    @classmethod
    def for_device(cls, tokenizer, device_kind: str, jit_compile: bool, max_length: int) -> PadToLongest:
        """Training batches as this device wants them: on TPUs every batch ``max_length`` wide, elsewhere
        each its own longest, rounded up on GPUs and under XLA (`pad_multiple`)."""
        if device_kind == "TPU":
            return cls(tokenizer, pad_to_length=max_length)
        return cls(tokenizer, pad_multiple(device_kind, jit_compile))

    def columns(self, split) -> list[str]:
        """The model inputs ``split`` has, in the tokenizer's order."""
        return [name for name in self.input_names if name in split.column_names]

    def outputs(self, split) -> list[str]:
        """The model inputs batches of ``split`` carry: its own, and the attention mask if the model takes one."""
        return [name for name in self.input_names if name in split.column_names or name == MASK]

    def width(self, longest: int) -> int:
        """The width of a batch whose longest example has ``longest`` tokens."""
        if self.fixed:
            return self.fixed
        return -(-longest // self.multiple) * self.multiple

    def __call__(self, examples: list[dict]) -> dict[str, np.ndarray]:
        names = [name for name in self.input_names if name in examples[0] or name == MASK]
        lengths = [len(example["input_ids"]) for example in examples]
        width = self.width(max(lengths, default=0))
        if self.inferring:  # see _to_tf_dataset
            self._inferred = getattr(self, "_inferred", 0) + 1
            width += self._inferred % 2
        batch = {}
        for name in names:
            if name == MASK and MASK not in examples[0]:  # ones over the tokens: the mask before padding
                columns, counts = np.arange(width)[np.newaxis, :], np.asarray(lengths)[:, np.newaxis]
                batch[name] = (columns >= width - counts if self.left else columns < counts).astype(np.int64)
                continue
            padded = np.full((len(examples), width), self.pad_id if name == "input_ids" else 0, dtype=np.int64)
            for row, (example, length) in enumerate(zip(examples, lengths)):
                if self.left:
                    padded[row, width - length :] = example[name]
                else:
                    padded[row, :length] = example[name]
            batch[name] = padded
        if LABEL in examples[0]:  # class ids, or (multi-label) float multi-hot rows for binary cross-entropy
            multi_hot = isinstance(examples[0][LABEL], (list, np.ndarray))
            batch[LABEL] = np.array(
                [example[LABEL] for example in examples], dtype=np.float32 if multi_hot else np.int64
            )
        return batch


def _to_tf_dataset(split, collate: PadToLongest, batch_size: int, drop_remainder: bool = False):
    """`Dataset.to_tf_dataset` of ``split`` in its own order: ``({input_ids, attention_mask, ...}, label)`` batches.

    `to_tf_dataset` infers each column's shape from 20 single examples; a width those happen to
    share would become a static dimension that rejects every other width at run time. So while it
    infers, the collate pads to alternating widths: the width is then, rightly, unknown.
    """
    columns = collate.columns(split)
    collate.inferring = collate.fixed is None
    try:
        dataset = split.select_columns([*columns, LABEL] if LABEL in split.column_names else columns).to_tf_dataset(
            columns=collate.outputs(split),  # with the attention mask the collate builds
            label_cols=LABEL if LABEL in split.column_names else None,
            batch_size=batch_size,
            shuffle=False,
            drop_remainder=drop_remainder,
            collate_fn=collate,
        )
    finally:
        collate.inferring = False
    return without_autotune(dataset)


def training_batches(split, plan: Plan, collate: PadToLongest):
    """The training pipeline: ``plan``'s global batches, epoch after epoch from its starting point, for `fit`."""
    epochs = [
        _to_tf_dataset(split.select(plan.remaining(epoch)), collate, plan.global_batch, plan.drop_remainder)
        for epoch in range(plan.start_epoch, plan.epochs)
    ]
    return shard_by_data(functools.reduce(lambda first, second: first.concatenate(second), epochs))


def ordered_batches(split, batch_size: int, collate: PadToLongest):
    """Batches of ``split`` longest first, for validation and prediction; with the `Plan` that `in_input_order`
    undoes."""
    plan = Plan(len(split), batch_size, shuffle=False, lengths=token_lengths(split))
    return _to_tf_dataset(split.select(plan.order(0)), collate, batch_size), plan


def in_input_order(results: np.ndarray, plan: Plan) -> np.ndarray:
    """Rows computed in the order of an unshuffled ``plan`` (longest first), put back in input order."""
    restored = np.empty_like(results)
    restored[plan.order(0)] = results
    return restored


def without_autotune(dataset):
    """``dataset`` with tf.data's autotuning off, so that its iterators close at once.

    With autotuning on, deleting an iterator (at the end of `fit`, of each validation pass, of
    `predict`) waits for the autotuner's thread (``Model::OptimizeLoop`` in TensorFlow 2.21) to
    wake from its sleep, which takes from nothing to many seconds: one epoch trained 81.1
    examples/s with it on and 91.5 off (BENCHMARKS.md). kerasft's pipelines have one map and a
    fixed prefetch: there is nothing to tune.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def shard_by_data(dataset):
    """Marks ``dataset`` for ``AutoShardPolicy.DATA``: each worker keeps its slice of every batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
