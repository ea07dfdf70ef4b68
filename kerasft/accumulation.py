"""Gradient accumulation: the optimizer steps once every N batches, with the mean of their gradients.

    optimizer = accumulating(Adam)(learning_rate=5e-5, accumulation_steps=4)
    model.compile(optimizer=optimizer, ...)   # `fit` as usual; each optimizer step sees batch_size x 4 examples

Keras 3's optimizers take ``gradient_accumulation_steps``; Keras 2's legacy optimizers, which kerasft
keeps for TensorFlow's fused Adam kernel (kerasft.optimizer), do not, and neither do Hugging Face's
TF models. `GradientAccumulation` adds it, with Keras 3's meaning (the count runs on across epochs),
where every training step passes: the optimizer's ``_distributed_apply``, which `apply_gradients`
calls with the batch's gradients already summed across replicas (and, under ``mixed_float16``, already
unscaled and checked finite by Keras' LossScaleOptimizer). For each weight it adds gradient / N to a
``gradient_sum`` slot; on every N-th batch it hands that mean to the optimizer's own update (Adam's
fused kernel, AdamW's decay), empties the sum and advances ``optimizer.iterations`` by one, so that
learning-rate schedules and Adam's bias correction count optimizer steps, not batches. The train
function is traced once: the slots and the ``accumulated_batches`` counter are created with the
optimizer's other weights (kerasft.model.create_optimizer_state), and the step chooses between adding
and applying with a `tf.cond` inside each variable's update, on each replica's copy, where no
collective op runs.

Resuming: the sums and the counter are optimizer variables, so every checkpoint and backup holds
them (kerasft.resume): a run stopped between two optimizer steps resumes with the batches it had
already added. Backups stay where `train.backup_every_steps` and Ctrl-C put them, between any two
batches; the price is one more copy of the trainable weights in each checkpoint.

Every batch's gradients are still all-reduced across replicas, as without accumulation: Keras
aggregates them in `apply_gradients`, before this class sees them, and an all-reduce only on the
N-th batch would need a collective inside a condition. Under ``mixed_float16``, a batch whose
gradients overflow is skipped by the LossScaleOptimizer before it reaches the sums, and Keras counts
the skip in ``iterations`` as it does without accumulation.
"""

from __future__ import annotations

import tensorflow as tf

GRADIENT_SUM = "gradient_sum"  # the slot holding each weight's gradients / N since the last optimizer step


class GradientAccumulation:
    """Mixin for a Keras 2 (legacy) optimizer: one update every ``accumulation_steps`` batches, with their mean
    gradient.

    >>> from kerasft.optimizer import Adam
    >>> optimizer = accumulating(Adam)(learning_rate=0.1, accumulation_steps=2)
    >>> weight = tf.Variable([1.0])
    >>> _ = optimizer.apply_gradients([(tf.constant([3.0]), weight)])  # added, not applied
    >>> int(optimizer.iterations), weight.numpy().tolist()
    (0, [1.0])
    >>> _ = optimizer.apply_gradients([(tf.constant([-1.0]), weight)])  # the mean, 1.0: Adam's first step, -0.1
    >>> int(optimizer.iterations), weight.numpy().astype(float).round(6).tolist(), int(optimizer.accumulated_batches)
    (1, [0.9], 0)
    """

    def __init__(self, *args, accumulation_steps: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be 1 or more, got {accumulation_steps}")
        self.accumulation_steps = accumulation_steps
        self._accumulated_batches = None

    @property
    def accumulated_batches(self):
        """How many batches the sums hold: 0 right after an optimizer step, up to N - 1 between two."""
        if self._accumulated_batches is None:
            with self._distribution_strategy_scope():  # as Keras creates `iterations`
                self._accumulated_batches = self.add_weight(
                    "accumulated_batches",
                    shape=[],
                    dtype=tf.int64,
                    trainable=False,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                )
            self._weights.append(self._accumulated_batches)
        return self._accumulated_batches

    def _create_all_weights(self, var_list):
        super()._create_all_weights(var_list)
        _ = self.accumulated_batches

    def _create_slots(self, var_list):
        super()._create_slots(var_list)
        for var in var_list:
            self.add_slot(var, GRADIENT_SUM)

    def _distributed_apply(self, distribution, grads_and_vars, apply_state, name):
        steps = self.accumulation_steps
        pending = tf.identity(self.accumulated_batches) + 1  # batches in the sums once this one is added
        ready = pending >= steps

        def add_then_maybe_apply(var, grad):  # on one replica's copy of ``var``
            total = self.get_slot(var, GRADIENT_SUM)
            if isinstance(grad, tf.IndexedSlices):  # an embedding's: only the rows of this batch's tokens
                added = total.scatter_add(tf.IndexedSlices(grad.values / steps, grad.indices, grad.dense_shape))
            else:
                added = total.assign_add(grad / steps, read_value=False)

            def apply_mean():
                # the mean goes through the optimizer's dense update, as kerasft's Adam applies embeddings anyway
                applied = self._resource_apply_dense(total.read_value(), var, apply_state=apply_state)
                with tf.control_dependencies([applied]):
                    emptied = total.assign(tf.zeros(total.shape, total.dtype), read_value=False)
                with tf.control_dependencies([emptied]):
                    return tf.constant(True)

            with tf.control_dependencies([added]):
                return tf.cond(ready, apply_mean, lambda: tf.constant(False))

        updates = []
        with tf.name_scope(name or self._name):
            for grad, var in grads_and_vars:
                with distribution.extended.colocate_vars_with(var):
                    updates += tf.nest.flatten(
                        distribution.extended.update(var, add_then_maybe_apply, args=(grad,), group=False)
                    )
            with tf.control_dependencies(updates):
                stepped = self.iterations.assign_add(tf.cast(ready, tf.int64))
                counted = self.accumulated_batches.assign(tf.where(ready, tf.zeros_like(pending), pending))
            return tf.group(stepped, counted)

    def get_config(self):
        return super().get_config() | {"accumulation_steps": self.accumulation_steps}


def accumulating(optimizer_class: type) -> type:
    """``optimizer_class`` with `GradientAccumulation`, under the same name (``type(optimizer).__name__`` is what
    recipe.json records)."""
    return type(optimizer_class.__name__, (GradientAccumulation, optimizer_class), {})
