"""Every checkpoint family users fine-tune: its PyTorch-format weights load, it trains, and its export answers raw text.

Each family is a tiny random model (2 layers, 32 wide) of its architecture with a tokenizer of its
kind trained here (tests/tokenizer_fixtures.py), saved as hub checkpoints are: the base model's
weights in a PyTorch-format ``model.safetensors`` (PyTorch names and layouts, written with NumPy:
PyTorch is not a dependency), the tokenizer files, ``config.json``. A whole `kerasft run` then
trains, evaluates and exports it, and the export's raw-text signature must answer the test and probe
texts like the trained model (the run's parity check).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tokenizer_fixtures import build_byte_bpe, build_sentencepiece, build_wordpiece

from conftest import write_recipe
from kerasft.cli import main

pytestmark = pytest.mark.slow  # a whole run per family
LABELS = ["account", "billing", "delivery", "feedback", "technical"]
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 80,
}


def wordpiece_as(tokenizer_class: str, lowercase: bool = True):
    """A WordPiece vocabulary trained here, saved as the family's own fast tokenizer class."""

    def build(folder: Path) -> Path:
        import transformers

        build_wordpiece(folder, lowercase)
        cls = getattr(transformers, tokenizer_class)
        cls(vocab_file=str(folder / "vocab.txt"), do_lower_case=lowercase, model_max_length=512).save_pretrained(folder)
        return folder

    return build


def mpnet_tokenizer(folder: Path) -> Path:
    """MPNet's tokenizer: BERT's normalizer and WordPiece with <s> ... </s> special tokens (RoBERTa's template)."""
    from transformers import MPNetTokenizerFast

    build_wordpiece(folder, lowercase=True)
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    (folder / "vocab.txt").write_text("\n".join(specials + [token for token in vocab if token not in specials]) + "\n")
    MPNetTokenizerFast(vocab_file=str(folder / "vocab.txt"), model_max_length=512).save_pretrained(folder)
    return folder


FAMILIES = {  # name -> (model_type, extra config, tokenizer builder)
    "bert-uncased": ("bert", {}, wordpiece_as("BertTokenizerFast")),
    "bert-cased-multilingual": ("bert", {}, wordpiece_as("BertTokenizerFast", lowercase=False)),
    "distilbert": (
        "distilbert",
        {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 37},
        wordpiece_as("DistilBertTokenizerFast"),
    ),
    "electra": ("electra", {"embedding_size": 16}, wordpiece_as("ElectraTokenizerFast")),
    "mpnet": ("mpnet", {}, mpnet_tokenizer),
    "roberta": ("roberta", {}, build_byte_bpe),
    "xlm-roberta": ("xlm-roberta", {}, lambda folder: build_sentencepiece(folder, "xlm-roberta")),
    "camembert": ("camembert", {}, lambda folder: build_sentencepiece(folder, "camembert")),
    "albert": ("albert", {"embedding_size": 16}, lambda folder: build_sentencepiece(folder, "albert")),
    "deberta-v3": ("deberta-v2", {}, lambda folder: build_sentencepiece(folder, "deberta-v2")),
}


def save_pytorch_safetensors(model, path: Path) -> None:
    """The TF model's weights under PyTorch's names and layouts, as a hub checkpoint's ``model.safetensors`` holds them
    (transformers' own TF-to-PyTorch name mapping, the one it reads PyTorch checkpoints into TF models with)."""
    from safetensors.numpy import save_file
    from transformers.modeling_tf_pytorch_utils import TransposeType, convert_tf_weight_name_to_pt_weight_name

    tensors = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove=f"{model.base_model_prefix}.", tf_weight_shape=weight.shape
        )
        value = weight.numpy()
        tensors[name] = np.ascontiguousarray(value.T if transpose is TransposeType.SIMPLE else value)
    save_file(tensors, str(path), metadata={"format": "pt"})


def checkpoint(family: str, root: Path) -> tuple[Path, object]:
    """The family's checkpoint folder (tokenizer, config.json, PyTorch-format model.safetensors) and the TF model
    saved."""
    from transformers import AutoConfig, AutoTokenizer, TFAutoModel

    model_type, extra, build_tokenizer = FAMILIES[family]
    folder = build_tokenizer(root / family)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **(TINY | extra))
    model = TFAutoModel.from_config(config)
    model(model.dummy_inputs)
    config.save_pretrained(folder)
    save_pytorch_safetensors(model, folder / "model.safetensors")
    return folder, model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from conftest import QUICKSTART_DATA

    return {split: QUICKSTART_DATA / f"{split}.csv" for split in ("train", "validation", "test")}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_loads_pytorch_weights_trains_and_serves_raw_text(family, tmp_path, data):
    from kerasft.model import build_classifier

    folder, source = checkpoint(family, tmp_path)
    assert not (folder / "tf_model.h5").exists()
    classifier = build_classifier(str(folder), LABELS)  # through the PyTorch-format safetensors file
    body = getattr(classifier, classifier.base_model_prefix)
    loaded = {weight.name.split("/", 1)[1]: weight.numpy() for weight in body.weights}
    expected = {weight.name.split("/", 1)[1]: weight.numpy() for weight in source.weights}
    assert set(loaded) <= set(expected) and len(loaded) > 10  # RoBERTa's classifier has no pooler; its base model does
    for name, value in loaded.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)

    recipe = write_recipe(tmp_path / "tiny.py", folder, data, epochs=1, batch_size=8, learning_rate=1e-3)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(recipe),
            "data.train_samples=48",
            "data.validation_samples=16",
            "data.test_samples=24",
            "--run-name",
            family,
            "--output-dir",
            str(tmp_path / "runs"),
            "--tensorboard-dir",
            str(tmp_path / "tb"),
        ],
    )
    assert result.exit_code == 0, result.output[-3000:]
    assert "no raw-text signature" not in result.output
    run_dir = tmp_path / "runs" / family
    exported = json.loads((run_dir / "metrics.json").read_text())["export"]
    assert exported["raw_text_signature"] is True and "note" not in exported
    parity = exported["parity"]
    assert (parity["examples"], parity["argmax_agreement"]) == (24, 1.0) and parity["probe_texts"] > 0
    assert parity["max_probability_difference"] <= parity["tolerance"]
    recorded = json.loads((run_dir / "model" / "config.json").read_text())
    assert recorded["model_type"] == FAMILIES[family][0] and recorded["id2label"]["0"] == LABELS[0]


