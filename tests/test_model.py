"""Model: loading a real PyTorch-format safetensors checkpoint (the packaged MiniLM) and the tiny one."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import adam_algorithm_1
from kerasft.errors import UserError
from kerasft.model import build_classifier, compile_classifier, load_tokenizer
from kerasft.optimizer import Adam, LazyAdam

LABELS = ["anger", "joy", "sadness"]


@pytest.mark.slow  # the real checkpoint (setup.cfg's marker)
def test_minilm_tf_weights_equal_the_safetensors_file(minilm_checkpoint):
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    model = build_classifier(str(minilm_checkpoint), LABELS)
    tensors = load_file(str(minilm_checkpoint / "model.safetensors"))
    matched = set()
    for variable in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            variable.name, start_prefix_to_remove="bert.", tf_weight_shape=variable.shape
        )
        if name.startswith("classifier."):
            continue  # the new head, initialised for our labels
        expected = tensors[name]
        value = variable.numpy()
        if transpose.name != "NO" and value.ndim == 2:
            expected = expected.T
        np.testing.assert_array_equal(value, expected, err_msg=name)
        matched.add(name)
    assert matched == set(tensors) - {"embeddings.position_ids"}
    assert len(matched) == 103  # 104 tensors in the file; position_ids is a buffer, not a weight
    assert model.config.id2label == dict(enumerate(LABELS)) and model.config.label2id == {
        "anger": 0,
        "joy": 1,
        "sadness": 2,
    }
    assert model.classifier.weights[0].shape == (384, 3)


def test_tiny_checkpoint_compiles_and_trains_a_step(tiny_checkpoint):
    tokenizer = load_tokenizer(str(tiny_checkpoint))
    model = build_classifier(str(tiny_checkpoint), LABELS)
    compile_classifier(model, 1e-3)
    inputs = dict(tokenizer(["i am happy", "so sad"], padding=True, return_tensors="np"))
    history = model.fit(inputs, np.array([1, 2]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert (
        type(model.optimizer) is Adam
    )  # the default (train.lazy_adam=false): kerasft.optimizer's, the fused kernel's way
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert all(
        hasattr(getattr(model, step), "autograph_info__") for step in ("train_step", "test_step", "predict_step")
    )  # do_not_convert's mark


# Four steps of sparse (embedding) and dense gradients: token ids repeated within a step, rows seen and then not
STEP_IDS = [
    np.array([3, 7, 3, 9, 0, 3]),
    np.array([1, 1, 2, 5, 8, 9]),
    np.array([4, 4, 4, 4, 4, 4]),
    np.array([6, 0, 2, 2, 7, 11]),
]


def four_steps(optimizer, seed: int = 0):
    """Runs ``optimizer`` over the four steps: (start values, values after, the embedding's slots m and v, the
    steps)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    start = {
        "embedding": rng.normal(size=(50, 4)).astype("float32"),
        "dense": rng.normal(size=(4, 3)).astype("float32"),
    }
    steps = [
        (rng.normal(size=(6, 4)).astype("float32"), ids, rng.normal(size=(4, 3)).astype("float32")) for ids in STEP_IDS
    ]
    variables = {name: tf.Variable(value) for name, value in start.items()}
    for rows, ids, dense in steps:
        sparse = tf.IndexedSlices(tf.constant(rows), tf.constant(ids), dense_shape=tf.constant([50, 4]))
        optimizer.apply_gradients([(sparse, variables["embedding"]), (tf.constant(dense), variables["dense"])])
    after = {name: variable.numpy() for name, variable in variables.items()}
    slots = (
        {slot: optimizer.get_slot(variables["embedding"], slot).numpy() for slot in "mv"}
        if hasattr(optimizer, "get_slot")
        else None
    )
    return start, after, slots, steps


