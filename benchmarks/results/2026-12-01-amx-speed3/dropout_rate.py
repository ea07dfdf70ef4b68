import os
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1"); os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf, tf_keras as keras
keras.backend.experimental.enable_tf_random_generator()
keras.utils.set_random_seed(0)
for dtype in ("float32", "bfloat16"):
    layer = keras.layers.Dropout(0.1, dtype=keras.mixed_precision.Policy("mixed_bfloat16" if dtype == "bfloat16" else "float32"))
    x = tf.ones([4000, 2500], dtype)
    y = tf.cast(layer(x, training=True), tf.float32)
    print(dtype, "dropped share %.5f" % float(tf.reduce_mean(tf.cast(y == 0, tf.float32))), "mean %.5f" % float(tf.reduce_mean(y)), "kept value", float(tf.reduce_max(y)))
