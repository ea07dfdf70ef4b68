"""Optimizers: Adam through TensorFlow's fused kernel (PyTorch's epsilon), its lazy variant for embeddings, and both
with AdamW's decoupled weight decay.

    model.compile(optimizer=Adam(learning_rate=5e-5), loss=..., metrics=[...])
    model.compile(optimizer=AdamW(learning_rate=5e-5, weight_decay=0.01), ...)

The defaults are Keras' Adam's (beta_1 0.9, beta_2 0.999, epsilon 1e-7); epsilon sits where the Adam
paper's Algorithm 1 and PyTorch put it (`BiasCorrectedEpsilon` says why). Each choice below was
measured with ``benchmarks/train_throughput.py`` (BENCHMARKS.md):

- Both build on ``keras.optimizers.legacy.Adam``, which updates each variable with TensorFlow's
  fused ``ResourceApplyAdam`` kernel, where ``keras.optimizers.Adam`` builds several ops per
  variable and, on CPUs, compiles them with XLA on the first step.
- A word-embedding matrix (30522 x 384 for all-MiniLM-L6-v2, half the model) gets a sparse
  gradient: the rows of this batch's tokens. Adam still moves every row, since the moments of
  the others decay. `Adam`, kerasft's default, does exactly that, in one pass of the fused
  kernel over the matrix. `LazyAdam` (``train.lazy_adam=true``) updates only the rows of this
  batch's tokens, their moments included, as TF Addons' ``LazyAdam`` and PyTorch's
  ``SparseAdam`` do: a row's update is Adam's whenever its token is in the batch, and it rests
  otherwise. Its update alone is several times cheaper. For MiniLM, whole epochs were 1.07-1.08x
  faster on a CPU with AMX and not measurably faster on AVX-512 ones. It changes Adam's maths, and
  kerasft's quality parity with the Trainer was measured with Adam, so it is not the default.
- `AdamW` and `LazyAdamW` (``train.weight_decay``) add decoupled weight decay to them
  (`DecoupledWeightDecay`) and keep their update: Keras 2's legacy optimizers have no AdamW, and
  ``keras.optimizers.AdamW`` is the non-fused optimizer the first point leaves aside.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class BiasCorrectedEpsilon(keras.optimizers.legacy.Adam):
    """Keras' legacy Adam (TensorFlow's fused kernel), with epsilon added to the bias-corrected second moment:
    ``lr * m_hat / (sqrt(v_hat) + epsilon)``, as the Adam paper's Algorithm 1 and ``torch.optim.Adam`` do.

    Keras adds it before the bias correction, ``lr_t * m / (sqrt(v) + epsilon)`` (the paper's "epsilon
    hat"), which in those terms is epsilon / sqrt(1 - beta_2^t): 3.2e-6 in the first step for 1e-7.
    Fine-tuning's gradients are that small (median 2.9e-6 in MiniLM's first step on GoEmotions-style
    data), so Keras' form damped the early steps of half the weights and kerasft trained behind
    PyTorch's Adam on the same weights and batches; with this form it follows it to float32 noise
    (benchmarks/results/2026-11-29-quality/diagnosis/README.md). A gradient of 1e-6 in the first step:

    >>> weight = tf.Variable([0.0])
    >>> _ = Adam(learning_rate=1.0).apply_gradients([(tf.constant([1e-6]), weight)])
    >>> round(float(weight.numpy()[0]), 4)  # -1e-6 / (1e-6 + 1e-7); Keras' Adam: -1e-6 / (1e-6 + 3.2e-6) = -0.24
    -0.9091
    """

    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)
        coefficients = apply_state[(var_device, var_dtype)]
        # Every update here (the fused kernel, Keras' sparse one, LazyAdam's) computes lr_t * m / (sqrt(v) + epsilon)
        # with lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t): epsilon x sqrt(1 - beta_2^t) there is epsilon
        # beside sqrt(v_hat)
        coefficients["epsilon"] = coefficients["epsilon"] * tf.sqrt(1.0 - coefficients["beta_2_power"])


class Adam(BiasCorrectedEpsilon):
    """Adam (`BiasCorrectedEpsilon`), with sparse (embedding) gradients applied densely by the fused kernel.

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