def test_adam_is_algorithm_1_on_embedding_and_dense_gradients():
    """kerasft's Adam against the Adam paper's Algorithm 1 (torch.optim.Adam's update) over the four steps: repeated
    token ids add up, and every embedding row moves by its decaying moments, seen in this step or not."""
    rate = 0.1
    start, ours, _, steps = four_steps(Adam(learning_rate=rate))
    embedding_gradients = []
    for rows, ids, _ in steps:
        gradient = np.zeros((50, 4))
        np.add.at(gradient, ids, rows)
        embedding_gradients.append(gradient)
    dense_gradients = [dense for _, _, dense in steps]
    np.testing.assert_allclose(
        ours["embedding"], adam_algorithm_1(start["embedding"], embedding_gradients, rate)[-1], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        ours["dense"], adam_algorithm_1(start["dense"], dense_gradients, rate)[-1], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(ours["embedding"][20:], start["embedding"][20:])  # rows never seen never move


def test_lazy_adam_moves_only_the_rows_with_a_gradient_by_adams_update():
    """LazyAdam against a NumPy LazyAdam over the four steps; dense weights as kerasft's Adam; and not Adam on the
    embedding."""
    rate, beta_1, beta_2, epsilon = 0.1, 0.9, 0.999, 1e-7
    start, ours, moments, steps = four_steps(LazyAdam(learning_rate=rate), seed=1)
    weights, m, v = start["embedding"].astype("float64"), np.zeros((50, 4)), np.zeros((50, 4))
    for step, (rows, ids, _) in enumerate(steps, start=1):
        grad = np.zeros((50, 4))
        np.add.at(grad, ids, rows)  # repeated ids add up
        seen = np.unique(ids)
        m[seen] = beta_1 * m[seen] + (1 - beta_1) * grad[seen]
        v[seen] = beta_2 * v[seen] + (1 - beta_2) * grad[seen] ** 2
        m_hat, v_hat = m[seen] / (1 - beta_1**step), v[seen] / (1 - beta_2**step)
        weights[seen] -= rate * m_hat / (np.sqrt(v_hat) + epsilon)  # Algorithm 1's form, as kerasft's Adam
    np.testing.assert_allclose(ours["embedding"], weights, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(moments["m"], m, rtol=1e-5, atol=1e-6)  # the resting rows' moments did not decay
    np.testing.assert_allclose(moments["v"], v, rtol=1e-5, atol=1e-6)
    _, adam, _, _ = four_steps(Adam(learning_rate=rate), seed=1)
    np.testing.assert_allclose(ours["dense"], adam["dense"], rtol=1e-5, atol=1e-5)
    assert not np.allclose(
        ours["embedding"][[3, 9]], adam["embedding"][[3, 9]], atol=1e-3
    )  # seen in steps 1-2, resting since: Adam moved them on
    np.testing.assert_array_equal(ours["embedding"][12:], start["embedding"][12:])  # never seen, never moved


@pytest.mark.parametrize(
    "kind, extra",
    [  # BERT trains in most other tests
        ("distilbert", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 37}),
        ("roberta", {}),
        # the slow suite trains these two whole (tests/test_families.py)
        pytest.param("albert", {"embedding_size": 16}, marks=pytest.mark.slow),
        pytest.param("deberta-v2", {}, marks=pytest.mark.slow),
    ],
)
def test_common_architectures_fit_evaluate_and_predict_with_steps_traced_once_without_autograph(kind, extra):
    """compile_classifier traces the steps once and without AutoGraph: every common architecture must still trace and
    learn."""
    import tensorflow as tf
    from transformers import AutoConfig, TFAutoModelForSequenceClassification

    config = AutoConfig.for_model(
        kind,
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=3,
        **extra,
    )
    model = TFAutoModelForSequenceClassification.from_config(config)
    model(model.dummy_inputs)  # built, as build_classifier's from_pretrained leaves it
    compile_classifier(model, 1e-2)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, (16, 12))
    mask = np.ones_like(ids)
    mask[:8, 8:] = 0  # some padded rows
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"input_ids": ids, "attention_mask": mask}, rng.integers(0, 3, 16))
    ).batch(8)
    history = model.fit(dataset, validation_data=dataset, epochs=3, verbose=0).history
    losses = history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert set(history) == {"loss", "accuracy", "macro_f1", "val_loss", "val_accuracy", "val_macro_f1"}
    # traced once each: no variable (optimizer slot, metric) is created inside a step, which would trace it twice
    assert model.train_function.experimental_get_tracing_count() == 1
    assert model.test_function.experimental_get_tracing_count() == 1
    assert model.predict(dataset, verbose=0)["logits"].shape == (16, 3)
    assert np.isfinite(model.evaluate(dataset, verbose=0)[0])


@pytest.mark.parametrize(
    "checkpoint, expected",
    [
        ("/no/such/folder", "checkpoint folder not found"),
        ("./missing-model", "checkpoint folder not found"),
    ],
)
def test_missing_checkpoint_folder(checkpoint, expected):
    with pytest.raises(UserError, match=expected):
        load_tokenizer(checkpoint)


def test_folder_without_config(tmp_path):
    with pytest.raises(UserError, match="has no config.json"):
        build_classifier(str(tmp_path), LABELS)


