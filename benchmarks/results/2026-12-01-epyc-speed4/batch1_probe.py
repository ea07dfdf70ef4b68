"""Batch 1: the raw-text signature against predict_ids and the bare model, and where the signature's time goes."""
import sys, time, tempfile, collections, json
from pathlib import Path
import tensorflow as tf, tf_keras as keras
from kerasft import export, serve, model as models
from kerasft.recipe import packaged_minilm
serve.use_serving_threads()
ck = packaged_minilm()
keras.utils.set_random_seed(0)
tok = models.load_tokenizer(ck)
m = models.build_classifier(ck, list("abcdef"))
work = Path(tempfile.mkdtemp())
module = export.TextClassifierModule.without_optimizer(m, tok, list("abcdef"), 512)
path, _ = export.export_model(module, work / "export" / "b")
loaded = tf.saved_model.load(str(path))
text_fn = loaded.signatures["serving_default"]
ids_fn = loaded.signatures["predict_ids"]
texts = [l.rsplit(";", 1)[0] for l in open(sys.argv[1])][:200]
enc = [tok(t) for t in texts]
def timeit(f, n=200):
    for i in range(20): f(i)
    t = time.perf_counter()
    for i in range(n): f(i)
    return 1000 * (time.perf_counter() - t) / n
copy = module.model
bare = tf.function(lambda ids, mask: copy({"input_ids": ids, "attention_mask": mask}, training=False).logits, reduce_retracing=True)
tok_only = tf.function(lambda t: module.text_tokenizer(t)["input_ids"])
for rnd in range(2):
    r = {
        "text_signature_ms": timeit(lambda i: text_fn(text=tf.constant([texts[i]]))["label"].numpy()),
        "ids_signature_ms": timeit(lambda i: ids_fn(input_ids=tf.constant([enc[i]["input_ids"]], tf.int32), attention_mask=tf.constant([enc[i]["attention_mask"]], tf.int32))["label"].numpy()),
        "bare_model_ms": timeit(lambda i: bare(tf.constant([enc[i]["input_ids"]], tf.int32), tf.constant([enc[i]["attention_mask"]], tf.int32)).numpy()),
        "tokenizer_only_ms": timeit(lambda i: tok_only(tf.constant([texts[i]])).numpy()),
    }
    print(json.dumps({k: round(v, 3) for k, v in r.items()}))
from tensorflow.tsl.profiler.protobuf import xplane_pb2
with tempfile.TemporaryDirectory() as d:
    tf.profiler.experimental.start(d)
    for i in range(50): text_fn(text=tf.constant([texts[i]]))["label"].numpy()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace(); space.ParseFromString(next(Path(d).rglob("*.xplane.pb")).read_bytes())
ms = collections.Counter(); count = collections.Counter()
for plane in (p for p in space.planes if p.name == "/host:CPU"):
    names = {k: md.name for k, md in plane.event_metadata.items()}
    for e in (e for l in plane.lines for e in l.events):
        n = names.get(e.metadata_id, "")
        op_name, _, op_type = n.rpartition(":")
        if op_name and op_type and not op_type.startswith((" ", ":")) and "::" not in n:
            ms[op_type] += e.duration_ps / 1e9 / 50; count[op_type] += 1 / 50
print("ops per call", round(sum(count.values())), "op ms per call", round(sum(ms.values()), 2))
for k, v in ms.most_common(20): print(f"{v:7.3f} ms {count[k]:6.1f}x {k}")
