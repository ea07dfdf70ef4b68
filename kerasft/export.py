"""Export: a versioned SavedModel for TF Serving that takes raw text and answers label names.

``serving_default`` takes ``text`` (a batch of UTF-8 strings), and for sentence-pair models also
``text_pair``, and tokenizes in the graph (kerasft.graph_tokenizers: core TensorFlow and
tensorflow-text ops; pairs through the checkpoint's pair template with longest-first truncation),
exactly as training did; ``predict_ids`` takes ``input_ids`` and ``attention_mask`` (and
``token_type_ids`` for pair models whose tokenizer makes them) for clients that tokenize themselves.

Single-label models return ``probabilities``, ``label_id``, ``label`` and ``score``. Multi-label
models return ``probabilities`` (sigmoid, ``[batch, num_labels]``), ``predicted`` (bool
``[batch, num_labels]``: each label's probability reached its threshold), ``labels`` and ``scores``
(``[batch, num_labels]``: the predicted names, highest score first, padded with ``""`` and 0) and
``label_count`` (int32 ``[batch]``: how many of them count). Fixed-shape tensors, because TF
Serving's REST API (``instances`` and ``inputs`` formats) and gRPC ``TensorProto`` carry only dense
tensors whose outputs share the batch dimension: a ragged list of names per example is not an
output they can return. The thresholds (``train.threshold``, one or tuned per label) are constants
of the graph. The model is copied without its optimizer first, so Adam's slots are not exported.

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
    pairs = TextClassifierModule.without_optimizer(model, tokenizer, names, 128, pairs=True, thresholds=[0.4, 0.6])
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasft.files import write_json
from kerasft.model import is_multi_label, token_inputs
from kerasft.rundir import export_versions
from kerasft.serve import METADATA  # assets.extra/kerasft.json: TF Serving ignores assets.extra but for warm-up files

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


@dataclass(frozen=True)
class Functions:
    """A module's traced functions: ``predict_ids`` (token ids in) and ``predict_text`` (raw text in, or None)."""

    predict_ids: tf.types.experimental.PolymorphicFunction
    predict_text: tf.types.experimental.PolymorphicFunction | None


