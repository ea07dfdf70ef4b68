"""The multi-label loss of ``train.class_weight=balanced``: binary cross-entropy on logits, each label's positives
weighted (kerasft.class_weights.positive_weights)::

    loss = PositiveWeightedBinaryCrossentropy([3.0, 1.0, 9.0])   # one weight per label, in label id order
    model.compile(optimizer, loss, metrics=[...])

Per element it is ``tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight)``, PyTorch's
``BCEWithLogitsLoss(pos_weight=...)``: ``-(w * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))``;
then the mean over the labels, as Keras' ``BinaryCrossentropy``, and Keras' reduction over the batch.
With every weight 1 it is ``BinaryCrossentropy(from_logits=True)``. It is a `keras.losses.Loss` with
`get_config`, registered with Keras, so that a compiled model's loss can be serialized and rebuilt.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="kerasft")
class PositiveWeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy from logits with ``positive_weights[j]`` on the positive examples of label ``j``."""

    def __init__(self, positive_weights, name: str = "positive_weighted_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.positive_weights = [float(weight) for weight in positive_weights]

    def call(self, y_true, y_pred):
        # float32 whatever the model's policy (kerasft.precision keeps the head's logits float32 already)
        logits = tf.cast(y_pred, tf.float32)
        labels = tf.cast(y_true, tf.float32)
        pos_weight = tf.constant(self.positive_weights, dtype=tf.float32)
        losses = tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight=pos_weight)
        return tf.reduce_mean(losses, axis=-1)

    def get_config(self) -> dict:
        return super().get_config() | {"positive_weights": self.positive_weights}
