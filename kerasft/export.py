"""Export: a versioned SavedModel for TF Serving that takes raw text and answers label names.

``serving_default`` takes ``text`` (a batch of UTF-8 strings) and tokenizes in the graph
(kerasft.graph_tokenizers: core TensorFlow and tensorflow-text ops), exactly as training did;
``predict_ids`` takes ``input_ids`` and ``attention_mask`` for clients that tokenize themselves.
Both return ``probabilities``, ``label_id``, ``label`` and ``score``. The model is copied without
its optimizer first, so Adam's slots are not exported.

Inside both signatures a batch is sorted by token length, longest first, and the model runs over
chunks of CHUNK rows, each padded only to its own longest row; answers come back in input order:
kerasft.batching's order and padding, in the graph (the tests hold the two to the same chunks). Padding a
whole batch to its longest text wasted most of the compute: emotion-style texts run 3-66 words
(median 17), and batches of 64 padded to their longest hold 2.7 tokens per real token (chunks of
8 sorted rows: 1.16). Measured with benchmarks/serve_throughput.py (all-MiniLM-L6-v2, 2 CPU cores,
2048 synthetic emotion-style texts; texts/s at batch 64; the HF pipeline on PyTorch gave 105-122
in the same runs): one model call per batch 127; chunks of 32 rows 177 (widths rounded up to 8),
16 rows 256, 12 rows 263-284, 8 rows 268-278 (2.5-2.6x the HF pipeline), 4 rows 266. The in-graph
tokenizer takes well under 1% of the time; the model takes the rest.

    module = TextClassifierModule.without_optimizer(model, tokenizer, label_names, max_length)
    path, facts = export_model(module, run_dir / "export" / "emotion", Parity(test_texts, test_probabilities))
    # -> run_dir/export/emotion/1, then .../2 on the next export: a version is never overwritten
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasft.files import write_json
from kerasft.rundir import export_versions

METADATA = Path("assets.extra") / "kerasft.json"  # TF Serving ignores assets.extra but for warm-up files
PARITY_TOLERANCE = 1e-4
# Rows per model call inside a signature (see the module docstring). Smaller chunks waste less
# padding but make more, smaller model calls: 8 and 12 were the fastest of 4, 8, 12, 16, 32 and 64
# at batch 64, level within noise; 8 was steadier over three runs and divides the usual batch sizes.
# Chunk widths are not rounded up to a multiple of 8: that measured 8-10% slower at chunks of 8 and
# 16, as the signature's shapes are dynamic anyway (nothing is retraced) and rounding only adds padding.
CHUNK = 8


class ExportError(Exception):
    """The SavedModel on disk does not answer like the trained model: nothing was published."""


def in_graph(tokenizer, max_length: int):
    """The tokenizer as TensorFlow ops (kerasft.graph_tokenizers), or None and the one-line reason there is none.
    A checkpoint missing a file the graph needs raises MissingTokenizerFile.

    Built without running its probe texts (which costs seconds of tracing): the export's parity check
    runs them through the SavedModel instead, with the test texts (`with_probe_texts`).
    """
    from kerasft.graph_tokenizers import MissingTokenizerFile, UnsupportedTokenizer, for_tokenizer

    try:
        return for_tokenizer(tokenizer, max_length, verify=False), None
    except MissingTokenizerFile:
        raise
    except UnsupportedTokenizer as error:
        return None, (
            f"no raw-text signature: {error}; the export takes token ids (input_ids, attention_mask) only, "
            "so clients must tokenize with the checkpoint's tokenizer"
        )


class TextClassifierModule(tf.Module):
    """The exported object: a model without optimizer, an optional in-graph tokenizer, the label names."""

    @classmethod
    def without_optimizer(
        cls, model, tokenizer, label_names: list[str], max_length: int, text_tokenizer=None
    ) -> TextClassifierModule:
        """The module of a float32 copy of ``model`` without its optimizer (Adam's slots would triple the export)."""
        from kerasft.model import copy_without_optimizer

        return cls(copy_without_optimizer(model), tokenizer, label_names, max_length, text_tokenizer)

    def __init__(self, model, tokenizer, label_names: list[str], max_length: int, text_tokenizer=None):
        """``text_tokenizer``: the tokenizer's in-graph form, if already built (kerasft.session builds it once);
        otherwise it is built here, or the module takes token ids only and ``no_text_reason`` says why."""
        super().__init__()
        # The model is held outside TensorFlow's object tracking: tracked, SavedModel would also serialize every Keras
        # layer's own call functions (seconds of tracing on save and on load, unused by TF Serving). The signatures
        # capture its weights, tracked here, which is all the export needs.
        self.__dict__["model"] = model
        self.weights = list(getattr(model, "weights", []))
        self.label_names = tf.constant(label_names)
        self.max_length = max_length
        self.input_names = [name for name in tokenizer.model_input_names if name != "token_type_ids"]
        self.text_tokenizer, self.no_text_reason = (
            (text_tokenizer, None) if text_tokenizer else in_graph(tokenizer, max_length)
        )
        # saving traces every signature-bearing function, so none without a tokenizer
        if self.text_tokenizer is not None:
            self.predict_text = tf.function(
                self._predict_text, input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False
            )

    # Traced without AutoGraph, as the training steps are (kerasft.model.trace_without_autograph): the model and the
    # tokenizers are written in TensorFlow ops, and converting every Keras layer's source took seconds per export.
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="input_ids"),
            tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
        ],
        autograph=False,
    )
    def predict_ids(self, input_ids, attention_mask):
        probabilities = tf.nn.softmax(self.logits_by_length(input_ids, attention_mask), axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "label_id": label_id,
            "label": tf.gather(self.label_names, label_id),
            "score": tf.reduce_max(probabilities, axis=-1),
        }

    def logits_by_length(self, input_ids, attention_mask):
        """The model's float32 logits in input order, run over length-sorted chunks of CHUNK rows, longest first.

        Each chunk is cut to its own longest row instead of the batch's, so short texts batched
        with a long one no longer cost as much as the long one. A row's extent is 1 + its last
        attended position: its length when right-padded, as the in-graph tokenizer pads; with a
        client's left padding it is the full width, which saves nothing but cuts no attended token.
        The order is kerasft.batching.Plan's without shuffling: by extent, descending, ties in input order.
        A batch of at most CHUNK rows runs as it is, cut to its longest row.
        """
        rows, width = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
        extent = tf.reduce_max(tf.where(attention_mask != 0, tf.range(1, width + 1)[tf.newaxis, :], 0), axis=1)
        # A batch that fits in one chunk is that chunk: sorting it and looping over one chunk would change nothing
        # but cost their ops on every call, which is most of the time of a single short text.
        return tf.cond(
            rows <= CHUNK,
            lambda: self.chunk_logits(input_ids, attention_mask, tf.reduce_max(extent)),
            lambda: self.sorted_chunk_logits(input_ids, attention_mask, extent),
        )

    def chunk_logits(self, input_ids, attention_mask, width):
        """The model's float32 logits for rows cut to ``width`` tokens (at least one)."""
        width = tf.maximum(width, 1)
        inputs = {"input_ids": input_ids[:, :width], "attention_mask": attention_mask[:, :width]}
        return tf.cast(self.model({name: inputs[name] for name in self.input_names}, training=False).logits, tf.float32)

    def sorted_chunk_logits(self, input_ids, attention_mask, extent):
        rows = tf.shape(input_ids)[0]
        order = tf.argsort(-extent, stable=True)
        input_ids, attention_mask, extent = (tf.gather(tensor, order) for tensor in (input_ids, attention_mask, extent))
        num_labels = self.model.config.num_labels

        def run_chunk(index, logits):
            start = index * CHUNK
            end = tf.minimum(start + CHUNK, rows)
            # extent is descending: the chunk's first row is its longest
            chunk = self.chunk_logits(input_ids[start:end], attention_mask[start:end], extent[start])
            return index + 1, logits.write(index, chunk)

        chunks = (rows + CHUNK - 1) // CHUNK
        empty = tf.TensorArray(
            tf.float32, size=chunks, infer_shape=False, element_shape=tf.TensorShape([None, num_labels])
        )
        _, logits = tf.while_loop(lambda index, _: index < chunks, run_chunk, (tf.constant(0), empty))
        sorted_logits = tf.reshape(logits.concat(), [rows, num_labels])
        return tf.gather(
            sorted_logits, tf.math.invert_permutation(order)
        )  # row order[i] went i-th: back to input order

    def _predict_text(self, text):
        tokens = self.text_tokenizer(text)
        return self.predict_ids(tokens["input_ids"], tokens["attention_mask"])

    def signatures(self) -> dict:
        ids = self.predict_ids.get_concrete_function()
        if self.text_tokenizer is None:
            return {"serving_default": ids, "predict_ids": ids}
        return {"serving_default": self.predict_text.get_concrete_function(), "predict_ids": ids}


