"""Export for TF Serving: raw text in, label names out; checked in a TensorFlow-only process."""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import QUICKSTART_DATA, read_rows
from kerasft.export import ExportError, Parity, TextClassifierModule, export_model
from kerasft.graph_tokenizers import for_tokenizer
from kerasft.model import build_classifier, compile_classifier, load_tokenizer

LABELS = ["account", "billing", "delivery", "feedback", "technical"]


def export(model, tokenizer, model_dir, parity=None):
    """Exports as a run does: a copy of ``model`` without its optimizer, max_length 32, into ``model_dir/<next
    version>``."""
    return export_model(TextClassifierModule.without_optimizer(model, tokenizer, LABELS, 32), model_dir, parity)


TRICKY = [
    "",
    "Café crème — naïve façade",
    "日本語のテキスト",
    "emoji 😀🎉 ok",
    "ÀÉÎÕÜ straße",
    "don't\tstop\nnow",
    "\u200b zero width",
    "Ｆｕｌｌｗｉｄｔｈ",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ",
    "ﬁne ligature",
    "a\x00b\x07c",
    "한국어 텍스트",
    "Where's my REFUND?!",
    "  leading   spaces  ",
    "x" * 300,
    "word " * 400,
]


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    """The tiny model after one training step, so Adam has slots that must stay out of the export."""
    from kerasft.evaluate import predict_texts

    tokenizer = load_tokenizer(str(tiny_checkpoint))
    model = build_classifier(str(tiny_checkpoint), LABELS)
    compile_classifier(model, 1e-3)
    rows = read_rows(QUICKSTART_DATA / "train.csv")[:64]
    inputs = dict(
        tokenizer([row["text"] for row in rows], padding=True, truncation=True, max_length=32, return_tensors="np")
    )
    model.fit(inputs, np.array([LABELS.index(row["label"]) for row in rows]), epochs=3, batch_size=16, verbose=0)
    texts = [row["text"] for row in read_rows(QUICKSTART_DATA / "test.csv")[:40]] + TRICKY
    probabilities = predict_texts(model, tokenizer, texts, max_length=32, batch_size=16)
    return model, tokenizer, texts, probabilities


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, tokenizer, texts, probabilities = trained
    root = tmp_path_factory.mktemp("export")
    path, facts = export(model, tokenizer, root / "tiny", Parity(texts, probabilities))
    return path, facts


def test_layout_is_versioned_for_tf_serving(exported):
    path, facts = exported
    assert path.name == "1" and path.parent.name == "tiny"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert [entry.name for entry in path.parent.iterdir()] == ["1"]  # no staging folder left behind
    assert facts["raw_text_signature"] and facts["parity"]["argmax_agreement"] == 1.0
    assert facts["parity"]["max_probability_difference"] <= 1e-4


def test_parity_covers_tricky_and_long_texts(exported, trained):
    _, _, texts, _ = trained
    assert exported[1]["parity"]["examples"] == len(texts)


@pytest.fixture(scope="module")
def minilm_tokenizers(minilm_checkpoint):
    """The packaged MiniLM's Python tokenizer and its in-graph form (built once: building checks it on probe texts)."""
    tokenizer = load_tokenizer(str(minilm_checkpoint))
    in_graph = for_tokenizer(tokenizer, max_length=64)
    return tokenizer, tf.function(in_graph, autograph=False)  # as kerasft.export traces it


# The packaged MiniLM's real vocabulary is in the slow suite, with the other real-checkpoint tests (setup.cfg's marker):
# building and checking its in-graph form took 8-10 s; the fast suite checks the same WordPiece code on a tiny
# vocabulary (tests/test_graph_tokenizers.py).
@pytest.mark.slow
@pytest.mark.parametrize("text", TRICKY)
def test_in_graph_tokens_equal_the_python_tokenizer(minilm_tokenizers, text):
    tokenizer, in_graph = minilm_tokenizers
    got = in_graph(tf.constant([text]))["input_ids"].numpy()[0].tolist()
    assert got == tokenizer(text, truncation=True, max_length=64)["input_ids"]


