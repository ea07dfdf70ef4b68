"""Step-by-step times of the kerasft contender's epoch: where the fixed seconds at 2048 samples go."""
import sys, time, json
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))  # benchmarks/
import numpy as np, tf_keras as keras
import train_throughput as tt

times, marks = [], {}
class Steps(keras.callbacks.Callback):
    def on_train_begin(self, logs=None): marks["train_begin"] = time.perf_counter()
    def on_train_batch_begin(self, batch, logs=None):
        self.t = time.perf_counter()
        marks.setdefault("first_batch_begin", self.t)
    def on_train_batch_end(self, batch, logs=None):
        times.append(time.perf_counter() - self.t)
        marks["last_batch_end"] = time.perf_counter()
    def on_train_end(self, logs=None): marks["train_end"] = time.perf_counter()

real_fit = keras.Model.fit
def fit(self, *a, callbacks=None, **k):
    marks["fit_called"] = time.perf_counter()
    out = real_fit(self, *a, callbacks=[*(callbacks or []), Steps()], **k)
    marks["fit_returned"] = time.perf_counter()
    return out
keras.Model.fit = fit
from kerasft.recipe import packaged_minilm
r = tt.run_kerasft("kerasft", sys.argv[1], packaged_minilm(), 32, int(sys.argv[2]))
t = np.array(times)
print(json.dumps({"seconds": r["seconds"], "steps": len(t), "sum_steps": t.sum(), "first": t[0], "median": float(np.median(t)),
  "steps_over_1.5x_median": int((t[1:] > 1.5 * np.median(t)).sum()), "excess_over_median_after_first": float(np.clip(t[1:] - np.median(t), 0, None).sum()),
  "fit_setup": marks["train_begin"] - marks["fit_called"], "before_first_batch": marks["first_batch_begin"] - marks["train_begin"], "after_last_batch": marks["train_end"] - marks["last_batch_end"], "fit_whole": marks["fit_returned"] - marks["fit_called"], "fit_teardown": marks["fit_returned"] - marks["train_end"],
  "first10": [round(x, 3) for x in t[:10]]}, indent=1))
