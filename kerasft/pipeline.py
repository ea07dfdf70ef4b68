"""Input pipelines for `fit`: global batches in a seeded order, resumable mid-epoch, sharded by tf.distribute.

``train.batch_size`` is the global batch: every element of these pipelines is one global batch,
padded to its longest text. tf.distribute splits it: across replicas by rebatching, and across
the workers of a multi-worker run by ``AutoShardPolicy.DATA``, so each worker gets its own
slice of every global batch. (``FILE`` sharding cannot apply: the source is a range of batch
numbers read through NumPy, not files; with ``AUTO`` TensorFlow would try ``FILE`` first.)

That needs every worker to build the same global batches, so the order of epoch ``e`` is a
permutation seeded by ``(seed, e)`` and computed with NumPy, never by a TensorFlow op whose
seed depends on graph construction. The same property lets a resumed run pick up in the
middle of an epoch with exactly the batches it had not yet trained on::

    plan = Plan(examples=len(split), global_batch=32, seed=42, epochs=3, start_epoch=1, start_step=5)
    train_ds = batches_dataset(split, tokenizer, plan)   # (3 - 1) * plan.steps_per_epoch - 5 batches
    model.fit(train_ds, epochs=3, steps_per_epoch=plan.steps_per_epoch, ...)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LABEL = "label"


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
        if not self.shuffle:
            return np.arange(self.examples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.examples)

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


def batches_dataset(split, tokenizer, plan: Plan, pad_to_multiple_of: int | None = None, pad_to_length: int | None = None):
    """A tf.data pipeline of ``({input_ids, attention_mask, ...}, label)`` global batches following ``plan``.

    Batches pad to their longest text (to a multiple of ``pad_to_multiple_of``, which keeps the
    number of shapes XLA compiles small), or all to ``pad_to_length`` (static shapes, for TPUs).
    """
    import tensorflow as tf
    from transformers import DataCollatorWithPadding

    columns = [name for name in tokenizer.model_input_names if name in split.column_names]
    table = split.select_columns(columns + [LABEL])
    if pad_to_length:
        collator = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=pad_to_length, return_tensors="np")
    else:
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors="np")

    def fetch(batch):
        rows = table[plan.indices(int(batch)).tolist()]
        features = collator([{name: rows[name][row] for name in columns} for row in range(len(rows[LABEL]))])
        return tuple(np.asarray(features[name], dtype=np.int64) for name in columns) + (np.asarray(rows[LABEL], dtype=np.int64),)

    width = pad_to_length if pad_to_length else None
    batch_size = plan.global_batch if plan.drop_remainder else None

    def to_inputs(batch):
        tensors = tf.numpy_function(fetch, [batch], [tf.int64] * (len(columns) + 1), stateful=False)
        features = {name: tf.ensure_shape(tensor, [batch_size, width]) for name, tensor in zip(columns, tensors)}
        return features, tf.ensure_shape(tensors[-1], [batch_size])

    dataset = tf.data.Dataset.range(plan.batches).map(to_inputs).prefetch(tf.data.AUTOTUNE)
    return shard_by_data(dataset)


def shard_by_data(dataset):
    """Marks ``dataset`` for ``AutoShardPolicy.DATA``: each worker keeps its slice of every batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
