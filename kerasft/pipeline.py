"""Input pipelines for `fit`: global batches in a seeded order, resumable mid-epoch, sharded by tf.distribute.

``train.batch_size`` is the global batch: every element of these pipelines is one global batch,
padded to its longest text. tf.distribute splits it: across replicas by rebatching, and across
the workers of a multi-worker run by ``AutoShardPolicy.DATA``, so each worker gets its own
slice of every global batch. (``FILE`` sharding cannot apply: the source is a range of batch
numbers read through NumPy, not files; with ``AUTO`` TensorFlow would try ``FILE`` first.)

That needs every worker to build the same global batches, so the order of epoch ``e`` is a
function of ``(seed, e)`` computed with NumPy, never by a TensorFlow op whose seed depends on
graph construction. The same property lets a resumed run pick up in the middle of an epoch
with exactly the batches it had not yet trained on::

    plan = Plan(examples=len(split), global_batch=32, seed=42, epochs=3, start_epoch=1, start_step=5,
                lengths=token_lengths(split))
    train_ds = batches_dataset(split, tokenizer, plan)   # (3 - 1) * plan.steps_per_epoch - 5 batches
    model.fit(train_ds, epochs=3, steps_per_epoch=plan.steps_per_epoch, ...)

Given the examples' token ``lengths``, batches are length-bucketed (the default in runs): each
epoch shuffles the examples, cuts them into chunks of ``BUCKET_CHUNK`` batches, sorts each chunk
by length and shuffles the resulting batches, as Hugging Face's LengthGroupedSampler does. Texts
of similar length then share a batch, so little of each batch is padding, while the batches'
contents and order still change every epoch. Without shuffling (validation, test, prediction)
the examples are sorted by length; callers put the results back in input order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

LABEL = "label"
BUCKET_CHUNK = 50  # batches sorted by length together: larger pads less, smaller mixes the data more
# Batches pad to their longest text rounded up to a multiple of this many tokens. On CPUs, 1: `fit`
# traces its step once for any width, and rounding up to 8 measured slower (72.4 against 91.5
# examples/s, BENCHMARKS.md).
PAD_MULTIPLE = 1
GPU_PAD_MULTIPLE = 8  # Tensor Cores want matrix sides in multiples of 8
XLA_PAD_MULTIPLE = 32  # XLA compiles once per shape: few, wider shapes


@dataclass(frozen=True)
class Plan:
    """Which examples make up each global batch, from ``(start_epoch, start_step)`` to the end of training."""

    examples: int
    global_batch: int
    seed: int = 0
    epochs: int = 1
    start_epoch: int = 0
    start_step: int = 0
    shuffle: bool = True
    drop_remainder: bool = False  # TPUs need every batch full; then the last partial batch of each epoch is skipped
    lengths: np.ndarray | None = field(default=None, compare=False, repr=False)  # token counts: batches by length if given

    @property
    def steps_per_epoch(self) -> int:
        if self.drop_remainder:
            return max(1, self.examples // self.global_batch)
        return math.ceil(self.examples / self.global_batch)

    @property
    def batches(self) -> int:
        """Global batches from the starting point to the end of the last epoch."""
        return max(0, (self.epochs - self.start_epoch) * self.steps_per_epoch - self.start_step)

    def order(self, epoch: int) -> np.ndarray:
        """The example indices of ``epoch`` in training order; the same on every worker and after a restart."""
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
        grouped = np.concatenate([part[np.argsort(-lengths[part], kind="stable")] for part in np.split(shuffled, range(chunk, self.examples, chunk))])
        full = self.examples // self.global_batch
        batches = grouped[: full * self.global_batch].reshape(full, self.global_batch)[rng.permutation(full)]
        return np.concatenate([batches.reshape(-1), grouped[full * self.global_batch :]])  # a partial batch goes last (dropped on TPUs)

    def indices(self, batch: int) -> np.ndarray:
        """The example indices of the ``batch``-th global batch of this plan (counted from its starting point)."""
        epoch, step = divmod(self.start_epoch * self.steps_per_epoch + self.start_step + batch, self.steps_per_epoch)
        return self._cached_order(epoch)[step * self.global_batch : (step + 1) * self.global_batch]

    def _cached_order(self, epoch: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_cache", {})
        if epoch not in cache:
            cache.clear()
            cache[epoch] = self.order(epoch)
        return cache[epoch]


def token_lengths(split) -> np.ndarray:
    """The number of tokens of every example of a tokenized split, read from the arrow column's offsets."""
    return np.diff(_ragged(split, "input_ids")[1])