@pytest.mark.slow
def test_in_graph_tokens_equal_the_python_tokenizer_on_the_quickstart_data(minilm_tokenizers):
    tokenizer, in_graph = minilm_tokenizers
    texts = [
        row["text"] for split in ("train", "validation", "test") for row in read_rows(QUICKSTART_DATA / f"{split}.csv")
    ]
    expected = tokenizer(texts, truncation=True, max_length=64, padding=True, return_tensors="np")
    got = in_graph(tf.constant(texts))
    np.testing.assert_array_equal(got["input_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"].numpy(), expected["attention_mask"])


def test_no_optimizer_state_in_the_export(exported, trained):
    model = trained[0]
    assert model.optimizer.variables()  # Adam has slots in memory...
    path, _ = exported
    variables = tf.train.list_variables(str(path / "variables" / "variables"))
    saved_bytes = sum(int(np.prod(shape)) * 4 for name, shape in variables if shape)
    model_bytes = sum(int(np.prod(weight.shape)) * 4 for weight in model.weights)
    assert saved_bytes <= 1.1 * model_bytes  # ...and none of them in the export (they would triple it)
    assert not [name for name, _ in variables if "optimizer" in name.lower() or "/m/" in name]


@pytest.mark.slow
def test_second_export_takes_the_next_version_and_never_overwrites(trained, exported, tmp_path):
    model, tokenizer, _, _ = trained
    first = tmp_path / "tiny" / "1"
    shutil.copytree(exported[0], first)  # an earlier export's version 1
    stamp = (first / "saved_model.pb").stat().st_mtime_ns
    second, facts = export(model, tokenizer, tmp_path / "tiny")
    assert (second.name, facts["version"]) == ("2", 2)
    assert (first / "saved_model.pb").stat().st_mtime_ns == stamp


def test_predicting_a_labelled_split_and_raw_texts_traces_predict_once(trained):
    """A run predicts its test split (which has labels) and then raw texts (the export's parity check): Keras traces
    `predict` once per input structure, so labels left in the batches cost a second trace."""
    import datasets

    from kerasft.evaluate import predict_split, predict_texts
    from kerasft.tokenizing import tokenize

    model, tokenizer, _, _ = trained
    model.predict_function = None  # Keras makes a new one at the next `predict`: its traces are counted from there
    rows = read_rows(QUICKSTART_DATA / "test.csv")[:12]
    columns = {"text": [row["text"] for row in rows], "label": [LABELS.index(row["label"]) for row in rows]}
    split = tokenize(datasets.Dataset.from_dict(columns), tokenizer, 32)
    assert "label" in split.column_names
    assert predict_split(model, split, tokenizer, 8).shape == (12, len(LABELS))
    assert predict_texts(model, tokenizer, ["hi", "where is my parcel?"], 32, 8).shape == (2, len(LABELS))
    assert model.predict_function.experimental_get_tracing_count() == 1


def test_exporting_traces_each_function_once(trained, tmp_path, monkeypatch):
    """Tracing is most of an export's time: `tf.saved_model.save` must reuse the signatures' traces, not trace the
    module's functions again under its save context (it did while they were tracked attributes of the module)."""
    model, tokenizer, _, _ = trained
    traced = {"_predict_text": 0, "_predict_ids": 0}
    for name in traced:
        original = getattr(TextClassifierModule, name)

        @functools.wraps(original)  # tf.function reads the signature: the original's argument names
        def counting(self, *tensors, name=name, original=original):
            traced[name] += 1
            return original(self, *tensors)

        monkeypatch.setattr(TextClassifierModule, name, counting)
    path, _ = export(model, tokenizer, tmp_path / "tiny")
    assert traced == {"_predict_text": 1, "_predict_ids": 1}
    served = tf.saved_model.load(str(path)).signatures
    assert sorted(served.keys()) == ["predict_ids", "serving_default"]


def test_failed_parity_publishes_nothing(trained, tmp_path):
    model, tokenizer, texts, probabilities = trained
    wrong = np.roll(probabilities, 1, axis=1)
    with pytest.raises(ExportError, match="disagrees"):
        export(model, tokenizer, tmp_path / "tiny", Parity(texts, wrong))
    assert list((tmp_path / "tiny").iterdir()) == []


