"""Shared fixtures: a tiny random BERT checkpoint, a word-level (non-WordPiece) one, small data files.

The tiny checkpoints are built once per session in a temporary folder: a real tokenizer
(WordPiece over the quickstart vocabulary) and a 2-layer, 32-wide BERT, so a whole run
takes seconds. Where a real pretrained checkpoint matters, tests use the packaged MiniLM.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_DATA = REPO / "recipes" / "data" / "quickstart"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _vocabulary() -> list[str]:
    words = Counter()
    for split in ("train", "validation", "test"):
        for row in read_rows(QUICKSTART_DATA / f"{split}.csv"):
            words.update(re.findall(r"\w+|[^\w\s]", row["text"].lower()))
    return SPECIAL_TOKENS + sorted(words)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A local checkpoint folder: BertTokenizerFast + a randomly initialised 2-layer TF BERT (tf_model.h5)."""
    from transformers import BertConfig, BertTokenizerFast, TFBertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_vocabulary()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_max_length=64)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    model = TFBertModel(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def wordlevel_checkpoint(tmp_path_factory, tiny_checkpoint) -> Path:
    """The tiny BERT with a word-level tokenizer: no in-graph equivalent, so exports take token ids only."""
    import shutil

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-wordlevel")
    for name in ("config.json", "tf_model.h5"):
        shutil.copy(tiny_checkpoint / name, folder / name)
    vocab = {token: index for index, token in enumerate(_vocabulary())}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=64,
        model_input_names=["input_ids", "attention_mask"],
    )
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def minilm_checkpoint() -> Path:
    from kerasft.recipe import packaged_minilm

    return Path(packaged_minilm())


@pytest.fixture
def small_data(tmp_path) -> dict[str, Path]:
    """Small train/validation/test CSVs drawn from the quickstart data (all five labels in each)."""
    paths = {}
    for split, count in (("train", 120), ("validation", 30), ("test", 40)):
        rows = read_rows(QUICKSTART_DATA / f"{split}.csv")[:count]
        path = tmp_path / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
        paths[split] = path
    return paths


def write_recipe(path: Path, checkpoint: Path, data: dict[str, Path], **train) -> Path:
    """A recipe file for the tiny model, as a user would write one."""
    settings = {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3} | train
    path.write_text(
        textwrap.dedent(f"""
        from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig

        recipe = Recipe(
            name="tiny",
            model=ModelConfig(checkpoint={str(checkpoint)!r}, max_length=32),
            data=DataConfig(
                train={str(data["train"])!r}, validation={str(data["validation"])!r}, test={str(data["test"])!r}
            ),
            train=TrainConfig({", ".join(f"{key}={value!r}" for key, value in settings.items())}),
        )
    """)
    )
    return path


def kerasft(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs the installed `kerasft` command as a user would, capturing its output."""
    script = Path(sys.executable).with_name("kerasft")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "kerasft"]
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )


def kerasft_in_process(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The same `kerasft` command run in this process through Click's CliRunner, for checks of what a command answers:
    a new process spends seconds importing TensorFlow. Exit codes and tracebacks as a process shows them are checked
    through `kerasft` above."""
    from click.testing import CliRunner

    from kerasft.cli import main

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(main, list(map(str, args)))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def adam_algorithm_1(start, gradients, rate, epsilon=1e-7, beta_1=0.9, beta_2=0.999):
    """The Adam paper's Algorithm 1 (torch.optim.Adam's update), in float64: the weights after each step."""
    import numpy as np

    weight, m, v, weights = start.astype(np.float64), 0.0, 0.0, []
    for step, gradient in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * gradient
        v = beta_2 * v + (1 - beta_2) * gradient**2
        m_hat, v_hat = m / (1 - beta_1**step), v / (1 - beta_2**step)
        weight = weight - rate * m_hat / (np.sqrt(v_hat) + epsilon)
        weights.append(weight)
    return weights