@dataclass
class Parity:
    """Raw texts and the probabilities the trained model gave them: what the SavedModel on disk must answer."""

    texts: list[str]
    probabilities: np.ndarray
    probes: int = 0  # how many of the texts, at the end, are kerasft.graph_tokenizers.PROBE_TEXTS

    def with_probe_texts(self, model, tokenizer, max_length: int, batch_size: int) -> Parity:
        """These texts and the tokenizer probes (every script, emoji, controls, tabs, a long text, the empty string),
        with the trained model's answers: what the in-graph tokenizer is checked on, beside the test split."""
        from kerasft.evaluate import predict_texts
        from kerasft.graph_tokenizers import PROBE_TEXTS

        answers = predict_texts(model, tokenizer, PROBE_TEXTS, max_length, batch_size)
        return Parity([*self.texts, *PROBE_TEXTS], np.concatenate([self.probabilities, answers]), len(PROBE_TEXTS))


def export_session(session, model, run_dir, parity: Parity | None = None) -> tuple[Path, dict]:
    """Exports ``model`` (the session's, or its float32 copy) with the session's tokenizer, labels and max_length
    into the run directory's ``export/<model name>/<next version>``."""
    text_tokenizer, _ = session.graph_tokenizer
    module = TextClassifierModule.without_optimizer(
        model, session.tokenizer, session.label_names, session.max_length, text_tokenizer
    )
    if parity is not None and text_tokenizer is not None:
        parity = parity.with_probe_texts(model, session.tokenizer, session.max_length, session.recipe.train.batch_size)
    return export_model(module, run_dir.export_dir(session.recipe.model.name), parity)