@pytest.mark.slow
def test_signatures_listed_by_saved_model_cli(exported):
    path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", str(path), "--all"], capture_output=True, text=True, timeout=120
    ).stdout
    text_part = shown.split("signature_def['serving_default']")[1]
    ids_part = shown.split("signature_def['predict_ids']")[1].split("signature_def[")[0]
    assert "inputs['text'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in text_part
    for part in (text_part, ids_part):
        assert "outputs['probabilities'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 5)" in part
        assert "outputs['label_id'] tensor_info:\n        dtype: DT_INT64\n        shape: (-1)" in part
        assert "outputs['label'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in part
        assert "outputs['score'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1)" in part
    for name in ("input_ids", "attention_mask"):
        assert f"inputs['{name}'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1, -1)" in ids_part


TF_ONLY_CLIENT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tokenizer ops, as TF Serving's build does
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    texts = json.loads(sys.stdin.read())
    outputs = serve(text=tf.constant(texts))
    assert "transformers" not in sys.modules and "kerasft" not in sys.modules, "not a TF-only process"
    print(json.dumps({
        "label": [label.decode() for label in outputs["label"].numpy()],
        "score": outputs["score"].numpy().tolist(),
        "label_id": outputs["label_id"].numpy().tolist(),
        "probabilities": outputs["probabilities"].numpy().tolist(),
    }))
""")


@pytest.mark.slow
def test_tensorflow_only_process_answers_raw_text_like_kerasft_predict(exported, trained, tmp_path):
    from conftest import kerasft_in_process

    path, _ = exported
    texts = trained[2]
    client = tmp_path / "client.py"
    client.write_text(TF_ONLY_CLIENT)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    answer = subprocess.run(
        [sys.executable, "-I", str(client), str(path)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    served = json.loads(answer.stdout)
    assert len(served["label"]) == len(texts)
    np.testing.assert_allclose(served["probabilities"], trained[3], atol=1e-4)
    text_file = tmp_path / "texts.txt"
    text_file.write_text("\n".join(text.replace("\n", " ") for text in texts[:40]), encoding="utf-8")
    predicted = kerasft_in_process("predict", path, "--file", text_file, "--json", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    pipeline_like = json.loads(predicted.stdout)
    assert [item["label"] for item in pipeline_like] == served["label"][:40]
    np.testing.assert_allclose([item["score"] for item in pipeline_like], served["score"][:40], atol=1e-6)


@pytest.fixture(scope="module")
def serve(exported):
    import tensorflow_text  # noqa: F401

    return tf.saved_model.load(str(exported[0])).signatures["serving_default"]


@pytest.mark.parametrize("texts", [["one lonely text"], ["", "   "], ["日本語 😀 Ünïcödé"], ["refund " * 1000], []])
def test_edge_batches(serve, texts):
    outputs = serve(text=tf.constant(texts, dtype=tf.string))
    assert outputs["probabilities"].shape == (len(texts), len(LABELS))
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert all(label.decode() in LABELS for label in outputs["label"].numpy())


def test_grpc_predict_request_round_trip(serve):
    """A PredictRequest built as in the README converts into the signature's input, and back into the reply."""
    pytest.importorskip("tensorflow_serving")
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "serving_default"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(["where is my parcel?", "I was charged twice"]))
    assert request.model_spec.signature_name == "serving_default"
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    outputs = serve(**inputs)
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    reply = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    assert set(reply) == {"probabilities", "label_id", "label", "score"}
    assert reply["probabilities"].shape == (2, 5) and reply["label"].dtype == object
    assert [label.decode() for label in reply["label"]] == [LABELS[i] for i in reply["label_id"]]


# Ops that TF Serving's model server links from tensorflow-text (tensorflow_serving/model_servers/BUILD ->
# @org_tensorflow_text//tensorflow_text:ops_lib), as far as this export needs them.
TF_TEXT_OPS_IN_TF_SERVING = {
    "FastWordpieceTokenizeWithOffsets",
    "FastBertNormalize",
    "NormalizeUTF8",
    "CaseFoldUTF8",
    "RegexSplitWithOffsets",
    "WordpieceTokenizeWithOffsets",
}