def test_partial_checkpoint_is_refused(tmp_path, minilm_checkpoint):
    import shutil

    from safetensors.numpy import load_file, save_file

    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm_checkpoint / name, tmp_path / name)
    tensors = load_file(str(minilm_checkpoint / "model.safetensors"))
    save_file(
        {k: v for k, v in tensors.items() if "layer.5." not in k},
        str(tmp_path / "model.safetensors"),
        metadata={"format": "pt"},
    )
    with pytest.raises(UserError, match="missing .* weights of its body"):
        build_classifier(str(tmp_path), LABELS)


def test_hub_id_while_offline_says_how_to_point_at_a_folder(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(UserError, match="cannot be reached: point model.checkpoint at a local folder"):
        load_tokenizer("distilbert-base-uncased")


@pytest.mark.slow  # builds the real checkpoint twice: 5.5 s
def test_a_normal_head_init_redraws_only_the_new_head_kernel_at_pytorchs_width(minilm_checkpoint):
    import tf_keras as keras

    built = {}
    for head_init in ("truncated_normal", "normal"):
        keras.utils.set_random_seed(0)
        built[head_init] = build_classifier(str(minilm_checkpoint), LABELS, head_init=head_init)
    truncated, normal = (
        {w.name.split("/", 1)[1]: w.numpy() for w in built[name].weights} for name in ("truncated_normal", "normal")
    )  # named without the model's scope, which the second model's name numbers
    kernel = "classifier/kernel:0"
    assert [name for name in truncated if not np.array_equal(truncated[name], normal[name])] == [kernel]
    stddev = built["normal"].config.initializer_range
    assert normal[kernel].std() == pytest.approx(stddev, rel=0.1)  # 384 x 3 draws
    assert np.abs(normal[kernel]).max() > 2 * stddev  # a normal draw, not truncated at two standard deviations
    assert np.abs(truncated[kernel]).max() <= 2 * stddev + 1e-7
    assert truncated[kernel].std() == pytest.approx(0.88 * stddev, rel=0.1)


def test_the_new_weights_are_found_by_their_tf_names_when_a_tf_checkpoint_is_read(tiny_checkpoint, tmp_path):
    import tf_keras as keras
    from transformers import TFAutoModelForSequenceClassification

    from kerasft.model import new_weights

    def new_names(checkpoint, labels):
        model, info = TFAutoModelForSequenceClassification.from_pretrained(
            str(checkpoint), num_labels=len(labels), ignore_mismatched_sizes=True, output_loading_info=True
        )
        return sorted(weight.name.split("/", 1)[1] for weight in new_weights(model, info))

    head = ["classifier/bias:0", "classifier/kernel:0"]
    assert new_names(tiny_checkpoint, LABELS) == head  # no head in the file: its layer is missing
    keras.utils.set_random_seed(0)
    classifier = build_classifier(str(tiny_checkpoint), LABELS)
    classifier.save_pretrained(tmp_path)
    assert new_names(tmp_path, ["a", "b"]) == head  # a head of another size: its weights mismatch
    assert new_names(tmp_path, LABELS) == []  # the same size: loaded, nothing new


def test_dropout_under_mixed_bfloat16_drops_at_its_rate_and_keeps_the_mean(tiny_checkpoint):
    """Keras draws dropout's uniform numbers in the inputs' dtype: 7 bits in bfloat16, so a rate of 0.1 dropped
    10.16% and the output averaged 0.9966 of the input. kerasft's compiled models draw them in float32."""
    import tensorflow as tf
    import tf_keras as keras

    from kerasft.precision import Precision

    was_enabled = keras.backend.experimental.is_tf_random_generator_enabled()
    keras.backend.experimental.enable_tf_random_generator()  # as kerasft.session runs
    try:
        with Precision("mixed_bfloat16", jit_compile=False, device_kind="CPU").applied():
            model = build_classifier(str(tiny_checkpoint), LABELS)
            compile_classifier(model, 1e-3)
        dropout = model.bert.embeddings.dropout
        assert dropout.rate == pytest.approx(0.1) and dropout.compute_dtype == "bfloat16"
        outputs = tf.cast(dropout(tf.ones([4000, 2500], tf.bfloat16), training=True), tf.float32)
    finally:
        if not was_enabled:
            keras.backend.experimental.disable_tf_random_generator()
    # 10 million values: the share's standard error is 1e-4, the mean's 1e-4
    assert float(tf.reduce_mean(tf.cast(outputs == 0, tf.float32))) == pytest.approx(0.1, abs=5e-4)
    assert float(tf.reduce_mean(outputs)) == pytest.approx(0.9 * 1.109375, abs=5e-4)  # 1/0.9 rounded to bfloat16
