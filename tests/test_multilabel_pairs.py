"""Multi-label data and sentence pairs, stage by stage: loading, labels, pair tokens, batches, loss, metrics,
thresholds, the export's answers, and bad input refused in one line before anything is written."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tensorflow as tf
from multilabel_pairs_data import (
    EMOTIONS,
    goemotions_overrides,
    mrpc_overrides,
    recipe_with,
    write_goemotions,
    write_mrpc,
)
from sklearn.metrics import accuracy_score, classification_report, f1_score

from kerasft.data import LABEL, TEXT, TEXT_PAIR, load_splits
from kerasft.errors import UserError
from kerasft.recipe import apply_overrides, load_recipe
from kerasft.tokenizing import tokenize

# --- data --------------------------------------------------------------------------------------------------------


def test_goemotions_tsv_through_the_recipe_gives_multi_hot_labels_named_by_the_file(tmp_path):
    folder = write_goemotions(tmp_path / "go")
    data = load_splits(recipe_with("goemotions", goemotions_overrides(folder)).data, seed=42)
    assert data.multi_label and not data.pairs and data.label_names == EMOTIONS
    cells = [line.split("\t")[1] for line in (folder / "train.tsv").read_text().splitlines()]
    expected = np.zeros((len(cells), len(EMOTIONS)), dtype=np.float32)
    for row, cell in enumerate(cells):
        for label in filter(None, cell.split(",")):
            expected[row, int(label)] = 1.0
    np.testing.assert_array_equal(np.asarray(data.splits["train"][LABEL]), expected)
    assert "" in cells and not expected[cells.index("")].any()  # an empty cell: none of the labels
    assert len(data.splits["validation"]) == 16 and len(data.splits["test"]) == 16


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_label_names_come_from_the_labels_when_not_given(tmp_path, kind):
    rows = [("so happy", ["joy", "love"]), ("so sad", ["sadness"]), ("fine", []), ("ok", ["joy"])]
    path = tmp_path / f"train.{kind}"
    if kind == "csv":
        path.write_text("text,label\n" + "".join(f'{text},"{",".join(labels)}"\n' for text, labels in rows))
    else:
        path.write_text("".join(json.dumps({"text": text, "label": labels}) + "\n" for text, labels in rows))
    recipe = apply_overrides(recipe_with("goemotions", []), [f"data.train={path}", "data.multi_label=true"])
    from kerasft.data import encode_multi_labels, load_file

    split = load_file(str(path))
    from datasets import DatasetDict

    encoded, names = encode_multi_labels(DatasetDict({"train": split}), recipe.data.label_sep)
    assert names == ["joy", "love", "sadness"]
    assert encoded["train"][LABEL] == [[1, 1, 0], [0, 0, 1], [0, 0, 0], [1, 0, 0]]


@pytest.mark.parametrize(
    "cell, names, expected",
    [
        ("0,7", "emotions.txt", "label id 7, out of range for the 4 names of data.label_names (ids 0 to 3)"),
        ("joy,rage", "anger,gratitude,joy,neutral", "label 'rage', which is not in data.label_names"),
    ],
)
def test_bad_multi_label_cells_are_refused(tmp_path, cell, names, expected):
    folder = write_goemotions(tmp_path / "go")
    with (folder / "test.tsv").open("a") as handle:
        handle.write(f"a bad row\t{cell}\tx\n")
    overrides = goemotions_overrides(folder)
    overrides[-1] = f"data.label_names={folder / names if names.endswith('.txt') else names}"
    with pytest.raises(UserError, match=re.escape(f"the test split has {expected}")):
        load_splits(recipe_with("goemotions", overrides).data, seed=42)


def test_mrpc_tsv_through_the_recipe_reads_quotes_as_characters_and_names_the_labels(tmp_path):
    folder = write_mrpc(tmp_path / "mrpc")
    data = load_splits(recipe_with("mrpc", mrpc_overrides(folder)).data, seed=42)
    assert data.pairs and not data.multi_label and data.label_names == ["not_equivalent", "equivalent"]
    lines = (folder / "msr_paraphrase_train.tsv").read_text().splitlines()[1:]
    assert sum(len(data.splits[name]) for name in ("train", "validation")) == len(lines)  # validation carved
    texts = set(data.splits["train"][TEXT]) | set(data.splits["validation"][TEXT])
    assert {line.split("\t")[3] for line in lines} == texts and any(text.startswith('"') for text in texts)
    assert set(data.splits["test"][TEXT_PAIR]) == {
        line.split("\t")[4] for line in (folder / "msr_paraphrase_test.tsv").read_text().splitlines()[1:]
    }


def test_the_pair_and_multi_label_recipes_keep_the_settings_their_quality_was_measured_with():
    """BENCHMARKS.md measured both recipes level with the Trainer only with random batches (and, for GoEmotions,
    PyTorch's normal head draw); with kerasft's length-grouped default MRPC trailed by 4.9 points at 1e-4."""
    mrpc, goemotions = recipe_with("mrpc", []), recipe_with("goemotions", [])
    assert mrpc.train.group_by_length is False and mrpc.train.learning_rate == 2e-5
    assert goemotions.train.group_by_length is False and goemotions.model.head_init == "normal"


def test_quotes_that_join_lines_are_refused_naming_data_quoting(tmp_path):
    folder = write_mrpc(tmp_path / "mrpc")
    with pytest.raises(UserError, match=r"msr_paraphrase_train.tsv: 41 lines but \d+ rows .* set data.quoting=none"):
        load_splits(recipe_with("mrpc", [*mrpc_overrides(folder), "data.quoting=csv"]).data, seed=42)


def test_pair_problems_are_refused(tmp_path):
    folder = write_mrpc(tmp_path / "mrpc")
    with pytest.raises(UserError, match="train split has no text pair column 'sentence2'"):
        load_splits(recipe_with("mrpc", [*mrpc_overrides(folder), "data.text_pair_column=sentence2"]).data, seed=1)
    lines = (folder / "msr_paraphrase_test.tsv").read_text().splitlines()
    lines[3] = "\t".join(lines[3].split("\t")[:4] + [" "])
    (folder / "msr_paraphrase_test.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="the test split has 1 empty or missing pair texts .* data row 3"):
        load_splits(recipe_with("mrpc", mrpc_overrides(folder)).data, seed=1)


@pytest.mark.parametrize("text, value", [("0.3", 0.3), ("tune", "tune"), ("0.999", 0.999)])
def test_threshold_takes_a_number_or_tune(text, value):
    recipe = apply_overrides(load_recipe_for_test(), [f"train.threshold={text}"])
    assert recipe.train.threshold == value


@pytest.mark.parametrize("text", ["0", "1", "1.5", "-0.2", "auto"])
def test_threshold_outside_zero_one_is_refused(text):
    with pytest.raises(UserError, match="train.threshold must be a number between 0 and 1 .* or tune"):
        apply_overrides(load_recipe_for_test(), [f"train.threshold={text}"])


def test_class_weights_are_taken_by_multi_label_recipes():
    recipe = apply_overrides(load_recipe_for_test(), ["train.class_weight=balanced"])
    assert recipe.data.multi_label and recipe.train.class_weight == "balanced"


def load_recipe_for_test():
    from conftest import REPO

    return load_recipe(REPO / "recipes" / "goemotions.py")


# --- pair tokens, batches --------------------------------------------------------------------------------------------


def test_pair_tokens_equal_the_python_tokenizer_and_the_in_graph_tokenizer_with_longest_first_truncation(
    tiny_checkpoint,
):
    from datasets import Dataset, DatasetDict

    from kerasft.graph_tokenizers import for_tokenizer
    from kerasft.model import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_checkpoint))
    long, short = "where is my parcel " * 6, "refund please"
    first, second = [long, short, long, "", "the app crashes"], [short, long, long, "hi", ""]
    split = Dataset.from_dict({TEXT: first, TEXT_PAIR: second, LABEL: [0, 1, 0, 1, 0]})
    tokenized = tokenize(DatasetDict({"test": split}), tokenizer, max_length=16)["test"]
    expected = tokenizer(first, second, truncation=True, max_length=16)
    for name in ("input_ids", "token_type_ids"):
        assert tokenized[name] == expected[name]
    assert tokenized.column_names == [LABEL, "input_ids", "token_type_ids"]  # no texts; no mask: the batches build it
    assert max(map(len, tokenized["input_ids"])) == 16  # truncated, longest first
    in_graph = for_tokenizer(tokenizer, max_length=16, verify=False)(tf.constant(first), text_pair=tf.constant(second))
    for row, ids in enumerate(tokenized["input_ids"]):
        assert in_graph["input_ids"].numpy()[row, : len(ids)].tolist() == ids
        assert in_graph["token_type_ids"].numpy()[row, : len(ids)].tolist() == tokenized["token_type_ids"][row]
    assert 1 in tokenized["token_type_ids"][1]  # the second text is segment 1


def test_batches_pad_token_type_ids_and_carry_float_multi_hot_labels(tiny_checkpoint):
    from kerasft.batching import PadToLongest
    from kerasft.model import load_tokenizer

    collate = PadToLongest(load_tokenizer(str(tiny_checkpoint)))
    examples = [
        {"input_ids": [2, 7, 3, 9, 3], "token_type_ids": [0, 0, 0, 1, 1], "attention_mask": [1] * 5, LABEL: [1.0, 0.0]},
        {"input_ids": [2, 8, 3], "token_type_ids": [0, 0, 0], "attention_mask": [1] * 3, LABEL: [0.0, 0.0]},
    ]
    batch = collate(examples)
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
    assert batch[LABEL].dtype == np.float32 and batch[LABEL].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert collate([{**examples[0], LABEL: 1}])[LABEL].dtype == np.int64  # single-label: class ids


# --- loss and metrics ------------------------------------------------------------------------------------------------


def test_multi_label_model_trains_on_binary_cross_entropy_of_its_logits(tiny_checkpoint):
    from kerasft.model import build_classifier, compile_classifier, is_multi_label, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_checkpoint))
    model = build_classifier(str(tiny_checkpoint), EMOTIONS, multi_label=True)
    compile_classifier(model, 1e-3, threshold=0.4)
    assert is_multi_label(model.config) and model.config.problem_type == "multi_label_classification"
    inputs = dict(
        tokenizer(["i am happy", "thank you so much", "where is my parcel"], padding=True, return_tensors="np")
    )
    labels = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    logits = model(inputs, training=False).logits.numpy()
    probabilities = 1 / (1 + np.exp(-logits))
    expected = -(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities)).mean()
    figures = model.evaluate(inputs, labels, verbose=0, return_dict=True)
    assert figures["loss"] == pytest.approx(expected, rel=1e-4)
    predicted = probabilities >= 0.4
    assert figures["accuracy"] == pytest.approx(accuracy_score(labels > 0.5, predicted))
    assert figures["micro_f1"] == pytest.approx(f1_score(labels, predicted, average="micro", zero_division=0))
    before = model.get_weights()[-1].copy()
    model.fit(inputs, labels, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_weights()[-1])  # the head learned from those labels


def test_positive_weighted_loss_is_tfs_weighted_cross_entropy_averaged_and_survives_serialization():
    import tf_keras as keras

    from kerasft.losses import PositiveWeightedBinaryCrossentropy

    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0]], dtype=np.float32)
    logits = np.array([[2.0, -1.0, 0.5], [-0.3, 0.2, 1.5], [0.1, -2.0, -0.7], [1.2, 0.4, -0.1]], dtype=np.float32)
    weights = [3.0, 1.0, 0.25]
    loss = PositiveWeightedBinaryCrossentropy(weights)
    expected = tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight=np.float32(weights)).numpy().mean()
    assert float(loss(labels, logits)) == pytest.approx(float(expected), rel=1e-6)
    plain = float(keras.losses.BinaryCrossentropy(from_logits=True)(labels, logits))
    assert float(loss(labels, logits)) != pytest.approx(plain, rel=1e-3)  # the weights change the loss
    assert float(PositiveWeightedBinaryCrossentropy([1.0] * 3)(labels, logits)) == pytest.approx(plain, rel=1e-5)
    half = loss(labels, tf.constant(logits, dtype=tf.float16))  # mixed precision logits: the loss is float32
    assert half.dtype == tf.float32 and float(half) == pytest.approx(float(expected), rel=1e-2)
    rebuilt = keras.losses.deserialize(keras.losses.serialize(loss))  # get_config: a saved model's loss comes back
    assert type(rebuilt) is PositiveWeightedBinaryCrossentropy and rebuilt.positive_weights == weights
    assert float(rebuilt(labels, logits)) == pytest.approx(float(expected), rel=1e-6)


def test_balanced_multi_label_session_trains_on_each_labels_positive_weights_and_records_them(
    tmp_path, tiny_checkpoint
):
    import tf_keras as keras

    from kerasft.class_weights import positive_weights
    from kerasft.losses import PositiveWeightedBinaryCrossentropy
    from kerasft.session import Session

    folder = write_goemotions(tmp_path / "go")
    overrides = [f"model.checkpoint={tiny_checkpoint}", "model.max_length=32", "train.class_weight=balanced"]
    session = Session(recipe_with("goemotions", [*goemotions_overrides(folder), *overrides]))
    try:
        model = session.model
    finally:  # the session turns on Keras' tf.random.Generator dropout for the whole process: the other tests' default
        keras.backend.experimental.disable_tf_random_generator()
    expected = positive_weights(np.asarray(session.data.splits["train"][LABEL]))
    assert not np.allclose(expected, 1.0) and np.isfinite(expected).all()
    assert isinstance(model.loss, PositiveWeightedBinaryCrossentropy)
    assert model.loss.positive_weights == pytest.approx(expected.tolist())
    assert session.class_weights is None  # nothing for fit(class_weight=...): the weights are in the loss
    assert session.manifest()["class_weights"] == pytest.approx(dict(zip(EMOTIONS, expected.tolist())))

    tokenizer = session.tokenizer
    texts = ["i am happy", "thank you so much", "where is my parcel", "i am so angry"]
    inputs = dict(tokenizer(texts, padding=True, return_tensors="np"))
    labels = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=np.float32)
    logits = model(inputs, training=False).logits
    weighted = tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight=np.float32(expected))
    assert model.evaluate(inputs, labels, verbose=0, return_dict=True)["loss"] == pytest.approx(
        float(tf.reduce_mean(weighted)), rel=1e-4
    )
    history = model.fit(inputs, labels, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_multi_label_metrics_equal_scikit_learn():
    from kerasft.metrics import MultiLabelF1, SubsetAccuracy, report_from_label_counts

    rng = np.random.default_rng(3)
    truth = (rng.random((57, 5)) < 0.3).astype(np.float32)
    truth[:, 4] = 0  # a label nobody has: zero_division=0, as scikit-learn
    logits = rng.normal(size=(57, 5)).astype(np.float32) + 1.5 * truth
    predicted = 1 / (1 + np.exp(-logits)) >= 0.6
    micro, macro, subset = MultiLabelF1(5, 0.6, "micro"), MultiLabelF1(5, 0.6, "macro"), SubsetAccuracy(0.6)
    for start in range(0, 57, 20):  # streamed over batches
        for metric in (micro, macro, subset):
            metric.update_state(truth[start : start + 20], logits[start : start + 20])
    assert float(micro.result()) == pytest.approx(f1_score(truth, predicted, average="micro", zero_division=0))
    assert float(macro.result()) == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert float(subset.result()) == pytest.approx(accuracy_score(truth > 0.5, predicted))
    names = ["a", "b", "c", "d", "e"]
    expected = classification_report(truth > 0.5, predicted, target_names=names, digits=4, zero_division=0)
    got = report_from_label_counts(micro.label_counts(), names)
    assert [line for line in expected.splitlines() if "samples avg" not in line] == got.splitlines()


def test_tuned_thresholds_separate_the_validation_examples_for_the_best_f1():
    from kerasft.metrics import multi_label_scores, tune_thresholds

    rng = np.random.default_rng(0)
    truth = (rng.random((200, 3)) < 0.3).astype(np.float32)
    truth[:, 2] = 0
    # label 0: positives score 0.2-0.4, negatives 0-0.2: 0.5 finds none, the tuned threshold all of them
    probabilities = np.where(truth > 0, 0.2 + 0.2 * rng.random((200, 3)), 0.2 * rng.random((200, 3)))
    probabilities[:, 1] = np.where(truth[:, 1] > 0, 0.7, 0.6) + 0.05 * rng.random(200)  # overlapping scores
    thresholds = tune_thresholds(truth, probabilities)
    assert all(0 < value < 1 for value in thresholds) and thresholds[2] == 0.5  # no positives: nothing to tune on
    scores_0 = probabilities[:, 0]
    assert scores_0[truth[:, 0] == 0].max() < thresholds[0] < scores_0[truth[:, 0] > 0].min()
    for label in range(2):
        best = max(
            f1_score(truth[:, label], probabilities[:, label] >= candidate, zero_division=0)
            for candidate in np.unique(probabilities[:, label])
        )
        assert f1_score(truth[:, label], probabilities[:, label] >= thresholds[label]) == pytest.approx(best)
    tuned, half = multi_label_scores(truth, probabilities, thresholds), multi_label_scores(truth, probabilities, 0.5)
    assert tuned["micro_f1"] > half["micro_f1"]
    assert set(tuned) >= {"micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "weighted_f1"}


# --- the export -------------------------------------------------------------------------------------------------------

PAIRS = [
    ("i am happy", "thank you so much"),
    ("where is my parcel", "i am so angry " * 20),  # truncated, longest first
    ("the app crashes at login", "please refund my order"),
    ("", "hi"),
]


@pytest.fixture(scope="module")
def served(pair_export):
    """The export loaded once, as a model server loads it."""
    import tensorflow_text  # noqa: F401  registers the tokenizer ops

    return tf.saved_model.load(str(pair_export[0]))


@pytest.fixture(scope="module")
def pair_export(tiny_checkpoint, tmp_path_factory):
    """A multi-label sentence-pair model (the tiny BERT, untrained head) exported with one threshold per label."""
    from kerasft.evaluate import predict_texts
    from kerasft.export import Parity, TextClassifierModule, export_model
    from kerasft.model import build_classifier, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_checkpoint))
    model = build_classifier(str(tiny_checkpoint), EMOTIONS, multi_label=True)
    texts, pairs = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    probabilities = predict_texts(model, tokenizer, texts, 32, 4, pairs=pairs)
    # Each label's threshold in the middle of the widest gap between its sorted probabilities: some answers above, some
    # below, none within float noise of it. (The median sat 1e-7 from a probability of two near-equal rows, so the
    # export's answer flipped with the order of its float sums.)
    ordered = np.sort(probabilities, axis=0)
    widest = np.diff(ordered, axis=0).argmax(axis=0)
    labels = np.arange(probabilities.shape[1])
    thresholds = ((ordered[widest, labels] + ordered[widest + 1, labels]) / 2).tolist()
    module = TextClassifierModule.without_optimizer(model, tokenizer, EMOTIONS, 32, pairs=True, thresholds=thresholds)
    parity = Parity(texts, probabilities, pairs=pairs).with_probe_texts(model, tokenizer, 32, 4)
    path, facts = export_model(module, tmp_path_factory.mktemp("export") / "pairs", parity)
    return path, facts, probabilities, thresholds, tokenizer


@pytest.mark.slow  # an export of its own (SavedModel written, reloaded, parity-checked): about a minute
def test_pair_export_answers_labels_above_their_thresholds(pair_export, served):
    path, facts, probabilities, thresholds, _ = pair_export
    assert facts["text_pair"] and facts["multi_label"] and facts["thresholds"] == pytest.approx(thresholds)
    assert facts["parity"]["label_agreement"] == 1.0 and facts["parity"]["probe_texts"] == 9
    serve = served.signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"text", "text_pair"}
    out = {
        name: value.numpy()
        for name, value in serve(text=[a for a, _ in PAIRS], text_pair=[b for _, b in PAIRS]).items()
    }
    np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-5)
    assert out["predicted"].dtype == bool
    np.testing.assert_array_equal(out["predicted"], probabilities >= np.array(thresholds, dtype=np.float32))
    for row in range(len(PAIRS)):
        count = int(out["label_count"][row])
        chosen = sorted(np.flatnonzero(out["predicted"][row]), key=lambda label: -probabilities[row, label])
        assert [label.decode() for label in out["labels"][row][:count]] == [EMOTIONS[label] for label in chosen]
        np.testing.assert_allclose(out["scores"][row][:count], probabilities[row, chosen], atol=1e-5)
        assert set(out["labels"][row][count:]) <= {b""} and not out["scores"][row][count:].any()


@pytest.mark.slow
def test_pair_export_outputs_travel_through_tf_serving_rest_rows_and_grpc(served):
    """Every output is a dense tensor with the batch as its first dimension: REST's row format ("instances" ->
    "predictions": one JSON object per example) and gRPC's TensorProto carry them as they are."""
    pytest.importorskip("tensorflow_serving")
    from tensorflow_serving.apis import predict_pb2

    serve = served.signatures["serving_default"]
    request = predict_pb2.PredictRequest()
    for name, values in (("text", [PAIRS[0][0], PAIRS[2][0]]), ("text_pair", [PAIRS[0][1], PAIRS[2][1]])):
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
    outputs = serve(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()})
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        assert value.shape[0] == 2  # REST's row format needs the batch first in every output
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    reply = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    assert set(reply) == {"probabilities", "predicted", "labels", "scores", "label_count"}
    rows = [
        {
            name: (value[row].astype(str) if value.dtype == object else value[row]).tolist()
            for name, value in reply.items()
        }
        for row in range(2)
    ]
    assert (
        json.loads(json.dumps({"predictions": rows}))["predictions"][0]["predicted"] == reply["predicted"][0].tolist()
    )