@pytest.mark.slow
def test_export_uses_only_core_ops_and_tf_serving_text_ops(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((exported[0] / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {
        node.op for function in graph.library.function for node in function.node_def
    }
    ops -= {function.signature.name for function in graph.library.function}
    code = (
        "import sys, json; from tensorflow.python.framework import op_def_registry as r; "
        "print(json.dumps([o for o in json.loads(sys.argv[1]) if r.get(o) is None]))"
    )
    core_missing = json.loads(
        subprocess.run(
            [sys.executable, "-c", code, json.dumps(sorted(ops))], capture_output=True, text=True, timeout=120
        ).stdout
    )
    assert set(core_missing) <= TF_TEXT_OPS_IN_TF_SERVING, core_missing


def test_tokenizer_without_in_graph_form_exports_ids_only_and_says_so(wordlevel_checkpoint, tmp_path):
    tokenizer = load_tokenizer(str(wordlevel_checkpoint))
    model = build_classifier(str(wordlevel_checkpoint), LABELS)
    path, facts = export(model, tokenizer, tmp_path / "words", Parity(["a"], np.zeros((1, 5))))
    assert facts["raw_text_signature"] is False and "takes token ids" in facts["note"]
    assert "parity" not in facts  # nothing to compare: there is no text signature
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"input_ids", "attention_mask"}
    ids = tokenizer(["where is my parcel"], return_tensors="np")
    outputs = signature(
        input_ids=tf.constant(ids["input_ids"], tf.int32), attention_mask=tf.constant(ids["attention_mask"], tf.int32)
    )
    assert outputs["probabilities"].shape == (1, 5)
    from kerasft.errors import UserError
    from kerasft.serve import predict

    with pytest.raises(UserError, match="takes token ids, not text"):
        predict(path.parent, ["hello"])


def test_kerasft_predict_batches_by_length_and_answers_in_input_order(exported, serve):
    from kerasft.serve import predict

    texts = ["refund " * 60, "hi", "where is my parcel", "the app crashes at login " * 8, "ok", "billing " * 25, "x"]
    alone = [serve(text=tf.constant([text]))["score"].numpy()[0] for text in texts]
    answers = predict(exported[0], texts, batch_size=2)
    np.testing.assert_allclose([answer["score"] for answer in answers], alone, atol=1e-5)
    assert [answer["label"] for answer in answers] == [
        serve(text=tf.constant([text]))["label"].numpy()[0].decode() for text in texts
    ]


def shuffled_texts_of_every_length(count: int) -> list[str]:
    words = "where is my parcel i was charged twice the app crashes at login please refund".split()
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=size)) for size in rng.permutation(np.arange(count) % 40)]