def test_a_sentencepiece_checkpoint_without_its_model_file_is_refused_before_anything_is_written(tmp_path, data):
    folder, _ = checkpoint("xlm-roberta", tmp_path)
    (folder / "sentencepiece.bpe.model").unlink()
    recipe = write_recipe(tmp_path / "tiny.py", folder, data, epochs=1, batch_size=8)
    result = CliRunner().invoke(
        main, ["run", str(recipe), "--output-dir", str(tmp_path / "runs"), "--tensorboard-dir", str(tmp_path / "tb")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kerasft: error: checkpoint ") and "sentencepiece.bpe.model" in line and "add it" in line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tb").exists()


def test_a_family_without_an_exact_in_graph_form_exports_ids_only_and_says_so(tmp_path, data, wordlevel_checkpoint):
    folder = tmp_path / "wordlevel"
    shutil.copytree(wordlevel_checkpoint, folder)
    recipe = write_recipe(tmp_path / "tiny.py", folder, data, epochs=1, batch_size=8)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(recipe),
            "data.train_samples=32",
            "data.test_samples=8",
            "--run-name",
            "ids",
            "--output-dir",
            str(tmp_path / "runs"),
            "--tensorboard-dir",
            str(tmp_path / "tb"),
        ],
    )
    assert result.exit_code == 0, result.output[-3000:]
    warning = next(
        line for line in result.output.splitlines() if line.startswith("kerasft: warning: no raw-text signature")
    )
    assert "WordLevel" in warning and "clients must tokenize" in warning
    exported = json.loads((tmp_path / "runs" / "ids" / "metrics.json").read_text())["export"]
    assert exported["raw_text_signature"] is False and exported["note"] in warning


KOREAN = {  # sentiment cue words; each text mixes one of them with neutral words
    "1": ["최고의 영화", "정말 재미있어요", "감동적이었습니다", "배우들 연기가 훌륭해요", "또 보고 싶어요"],
    "0": ["최악의 영화", "너무 지루해요", "시간 낭비였습니다", "연기가 어색해요", "돈이 아까워요"],
}
NEUTRAL = ["오늘", "주말에", "친구와 함께", "극장에서", "어제 밤에", "가족들과", "혼자서"]


def korean_reviews(path: Path, count: int, seed: int) -> Path:
    """A file in the NSMC corpus's own format: tab-separated, header `id document label`, labels 0 and 1."""
    rng = np.random.default_rng(seed)
    lines = ["id\tdocument\tlabel"]
    for number in range(count):
        label = str(number % 2)
        words = [rng.choice(NEUTRAL), rng.choice(KOREAN[label]), rng.choice(NEUTRAL)]
        lines.append(f"{10_000 + number}\t{' '.join(words)}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_korean_recipe_runs_offline_on_the_corpus_files_and_its_export_answers_korean_text(tmp_path):
    from conftest import REPO
    from kerasft.serve import predict

    folder, _ = checkpoint("bert-cased-multilingual", tmp_path)
    train, test = (
        korean_reviews(tmp_path / "ratings_train.tsv", 80, 0),
        korean_reviews(tmp_path / "ratings_test.tsv", 24, 1),
    )
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(REPO / "recipes" / "nsmc.py"),
            f"data.train={train}",
            f"data.test={test}",
            f"model.checkpoint={folder}",
            "model.max_length=32",
            "train.epochs=1",
            "train.batch_size=8",
            "train.learning_rate=1e-3",
            "--run-name",
            "ko",
            "--output-dir",
            str(tmp_path / "runs"),
            "--tensorboard-dir",
            str(tmp_path / "tb"),
        ],
    )
    assert result.exit_code == 0, result.output[-3000:]
    run_dir = tmp_path / "runs" / "ko"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["examples"] == 24 and metrics["export"]["parity"]["argmax_agreement"] == 1.0
    answers = predict(run_dir / "export" / "nsmc", ["정말 재미있어요 최고의 영화", "너무 지루해요 돈이 아까워요"])
    assert {answer["label"] for answer in answers} <= {"0", "1"}
    assert all(0.5 <= answer["score"] <= 1 for answer in answers)