def export_model(module: TextClassifierModule, model_dir: Path, parity: Parity | None = None) -> tuple[Path, dict]:
    """Writes ``module`` as ``model_dir/<next version>/`` atomically; returns its path and export facts.

    With ``parity``, the SavedModel written to disk is reloaded and run on those raw texts; its
    argmax must equal the trained model's everywhere and its probabilities lie within 1e-4, or
    nothing is published.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".staging-{os.getpid()}"  # TF Serving loads only all-digit folder names
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(staging), signatures=module.signatures())
        facts = {
            "model_name": model_dir.name,
            "raw_text_signature": module.text_tokenizer is not None,
            "max_length": module.max_length,
            "label_names": [name.decode() for name in module.label_names.numpy()],
            "signatures": sorted(module.signatures()),
        }
        if module.text_tokenizer is None:
            facts["note"] = module.no_text_reason
        elif parity is not None:
            facts["parity"] = check_parity(staging, parity)
        write_json(staging / METADATA, facts)
        version = int(export_versions(model_dir)[-1].name) + 1 if export_versions(model_dir) else 1
        while True:
            target = model_dir / str(version)
            if not target.exists():
                os.rename(staging, target)  # atomic: TF Serving never sees a half-written version
                break
            version += 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, facts | {"path": str(target), "version": version}


def check_parity(saved_dir: Path, parity: Parity, batch_size: int = 64) -> dict:
    """Runs the SavedModel's raw-text signature on the parity texts and compares with the trained model's
    probabilities."""
    texts, expected = list(parity.texts), parity.probabilities
    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    got = np.concatenate(
        [
            serve(text=tf.constant(texts[start : start + batch_size]))["probabilities"].numpy()
            for start in range(0, len(texts), batch_size)
        ]
    )
    argmax_agreement = float((got.argmax(axis=1) == expected.argmax(axis=1)).mean())
    max_difference = float(np.abs(got - expected).max())
    result = {
        "examples": len(texts) - parity.probes,
        "probe_texts": parity.probes,
        "argmax_agreement": argmax_agreement,
        "max_probability_difference": max_difference,
        "tolerance": PARITY_TOLERANCE,
    }
    if argmax_agreement < 1.0 or max_difference > PARITY_TOLERANCE:
        raise ExportError(
            "the exported model disagrees with the trained one on the test and probe texts (argmax agreement "
            f"{argmax_agreement:.4f}, "
            f"max probability difference {max_difference:.2e} > {PARITY_TOLERANCE}); nothing was exported"
        )
    return result
