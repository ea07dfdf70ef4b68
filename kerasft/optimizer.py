"""Optimizers: Keras' Adam, applied by TensorFlow's fused kernel, and its lazy variant for embeddings.

    model.compile(optimizer=Adam(learning_rate=5e-5), loss=..., metrics=[...])

The update rule and defaults are Keras' Adam (beta_1 0.9, beta_2 0.999, epsilon 1e-7). Each
choice below was measured with ``benchmarks/train_throughput.py`` (BENCHMARKS.md):

- Both build on ``keras.optimizers.legacy.Adam``, which updates each variable with TensorFlow's
  fused ``ResourceApplyAdam`` kernel, where ``keras.optimizers.Adam`` builds several ops per
  variable and, on CPUs, compiles them with XLA on the first step.
- A word-embedding matrix (30522 x 384 for all-MiniLM-L6-v2, half the model) gets a sparse
  gradient: the rows of this batch's tokens. Adam still moves every row, since the moments of
  the others decay. `Adam`, kerasft's default, does exactly that, in one pass of the fused
  kernel over the matrix. `LazyAdam` (``train.lazy_adam=true``) updates only the rows of this
  batch's tokens, their moments included, as TF Addons' ``LazyAdam`` and PyTorch's
  ``SparseAdam`` do: a row's update is Adam's whenever its token is in the batch, and it rests
  otherwise. Its update alone is several times cheaper, but for MiniLM whole epochs were not
  measurably faster, so it is not the default.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class Adam(keras.optimizers.legacy.Adam):
    """Keras' Adam, with sparse (embedding) gradients applied densely by the fused kernel.

    >>> optimizer = Adam(learning_rate=5e-5)
    >>> embedding = tf.Variable(tf.ones([4, 2]))
    >>> rows = tf.IndexedSlices(tf.ones([1, 2]), indices=tf.constant([2]), dense_shape=tf.constant([4, 2]))
    >>> _ = optimizer.apply_gradients([(rows, embedding)])
    >>> # only the row with a gradient moved, by the learning rate
    >>> embedding.numpy()[:, 0].astype(float).round(6).tolist()
    [1.0, 1.0, 0.99995, 1.0]
    """

    def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices, **kwargs):
        # unsorted_segment_sum adds up repeated token ids, as Keras' own deduplication would
        dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(handle, out_type=indices.dtype)[0])
        return self._resource_apply_dense(dense, handle, **kwargs)


class LazyAdam(keras.optimizers.legacy.Adam):
    """Keras' Adam that moves only the embedding rows with a gradient in this step, and their moments.

    Dense gradients (every other weight) get Adam's update. For a sparse gradient, the rows of
    this batch's tokens get exactly the update Adam would give them from their current moments;
    the other rows and their moments stay as they are, where Adam would decay the moments and
    keep moving the row by them. The step then costs the rows of the batch, not the matrix.

        >>> optimizer = LazyAdam(learning_rate=5e-5)
        >>> embedding = tf.Variable(tf.ones([4, 2]))
        >>> for row in (2, 0):  # a step on row 2, then one on row 0
        ...     grad = tf.IndexedSlices(tf.ones([1, 2]), indices=tf.constant([row]), dense_shape=tf.constant([4, 2]))
        ...     _ = optimizer.apply_gradients([(grad, embedding)])
        >>> # row 2 rested in step 2; Adam would have moved it on to 0.999916
        >>> embedding.numpy()[:, 0].astype(float).round(6).tolist()
        [0.999963, 1.0, 0.99995, 1.0]
    """

    def _resource_apply_sparse(self, grad, var, rows, apply_state=None):
        # Keras calls this with each row once (repeated token ids already summed) and the fused kernel handles
        # dense gradients
        if self.amsgrad:  # no lazy form here; Keras' own
            return super()._resource_apply_sparse(grad, var, rows, apply_state)
        device, dtype = var.device, var.dtype.base_dtype
        coefficients = (apply_state or {}).get((device, dtype)) or self._fallback_apply_state(device, dtype)
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        # Adam's moment and weight updates (the fused kernel's formulas), on the gathered rows only
        m_rows = coefficients["beta_1_t"] * tf.gather(m, rows) + coefficients["one_minus_beta_1_t"] * grad
        v_rows = coefficients["beta_2_t"] * tf.gather(v, rows) + coefficients["one_minus_beta_2_t"] * tf.square(grad)
        step = coefficients["lr"] * m_rows / (tf.sqrt(v_rows) + coefficients["epsilon"])
        return tf.group(
            tf.raw_ops.ResourceScatterUpdate(resource=m.handle, indices=rows, updates=m_rows),
            tf.raw_ops.ResourceScatterUpdate(resource=v.handle, indices=rows, updates=v_rows),
            tf.raw_ops.ResourceScatterSub(resource=var.handle, indices=rows, updates=step),
        )