class TextClassifierModule(tf.Module):
    """The exported object: a model without optimizer, an optional in-graph tokenizer, the label names (and for
    multi-label models, the thresholds)."""

    @classmethod
    def without_optimizer(cls, model, *arguments, **options) -> TextClassifierModule:
        """The module (the constructor's arguments) of a float32 copy of ``model`` without its optimizer (Adam's slots
        would triple the export)."""
        from kerasft.model import copy_without_optimizer

        return cls(copy_without_optimizer(model), *arguments, **options)

    def __init__(
        self,
        model,
        tokenizer,
        label_names: list[str],
        max_length: int,
        text_tokenizer=None,
        pairs: bool = False,
        thresholds: list[float] | None = None,
    ):
        """``text_tokenizer``: the tokenizer's in-graph form, if already built (kerasft.session builds it once);
        otherwise it is built here, or the module takes token ids only and ``no_text_reason`` says why.
        ``pairs``: the model classifies sentence pairs; ``thresholds``: a multi-label model's, one or one per label
        (default 0.5)."""
        super().__init__()
        # The model is held outside TensorFlow's object tracking: tracked, SavedModel would also serialize every Keras
        # layer's own call functions (seconds of tracing on save and on load, unused by TF Serving). The signatures
        # capture its weights, tracked here, which is all the export needs.
        self.__dict__["model"] = model
        self.weights = list(getattr(model, "weights", []))
        self.label_names = tf.constant(label_names)
        self.max_length = max_length
        self.pairs = pairs
        self.multi_label = is_multi_label(getattr(model, "config", None))
        if self.multi_label:
            values = np.broadcast_to(
                np.asarray(0.5 if thresholds is None else thresholds, np.float32), len(label_names)
            )
            self.thresholds = tf.constant(values)
        self.input_names = token_inputs(tokenizer, pairs)
        self.text_tokenizer, self.no_text_reason = (
            (text_tokenizer, None) if text_tokenizer else in_graph(tokenizer, max_length)
        )
        # Traced without AutoGraph, as the training steps are (kerasft.model.trace_without_autograph): the model and
        # the tokenizers are written in TensorFlow ops, and converting every Keras layer's source took seconds.
        ids = [tf.TensorSpec([None, None], tf.int32, name=name) for name in self.input_names]
        with_types = "token_type_ids" in self.input_names
        predict_ids = tf.function(
            self._predict_typed_ids if with_types else self._predict_ids, input_signature=ids, autograph=False
        )
        predict_text = None  # no raw-text function without a tokenizer
        if self.text_tokenizer is not None and pairs:
            predict_text = tf.function(
                self._predict_pair_text,
                input_signature=[
                    tf.TensorSpec([None], tf.string, name="text"),
                    tf.TensorSpec([None], tf.string, name="text_pair"),
                ],
                autograph=False,
            )
        elif self.text_tokenizer is not None:
            predict_text = tf.function(
                self._predict_text, input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False
            )
        # Held outside TensorFlow's object tracking, as the model is: `tf.saved_model.save` traces every tracked
        # tf.function once more under its own save context (a different tracing key): 8.5 of a tiny model's 18.7 s
        # of export (BENCHMARKS.md). The signatures carry their concrete functions, all TF Serving loads.
        self.__dict__["functions"] = Functions(predict_ids, predict_text)

    def _predict_ids(self, input_ids, attention_mask):
        return self.answers(self.logits_by_length(input_ids, attention_mask))

    def _predict_typed_ids(self, input_ids, attention_mask, token_type_ids):
        return self.answers(self.logits_by_length(input_ids, attention_mask, token_type_ids))

    def answers(self, logits) -> dict:
        """The signature's outputs for a batch's logits (see the module docstring)."""
        if not self.multi_label:
            probabilities = tf.nn.softmax(logits, axis=-1)
            label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
            return {
                "probabilities": probabilities,
                "label_id": label_id,
                "label": tf.gather(self.label_names, label_id),
                "score": tf.reduce_max(probabilities, axis=-1),
            }
        probabilities = tf.sigmoid(logits)
        predicted = probabilities >= self.thresholds
        # predicted labels first, highest probability first; the rest after them, blanked out
        order = tf.argsort(tf.where(predicted, probabilities, -1.0), axis=-1, direction="DESCENDING", stable=True)
        count = tf.reduce_sum(tf.cast(predicted, tf.int32), axis=-1)
        kept = tf.range(tf.shape(probabilities)[1])[tf.newaxis, :] < count[:, tf.newaxis]
        return {
            "probabilities": probabilities,
            "predicted": predicted,
            "labels": tf.where(kept, tf.gather(self.label_names, order), ""),
            "scores": tf.where(kept, tf.gather(probabilities, order, batch_dims=1), 0.0),
            "label_count": count,
        }

    def logits_by_length(self, input_ids, attention_mask, token_type_ids=None):
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
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        given = {name: tensor for name, tensor in given.items() if tensor is not None}
        # A batch that fits in one chunk is that chunk: sorting it and looping over one chunk would change nothing
        # but cost their ops on every call, which is most of the time of a single short text.
        return tf.cond(
            rows <= CHUNK,
            lambda: self.chunk_logits(given, tf.reduce_max(extent)),
            lambda: self.sorted_chunk_logits(given, extent),
        )

    def chunk_logits(self, given: dict, width):
        """The model's float32 logits for the ``given`` inputs' rows cut to ``width`` tokens (at least one)."""
        width = tf.maximum(width, 1)
        inputs = {name: tensor[:, :width] for name, tensor in given.items()}
        return tf.cast(self.model({name: inputs[name] for name in self.input_names}, training=False).logits, tf.float32)

    def sorted_chunk_logits(self, given: dict, extent):
        rows = tf.shape(given["input_ids"])[0]
        order = tf.argsort(-extent, stable=True)
        ordered = {name: tf.gather(tensor, order) for name, tensor in given.items()}
        extent = tf.gather(extent, order)
        num_labels = self.model.config.num_labels

        def run_chunk(index, logits):
            start = index * CHUNK
            end = tf.minimum(start + CHUNK, rows)
            # extent is descending: the chunk's first row is its longest
            chunk = self.chunk_logits({name: tensor[start:end] for name, tensor in ordered.items()}, extent[start])
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
        return self.functions.predict_ids(*(tokens[name] for name in self.input_names))

    def _predict_pair_text(self, text, text_pair):
        tokens = self.text_tokenizer(text, text_pair=text_pair)
        return self.functions.predict_ids(*(tokens[name] for name in self.input_names))

    def signatures(self) -> dict:
        ids = self.functions.predict_ids.get_concrete_function()
        if self.functions.predict_text is None:
            return {"serving_default": ids, "predict_ids": ids}
        return {"serving_default": self.functions.predict_text.get_concrete_function(), "predict_ids": ids}