@pytest.mark.slow
def test_predict_ids_takes_token_type_ids_for_pairs(pair_export, served):
    _, _, probabilities, _, tokenizer = pair_export
    predict_ids = served.signatures["predict_ids"]
    assert set(predict_ids.structured_input_signature[1]) == {"input_ids", "attention_mask", "token_type_ids"}
    ids = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, truncation=True, max_length=32)
    outputs = predict_ids(
        **{name: tf.constant(ids[name], tf.int32) for name in predict_ids.structured_input_signature[1]}
    )
    np.testing.assert_allclose(outputs["probabilities"].numpy(), probabilities, atol=1e-5)


@pytest.mark.slow
def test_kerasft_predict_on_pairs_lists_every_label_above_its_threshold(pair_export):
    from kerasft.serve import predict

    path, _, probabilities, thresholds, _ = pair_export
    answers = predict(path, [a for a, _ in PAIRS], batch_size=3, pairs=[b for _, b in PAIRS])
    for row, answer in enumerate(answers):
        above = {EMOTIONS[label] for label in range(4) if probabilities[row, label] >= np.float32(thresholds[label])}
        assert {item["label"] for item in answer["labels"]} == above
        assert [item["score"] for item in answer["labels"]] == sorted(
            (item["score"] for item in answer["labels"]), reverse=True
        )
    with pytest.raises(UserError, match="classifies sentence pairs: give --pair TEXT"):
        predict(path, ["only one text"])


