"""Optimizer: Keras' Adam, applied by TensorFlow's fused kernel to every variable, embeddings included.

    model.compile(optimizer=Adam(learning_rate=5e-5), loss=..., metrics=[...])

The update rule and defaults are Keras' Adam (beta_1 0.9, beta_2 0.999, epsilon 1e-7). Two
implementation choices make a fine-tuning step cheaper on the same math, each measured with
``benchmarks/train_throughput.py`` (BENCHMARKS.md):

- It builds on ``keras.optimizers.legacy.Adam``, which updates each variable with TensorFlow's
  fused ``ResourceApplyAdam`` kernel, where ``keras.optimizers.Adam`` builds several ops per
  variable and, on CPUs, compiles them with XLA on the first step.
- A word-embedding matrix gets a sparse gradient (the rows of this batch's tokens), but Adam
  still moves every row (their moments decay), so Keras' sparse path makes several passes over
  the whole matrix. Here the gradient is scattered into a dense one and the fused kernel makes
  one. The result is the same: rows without tokens get a zero gradient either way.
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
        >>> embedding.numpy()[:, 0].astype(float).round(6).tolist()  # only the row with a gradient moved, by the learning rate
        [1.0, 1.0, 0.99995, 1.0]
    """

    def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices, **kwargs):
        # unsorted_segment_sum adds up repeated token ids, as Keras' own deduplication would
        dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(handle, out_type=indices.dtype)[0])
        return self._resource_apply_dense(dense, handle, **kwargs)
