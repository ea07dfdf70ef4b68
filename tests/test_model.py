"""Model: loading a real PyTorch-format safetensors checkpoint (the packaged MiniLM) and the tiny one."""

from __future__ import annotations

import numpy as np
import pytest

from kerasft.errors import UserError
from kerasft.model import build_classifier, compile_classifier, load_tokenizer

LABELS = ["anger", "joy", "sadness"]


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
    assert model.config.id2label == dict(enumerate(LABELS)) and model.config.label2id == {"anger": 0, "joy": 1, "sadness": 2}
    assert model.classifier.weights[0].shape == (384, 3)


def test_tiny_checkpoint_compiles_and_trains_a_step(tiny_checkpoint):
    import tensorflow as tf

    tokenizer = load_tokenizer(str(tiny_checkpoint))
    model = build_classifier(str(tiny_checkpoint), LABELS)
    compile_classifier(model, 1e-3)
    inputs = dict(tokenizer(["i am happy", "so sad"], padding=True, return_tensors="np"))
    history = model.fit(inputs, np.array([1, 2]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert isinstance(model.optimizer, tf.keras.optimizers.Adam) or type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


@pytest.mark.parametrize("checkpoint, expected", [
    ("/no/such/folder", "checkpoint folder not found"),
    ("./missing-model", "checkpoint folder not found"),
])
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
    save_file({k: v for k, v in tensors.items() if "layer.5." not in k}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match="missing .* weights of its body"):
        build_classifier(str(tmp_path), LABELS)


def test_hub_id_while_offline_says_how_to_point_at_a_folder(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(UserError, match="cannot be reached: point model.checkpoint at a local folder"):
        load_tokenizer("distilbert-base-uncased")