# --- bad input through the command ------------------------------------------------------------------------------------


def _spoil(folder, split: str, line: str) -> None:
    with (folder / split).open("a") as handle:
        handle.write(line + "\n")


BAD_INPUT = {  # case -> (recipe, how the files are spoiled, extra overrides, the message)
    "label not in data.label_names": (
        "goemotions",
        lambda folder: _spoil(folder, "test.tsv", "a row\tjoy,rage\tx"),
        ["data.label_names=anger,gratitude,joy,neutral"],
        "the test split has label 'rage', which is not in data.label_names",
    ),
    "label id out of range": (
        "goemotions",
        lambda folder: _spoil(folder, "dev.tsv", "a row\t2,9\tx"),
        [],
        "the validation split has label id 9, out of range for the 4 names of data.label_names",
    ),
    "missing pair column": (
        "mrpc",
        lambda folder: None,
        ["data.text_pair_column=#3 String"],
        "train split has no text pair column '#3 String'",
    ),
    "empty pair text": (
        "mrpc",
        lambda folder: _spoil(folder, "msr_paraphrase_test.tsv", "1\t7\t8\tsomething said\t"),
        [],
        "the test split has 1 empty or missing pair texts",
    ),
    "threshold above 1": ("goemotions", lambda folder: None, ["train.threshold=1.5"], "train.threshold must be"),
    "threshold of 0": ("goemotions", lambda folder: None, ["train.threshold=0"], "train.threshold must be"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gets_one_line_exit_code_2_and_nothing_written(case, tmp_path, tiny_checkpoint):
    from click.testing import CliRunner
    from multilabel_pairs_data import goemotions_overrides as go
    from multilabel_pairs_data import mrpc_overrides as mrpc

    from conftest import REPO
    from kerasft.cli import main

    name, spoil, extra, expected = BAD_INPUT[case]
    folder = (write_goemotions if name == "goemotions" else write_mrpc)(tmp_path / name)
    spoil(folder)
    overrides = (go if name == "goemotions" else mrpc)(folder) + [f"model.checkpoint={tiny_checkpoint}", *extra]
    runs = tmp_path / "runs"
    result = CliRunner().invoke(
        main, ["run", str(REPO / "recipes" / f"{name}.py"), *overrides, "--output-dir", str(runs)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasft: error: ") and expected in lines[0], result.stderr
    assert not runs.exists() or not any(runs.iterdir())