def _ragged(split, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (all values, offsets): row ``i`` is ``values[offsets[i]:offsets[i + 1]]``. No per-row Python."""
    import pyarrow as pa

    array = split.with_format("arrow")[column]  # in the split's order, after any select or shuffle
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy(zero_copy_only=False)
    return values[offsets[0] : offsets[-1]], offsets - offsets[0]


class Padder:
    """Builds padded NumPy batches of a tokenized split's rows straight from its arrow columns.

    ``padder(rows)`` gives ``{input_ids, attention_mask, ...}`` of shape ``(len(rows), width)``, the
    width being the rows' longest text rounded up to ``pad_to_multiple_of`` (or ``pad_to_length``).
    """

    def __init__(self, split, tokenizer, pad_to_multiple_of: int | None = PAD_MULTIPLE, pad_to_length: int | None = None):
        self.columns = [name for name in tokenizer.model_input_names if name in split.column_names]
        self.ragged = {name: _ragged(split, name) for name in self.columns}
        self.pad_values = {name: tokenizer.pad_token_id if name == "input_ids" else 0 for name in self.columns}
        self.left = tokenizer.padding_side == "left"
        self.multiple, self.fixed = pad_to_multiple_of, pad_to_length
        self.lengths = np.diff(self.ragged[self.columns[0]][1])

    def width(self, rows: np.ndarray) -> int:
        if self.fixed:
            return self.fixed
        longest = int(self.lengths[rows].max(initial=0))
        return -(-longest // self.multiple) * self.multiple if self.multiple else longest

    def __call__(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        width = self.width(rows)
        lengths = self.lengths[rows]
        positions = np.arange(width)
        filled = positions >= width - lengths[:, None] if self.left else positions < lengths[:, None]
        batch = {}
        for name in self.columns:
            values, offsets = self.ragged[name]
            out = np.full((len(rows), width), self.pad_values[name], dtype=np.int64)
            starts = offsets[rows]
            # the flat positions of every token of these rows, row after row
            take = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
            out[filled] = values[take]
            batch[name] = out
        return batch


def pad_multiple(device_kind: str, jit_compile: bool) -> int:
    """The multiple training batches pad to on this kind of device (kerasft.precision's settings)."""
    if jit_compile:
        return XLA_PAD_MULTIPLE
    return GPU_PAD_MULTIPLE if device_kind == "GPU" else PAD_MULTIPLE


def batches_dataset(split, tokenizer, plan: Plan, pad_to_multiple_of: int | None = PAD_MULTIPLE, pad_to_length: int | None = None):
    """A tf.data pipeline of ``({input_ids, attention_mask, ...}, label)`` global batches following ``plan``.

    Batches pad to their longest text rounded up to a multiple of ``pad_to_multiple_of`` (fewer
    shapes to trace or compile), or all to ``pad_to_length`` (static shapes, for TPUs). Each batch
    is cut from the arrow columns with NumPy in one step, with no per-example Python.
    """
    import tensorflow as tf

    padder = Padder(split, tokenizer, pad_to_multiple_of, pad_to_length)
    columns = padder.columns
    labels = np.asarray(split.with_format("numpy")[LABEL], dtype=np.int64)

    def fetch(batch):
        rows = plan.indices(int(batch))
        features = padder(rows)
        return tuple(features[name] for name in columns) + (labels[rows],)

    width = pad_to_length if pad_to_length else None
    batch_size = plan.global_batch if plan.drop_remainder else None

    def to_inputs(batch):
        tensors = tf.numpy_function(fetch, [batch], [tf.int64] * (len(columns) + 1), stateful=False)
        features = {name: tf.ensure_shape(tensor, [batch_size, width]) for name, tensor in zip(columns, tensors)}
        return features, tf.ensure_shape(tensors[-1], [batch_size])

    dataset = tf.data.Dataset.range(plan.batches).map(to_inputs).prefetch(2)  # one batch in training, the next one ready
    return shard_by_data(without_autotune(dataset))


def in_input_order(results: np.ndarray, plan: Plan) -> np.ndarray:
    """Rows predicted in the order of an unshuffled ``plan`` (by length), put back in input order."""
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