class LazyAdam(BiasCorrectedEpsilon):
    """Adam that moves only the embedding rows with a gradient in this step, and their moments.

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


# Hugging Face's recipes decay every weight but these (transformers' TF `create_optimizer`, Trainer's
# `get_decay_parameter_names`): biases, and LayerNorm's scale and offset.
NO_DECAY = ("bias", "LayerNorm", "layer_norm")


def takes_weight_decay(variable) -> bool:
    """Whether AdamW decays ``variable``: weight matrices and embeddings do; biases and LayerNorm weights do not.

    Hugging Face names them (`NO_DECAY`); a vector is left out whatever its name, which catches the
    same weights in architectures that name their norms otherwise (GPT-2's ``ln_1``).

    >>> takes_weight_decay(tf.Variable(tf.ones([4, 2]), name="bert/encoder/layer_._0/attention/self/query/kernel"))
    True
    >>> takes_weight_decay(tf.Variable(tf.ones([2]), name="bert/encoder/layer_._0/attention/self/query/bias"))
    False
    >>> takes_weight_decay(tf.Variable(tf.ones([2]), name="bert/embeddings/LayerNorm/gamma"))
    False
    """
    return variable.shape.rank >= 2 and not any(word in variable.name for word in NO_DECAY)


class DecoupledWeightDecay:
    """Mixin for kerasft's Adams: AdamW's weight decay, decoupled from the gradient (Loshchilov and Hutter).

    Before each update, every weight `takes_weight_decay` keeps is shrunk by ``learning_rate x
    weight_decay`` of itself, where ``learning_rate`` is this step's (scheduled) rate, as
    PyTorch's ``AdamW``, Keras' ``AdamW`` and transformers' ``AdamWeightDecay`` do; then the base
    class applies its own update, the fused kernel included. With a sparse gradient, `LazyAdamW`
    decays only the rows it updates, as TF Addons' ``extend_with_decoupled_weight_decay(LazyAdam)``
    did: a resting row rests entirely.
    """

    def __init__(self, *args, weight_decay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_decay = weight_decay

    def _decay_rate(self, var, apply_state):
        device, dtype = var.device, var.dtype.base_dtype
        coefficients = (apply_state or {}).get((device, dtype)) or self._fallback_apply_state(device, dtype)
        return coefficients["lr_t"] * tf.cast(self.weight_decay, dtype)

    def _resource_apply_dense(self, grad, var, apply_state=None):
        if not takes_weight_decay(var):
            return super()._resource_apply_dense(grad, var, apply_state)
        decayed = var.assign_sub(self._decay_rate(var, apply_state) * var, read_value=False)
        with tf.control_dependencies([decayed]):
            return super()._resource_apply_dense(grad, var, apply_state)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        if not takes_weight_decay(var):
            return super()._resource_apply_sparse(grad, var, indices, apply_state)
        shrink = self._decay_rate(var, apply_state) * tf.gather(var, indices)
        decayed = tf.raw_ops.ResourceScatterSub(resource=var.handle, indices=indices, updates=shrink)
        with tf.control_dependencies([decayed]):
            return super()._resource_apply_sparse(grad, var, indices, apply_state)

    def get_config(self):
        return super().get_config() | {"weight_decay": self.weight_decay}


class AdamW(DecoupledWeightDecay, Adam):
    """kerasft's `Adam` with decoupled weight decay, every embedding row decayed each step.

    >>> optimizer = AdamW(learning_rate=0.1, weight_decay=0.5)
    >>> kernel, bias = tf.Variable(tf.ones([1, 2]), name="kernel"), tf.Variable(tf.ones([2]), name="bias")
    >>> _ = optimizer.apply_gradients([(tf.zeros([1, 2]), kernel), (tf.zeros([2]), bias)])
    >>> # no gradient, so Adam moved nothing: the kernel shrank by 0.1 x 0.5 of itself, the bias did not
    >>> kernel.numpy().astype(float).round(6).tolist(), bias.numpy().astype(float).round(6).tolist()
    ([[0.95, 0.95]], [1.0, 1.0])
    """


class LazyAdamW(DecoupledWeightDecay, LazyAdam):
    """`LazyAdam` with decoupled weight decay: an embedding row is decayed in the steps that update it."""