@dataclass
class Parity:
    """Raw texts (and, for pair models, their second texts) and the probabilities the trained model gave them: what
    the SavedModel on disk must answer."""

    texts: list[str]
    probabilities: np.ndarray
    probes: int = 0  # how many of the texts, at the end, are kerasft.graph_tokenizers.PROBE_TEXTS
    pairs: list[str] | None = None

    def with_probe_texts(self, model, tokenizer, max_length: int, batch_size: int) -> Parity:
        """These texts and the tokenizer probes (every script, emoji, controls, tabs, a long text, the empty string),
        with the trained model's answers: what the in-graph tokenizer is checked on, beside the test split. Pair
        models get each probe paired with another (the probes reversed), long with short: longest-first truncation
        of either side."""
        from kerasft.evaluate import predict_texts
        from kerasft.graph_tokenizers import PROBE_TEXTS

        probe_pairs = list(reversed(PROBE_TEXTS)) if self.pairs is not None else None
        answers = predict_texts(model, tokenizer, PROBE_TEXTS, max_length, batch_size, probe_pairs)
        return Parity(
            [*self.texts, *PROBE_TEXTS],
            np.concatenate([self.probabilities, answers]),
            len(PROBE_TEXTS),
            None if self.pairs is None else [*self.pairs, *probe_pairs],
        )


def export_session(
    session, model, run_dir, parity: Parity | None = None, thresholds: list[float] | None = None
) -> tuple[Path, dict]:
    """Exports ``model`` (the session's, or its float32 copy) with the session's tokenizer, labels, max_length (and
    a multi-label model's ``thresholds``) into the run directory's ``export/<model name>/<next version>``; the
    parity check covers ``parity``'s texts and the tokenizer's probe texts."""
    text_tokenizer, _ = session.graph_tokenizer
    module = TextClassifierModule.without_optimizer(
        model, session.tokenizer, session.label_names, session.max_length, text_tokenizer, session.pairs, thresholds
    )
    if parity is not None and module.text_tokenizer is not None:
        parity = parity.with_probe_texts(model, session.tokenizer, session.max_length, session.recipe.train.batch_size)
    return export_model(module, run_dir.export_dir(session.recipe.model.name), parity)


def export_model(module: TextClassifierModule, model_dir: Path, parity: Parity | None = None) -> tuple[Path, dict]:
    """Writes ``module`` as ``model_dir/<next version>/`` atomically; returns its path and export facts.

    With ``parity``, the SavedModel written to disk is reloaded and run on those raw texts; its
    answers must equal the trained model's everywhere (the argmax; for multi-label models, every
    label's decision) and its probabilities lie within 1e-4, or nothing is published.
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
            "text_pair": module.pairs,
            "multi_label": module.multi_label,
            "inputs": ["text", "text_pair"] if module.pairs else ["text"],
            "ids_inputs": module.input_names,
        }
        if module.multi_label:
            facts["thresholds"] = [float(value) for value in module.thresholds.numpy()]
        if module.text_tokenizer is None:
            facts["note"] = module.no_text_reason
        elif parity is not None:
            facts["parity"] = check_parity(staging, parity, thresholds=facts.get("thresholds"))
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


def check_parity(saved_dir: Path, parity: Parity, batch_size: int = 64, thresholds: list[float] | None = None) -> dict:
    """Runs the SavedModel's raw-text signature on the parity texts (and pairs) and compares with the trained model's
    probabilities: the same argmax, or with ``thresholds`` (multi-label) the same decision for every label whose
    probability is not within the tolerance of its threshold, and probabilities within the tolerance."""
    texts, expected = list(parity.texts), parity.probabilities
    serve = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    got = np.concatenate(
        [
            serve(**batch_inputs(texts, parity.pairs, start, batch_size))["probabilities"].numpy()
            for start in range(0, len(texts), batch_size)
        ]
    )
    max_difference = float(np.abs(got - expected).max()) if len(texts) else 0.0
    result = {"examples": len(texts) - parity.probes, "probe_texts": parity.probes}
    if thresholds is None:
        agreement = result["argmax_agreement"] = float((got.argmax(axis=1) == expected.argmax(axis=1)).mean())
    else:
        limits = np.asarray(thresholds, np.float32)
        clear = np.abs(expected - limits) > PARITY_TOLERANCE  # a probability on its threshold may go either way
        same = ((got >= limits) == (expected >= limits)) | ~clear
        agreement = result["label_agreement"] = float(same.all(axis=1).mean())
    result |= {"max_probability_difference": max_difference, "tolerance": PARITY_TOLERANCE}
    if agreement < 1.0 or max_difference > PARITY_TOLERANCE:
        what = "argmax" if thresholds is None else "label decision"
        raise ExportError(
            f"the exported model disagrees with the trained one on the test and probe texts ({what} agreement "
            f"{agreement:.4f}, "
            f"max probability difference {max_difference:.2e} > {PARITY_TOLERANCE}); nothing was exported"
        )
    return result


def batch_inputs(texts: list[str], pairs: list[str] | None, start: int, batch_size: int) -> dict:
    """The raw-text signature's inputs for rows ``start`` to ``start + batch_size``."""
    inputs = {"text": tf.constant(texts[start : start + batch_size], dtype=tf.string)}
    if pairs is not None:
        inputs["text_pair"] = tf.constant(pairs[start : start + batch_size], dtype=tf.string)
    return inputs