def test_a_batch_of_several_chunks_answers_like_one_text_at_a_time_and_like_the_trained_model(exported, trained, serve):
    from kerasft.evaluate import predict_texts
    from kerasft.export import CHUNK

    model, tokenizer, _, _ = trained
    texts = shuffled_texts_of_every_length(
        2 * CHUNK + 5
    )  # 0 to 36 words, beyond max_length: ragged chunks, a short last one
    batched = serve(text=tf.constant(texts))["probabilities"].numpy()
    alone = np.concatenate([serve(text=tf.constant([text]))["probabilities"].numpy() for text in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    np.testing.assert_allclose(batched, predict_texts(model, tokenizer, texts, max_length=32, batch_size=16), atol=1e-4)
    predict_ids = tf.saved_model.load(str(exported[0])).signatures["predict_ids"]
    ids = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="np")
    by_ids = predict_ids(
        input_ids=tf.constant(ids["input_ids"], tf.int32), attention_mask=tf.constant(ids["attention_mask"], tf.int32)
    )
    np.testing.assert_allclose(by_ids["probabilities"].numpy(), batched, atol=1e-5)


class RowEcho(tf.Module):
    """A stand-in model whose logits name the row it saw: [sum of attended ids, attended tokens, columns seen, 0, 0]."""

    config = type("Config", (), {"num_labels": 5})

    def __call__(self, inputs, training=False):
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        rows, width = tf.shape(ids)[0], tf.shape(ids)[1]
        echo = tf.stack(
            [tf.reduce_sum(ids * mask, axis=1), tf.reduce_sum(mask, axis=1), tf.fill([rows], width)], axis=1
        )
        return type("Output", (), {"logits": tf.pad(tf.cast(echo, tf.float64), [[0, 0], [0, 2]])})


def test_each_row_comes_back_in_input_order_seen_whole_in_a_chunk_cut_to_its_own_longest(trained):
    """The tiny trained model answers nearly alike for every text: this stand-in checks the row order exactly."""
    from kerasft.batching import PadToLongest, Plan
    from kerasft.export import CHUNK

    module = TextClassifierModule(RowEcho(), trained[1], LABELS, max_length=64)
    logits_by_length = tf.function(module.logits_by_length)
    for texts in (shuffled_texts_of_every_length(3 * CHUNK + 1), shuffled_texts_of_every_length(1), []):
        tokens = module.text_tokenizer(tf.constant(texts, dtype=tf.string))
        ids, mask = tokens["input_ids"].numpy(), tokens["attention_mask"].numpy()
        logits = logits_by_length(tokens["input_ids"], tokens["attention_mask"]).numpy()
        assert logits.shape == (len(texts), 5) and logits.dtype == np.float32
        np.testing.assert_array_equal(logits[:, 0], (ids * mask).sum(axis=1))  # this row's ids, in this row's place
        lengths = mask.sum(axis=1)
        np.testing.assert_array_equal(logits[:, 1], lengths)  # no attended token cut off
        # the graph cuts the batch as kerasft.batching does in Python: by length, longest first, each chunk
        # padded to its longest
        plan = Plan(len(texts), CHUNK, shuffle=False, lengths=lengths)
        expected_widths = np.zeros(len(texts))
        for chunk in range(plan.batches):
            rows = plan.indices(chunk)
            expected_widths[rows] = PadToLongest(trained[1]).width(int(lengths[rows].max()))
        np.testing.assert_array_equal(logits[:, 2], expected_widths)
        left_padded = logits_by_length(
            tokens["input_ids"][:, ::-1], tokens["attention_mask"][:, ::-1]
        ).numpy()  # a client's own padding
        np.testing.assert_array_equal(left_padded[:, :2], logits[:, :2])


@pytest.mark.slow  # loads the SavedModel and draws the confusion matrix: a few seconds
def test_kerasft_evaluate_scores_a_single_label_export_on_labelled_data(exported, trained, tmp_path):
    from click.testing import CliRunner
    from sklearn.metrics import accuracy_score

    from kerasft.cli import main

    _, _, texts, probabilities = trained
    rows = read_rows(QUICKSTART_DATA / "test.csv")[:40]
    assert [row["text"] for row in rows] == texts[:40]
    result = CliRunner().invoke(
        main, ["evaluate", str(exported[0]), "--data", str(QUICKSTART_DATA / "test.csv"), "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    figures = json.loads((folder / "metrics.json").read_text())["test"]
    all_rows = read_rows(QUICKSTART_DATA / "test.csv")
    assert figures["examples"] == len(all_rows)
    predicted = [LABELS[int(index)] for index in probabilities[:40].argmax(axis=1)]
    with (folder / "predictions.csv").open(newline="", encoding="utf-8") as handle:
        assert [row["predicted"] for row in list(csv.DictReader(handle))[:40]] == predicted
    assert figures["accuracy"] == pytest.approx(
        accuracy_score([row["label"] for row in all_rows], read_column(folder / "predictions.csv", "predicted"))
    )
    assert (folder / "confusion_matrix.png").is_file() and (folder / "classification_report.txt").is_file()
    (tmp_path / "bad.csv").write_text("text,label\nwhere is my parcel,shipping\n")
    result = CliRunner().invoke(
        main, ["evaluate", str(exported[0]), "--data", str(tmp_path / "bad.csv"), "--output-dir", str(tmp_path / "no")]
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and "shipping" in result.stderr
    assert "which is not in the export's labels" in result.stderr
    assert not (tmp_path / "no").exists()


def read_column(path, name: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[name] for row in csv.DictReader(handle)]
