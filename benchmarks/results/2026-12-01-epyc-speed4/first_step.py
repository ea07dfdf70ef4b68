"""Where the first training step's seconds go: tracing (Python), then the first execution (grappler, kernels)."""
import sys, time, json
import numpy as np, tensorflow as tf, tf_keras as keras
if len(sys.argv) > 2 and sys.argv[1] == "opts":
    tf.config.optimizer.set_experimental_options({k: (k == "disable_meta_optimizer") for k in sys.argv[2].split(",")})
from kerasft import model as models, precision
from kerasft.recipe import packaged_minilm
from kerasft.optimizer import Adam
keras.mixed_precision.set_global_policy("mixed_bfloat16")
keras.backend.experimental.enable_tf_random_generator()
keras.utils.set_random_seed(0)
t0 = time.perf_counter()
m = models.build_classifier(packaged_minilm(), list("abcdef"))
precision.keep_logits_float32(m)
models.compile_classifier(m, 5e-5, optimizer=Adam)
t1 = time.perf_counter()
rng = np.random.default_rng(0)
def batch(w):
    return ({"input_ids": tf.constant(rng.integers(1000, 20000, (32, w))), "attention_mask": tf.ones((32, w), tf.int64)},
            tf.constant(rng.integers(0, 6, 32)))
ds = tf.data.Dataset.from_tensors(batch(24)).repeat(12)
m.make_train_function()
it = iter(ds)
t2 = time.perf_counter()
m.train_function.get_concrete_function(it)  # trace only; a failure here must not fold the trace into the first run
t3 = time.perf_counter()
float(m.train_function(it)["loss"])
t4 = time.perf_counter()
times = []
for _ in range(8):
    s = time.perf_counter(); out = m.train_function(it); float(out["loss"]); times.append(time.perf_counter() - s)
# the dataset above has a fixed shape, so the first new width retraces the function (its 3 s are that trace,
# which `fit` on kerasft's batches of any width does not pay); the widths after it show a new width's own cost
w = []
for width in (16, 32, 40):
    it2 = iter(tf.data.Dataset.from_tensors(batch(width)).repeat(3))
    s = time.perf_counter(); float(m.train_function(it2)["loss"]); first = time.perf_counter() - s
    s = time.perf_counter(); float(m.train_function(it2)["loss"]); second = time.perf_counter() - s
    w.append((width, round(first, 3), round(second, 3)))
print(json.dumps({"build_s": t1 - t0, "trace_s": t3 - t2, "first_run_s": t4 - t3, "steady_step_s": float(np.median(times)),
                  "new_width_first_vs_second": w}))
