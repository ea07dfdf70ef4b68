"""Model: the checkpoint's tokenizer and a `TFAutoModelForSequenceClassification`, compiled the classic way.

Every classifier kerasft holds comes from `classifier_from_config` (built, its weights created),
filled from the checkpoint (`build_classifier`), from a trained model (`copy_without_optimizer`)
or from a run's checkpoint (`restore_weights`). Build the model inside the strategy's scope::

    tokenizer = load_tokenizer(checkpoint)
    with strategy.scope():
        model = build_classifier(checkpoint, label_names)
        compile_classifier(model, learning_rate=5e-5)
"""

from __future__ import annotations

import warnings
from pathlib import Path

from kerasft.errors import UserError
from kerasft.hub import require_hub

HUB_FIX = "point model.checkpoint at a local folder with config.json, tokenizer files and weights"
MULTI_LABEL = "multi_label_classification"  # transformers' problem_type: sigmoid outputs, binary cross-entropy


def is_local(checkpoint: str) -> bool:
    """Local if the path exists, or if it can only be a path (hub ids are `name` or `owner/name`)."""
    return Path(checkpoint).expanduser().exists() or checkpoint.startswith((".", "/", "~")) or checkpoint.count("/") > 1


def _check_checkpoint(checkpoint: str) -> None:
    if not is_local(checkpoint):
        require_hub("checkpoint", checkpoint, fix=HUB_FIX)
        return
    folder = Path(checkpoint).expanduser()
    if not folder.is_dir():
        raise UserError(f"checkpoint folder not found: {folder} (set model.checkpoint=<folder> or a hub id)")
    if not (folder / "config.json").is_file():
        raise UserError(f"checkpoint folder {folder} has no config.json: is it a Hugging Face checkpoint folder?")


def _source(checkpoint: str) -> str:
    return str(Path(checkpoint).expanduser()) if is_local(checkpoint) else checkpoint


# These model types count position ids from after the padding index (transformers' create_position_ids_from_input_ids),
# so the first pad_token_id + 1 of max_position_embeddings never hold a token: 514 positions take 512 tokens.
POSITIONS_AFTER_PADDING = {"roberta", "xlm-roberta", "camembert", "mpnet"}


def position_limit(config) -> int | None:
    """The most tokens the model's position embeddings take, or None where positions are relative only (DeBERTa-v2
    and -v3 without ``position_biased_input``), so no input length runs past a table.

    >>> from transformers import AutoConfig
    >>> position_limit(AutoConfig.for_model("roberta", max_position_embeddings=514, pad_token_id=1))
    512
    """
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None or getattr(config, "position_biased_input", True) is False:
        return None
    if getattr(config, "model_type", None) in POSITIONS_AFTER_PADDING:
        positions -= config.pad_token_id + 1
    return positions


def token_inputs(tokenizer, pairs: bool) -> list[str]:
    """The token inputs kerasft gives the model, in training and in the export: ids and attention mask, and the
    segment ids (``token_type_ids``) of pairs, where the tokenizer makes them (a pair's second text is segment 1).

    A single text's segment ids are all zeros, the model's own default when none are given, so they are
    neither stored nor padded nor passed (BENCHMARKS.md, data at scale: batches of 1M texts assembled 21% faster).
    """
    return ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if pairs and "token_type_ids" in tokenizer.model_input_names else []
    )


def load_tokenizer(checkpoint: str):
    """The checkpoint's `AutoTokenizer` (a fast tokenizer where one exists)."""
    from transformers import AutoTokenizer

    _check_checkpoint(checkpoint)
    try:
        return AutoTokenizer.from_pretrained(_source(checkpoint))
    except Exception as error:  # missing, truncated or inconsistent tokenizer files raise many kinds
        raise UserError(f"cannot load the tokenizer of {checkpoint}: {_first_line(error)}") from error


def load_config(checkpoint: str):
    """The checkpoint's `AutoConfig` (config.json)."""
    from transformers import AutoConfig

    _check_checkpoint(checkpoint)
    try:
        return AutoConfig.from_pretrained(_source(checkpoint))
    except Exception as error:  # invalid JSON, an unknown model_type, ...
        raise UserError(f"cannot read the config of {checkpoint}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def build_classifier(
    checkpoint: str, label_names: list[str], multi_label: bool = False, head_init: str = "truncated_normal"
):
    """A sequence classifier with a fresh head for ``label_names``, its names in ``id2label``/``label2id``;
    ``multi_label``: ``problem_type="multi_label_classification"`` in its config; ``head_init``: how the head's
    new kernels are drawn (`draw_new_head`).

    A local PyTorch-format ``model.safetensors`` is converted here, because
    `from_pretrained` of one into a TF class fails in transformers 4.57.
    """
    from transformers import AutoConfig, TFAutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from kerasft.activations import float32_gelu

    _check_checkpoint(checkpoint)
    hf_logging.set_verbosity_error()  # we report missing/mismatched weights ourselves, in one line
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: index for index, name in enumerate(label_names)},
        "problem_type": MULTI_LABEL if multi_label else "single_label_classification",
    }
    source = _source(checkpoint)
    safetensors_file = Path(source) / "model.safetensors"
    if (
        is_local(checkpoint)
        and not (Path(source) / "tf_model.h5").is_file()
        and _is_pytorch_safetensors(safetensors_file)
    ):
        model = classifier_from_config(AutoConfig.from_pretrained(source, **labels))
        info = load_pytorch_safetensors(model, safetensors_file)
    else:
        try:
            with warnings.catch_warnings(), float32_gelu():
                warnings.simplefilter("ignore")
                model, info = TFAutoModelForSequenceClassification.from_pretrained(
                    source, **labels, ignore_mismatched_sizes=True, output_loading_info=True
                )
        except (OSError, ValueError) as error:
            raise UserError(f"cannot load checkpoint {checkpoint}: {str(error).splitlines()[0]}") from error
    _report_loading(checkpoint, info, len(label_names))
    if head_init == "normal":
        draw_new_head(model, info)
    return model


def new_weights(model, info: dict) -> list:
    """The model's weights that loading did not fill from the checkpoint: the new head, for the run's labels.

    ``info`` is transformers' loading info. It names weights the PyTorch way when a PyTorch checkpoint was read
    (``classifier.dense.weight``), and by layer or TF name when a TF one was (``classifier``,
    ``classifier/kernel:0``); transformers' own name mapping puts each model weight in both forms.
    """
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    names = [key[0] if isinstance(key, (tuple, list)) else key for key in info.get("mismatched_keys", [])]
    absent = set(info.get("missing_keys", [])) | set(names)
    found = []
    for weight in model.weights:
        within_model = weight.name.split("/", 1)[-1]  # without the model's own name scope
        pytorch_name, _ = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove=f"{model.base_model_prefix}.", tf_weight_shape=weight.shape
        )
        if pytorch_name in absent or within_model in absent or within_model.split("/", 1)[0] in absent:
            found.append(weight)
    return found


def draw_new_head(model, info: dict) -> None:
    """Redraws the new head's kernels from normal(0, initializer_range), as the PyTorch classes' ``_init_weights``
    draws every new linear layer (biases stay 0 in both), instead of the TF classes' TruncatedNormal (0.88 times as
    wide, nothing beyond two standard deviations). Hugging Face's Trainer starts from such a head; on the
    multi-label benchmark the draw was part of kerasft's gap to it (BENCHMARKS.md, multi-label round 3).
    Seeded by `keras.utils.set_random_seed`, as the TF draw is."""
    import tf_keras as keras

    stddev = getattr(model.config, "initializer_range", 0.02)
    for weight in new_weights(model, info):
        if weight.shape.rank == 2:  # kernels; a new bias starts at 0 either way
            # one initializer a kernel: an unseeded one returns the same draw at every call
            draw = keras.initializers.RandomNormal(stddev=stddev)
            weight.assign(draw(weight.shape, dtype=weight.dtype))


def classifier_from_config(config):
    """A classifier of ``config``'s architecture and labels, its weights created (randomly initialised), its GELU
    computed in float32 (kerasft.activations)."""
    from transformers import TFAutoModelForSequenceClassification

    from kerasft.activations import float32_gelu

    with float32_gelu():
        model = TFAutoModelForSequenceClassification.from_config(config)
    model(model.dummy_inputs, training=False)
    return model


def copy_without_optimizer(model):
    """A fresh float32 copy of the model with the same weights and no optimizer.

    Made outside any strategy scope, so its variables are plain ones even when the trained
    model's are mirrored across replicas, or computed in bfloat16.
    """
    copy = classifier_from_config(model.config)
    copy.set_weights(model.get_weights())
    trace_without_autograph(copy)
    return copy


def restore_weights(model, checkpoint: str) -> None:
    """Loads the model's weights from a run's checkpoint prefix (``<run>/checkpoints/epoch-N``); optimizer slots are
    skipped."""
    import tensorflow as tf

    try:
        tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as error:
        raise UserError(
            f"cannot restore the weights in {checkpoint}: {_first_line(error)}; "
            "pass --checkpoint <run>/checkpoints/epoch-N of this run"
        ) from error


def _is_pytorch_safetensors(path: Path) -> bool:
    if not path.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            return (handle.metadata() or {}).get("format", "pt") == "pt"
    except Exception as error:  # a truncated or corrupt file: safetensors raises its own error types
        raise UserError(f"cannot read weights {path}: {error}; re-download the checkpoint") from error


def load_pytorch_safetensors(model, path: Path) -> dict:
    """Loads a PyTorch-format safetensors file into a TF model; returns transformers' loading info."""
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    try:
        state_dict = load_file(str(path))
    except Exception as error:  # a truncated or corrupt file: safetensors raises its own error types
        raise UserError(f"cannot read weights {path}: {error}; re-download the checkpoint") from error
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state_dict, allow_missing_keys=True, output_loading_info=True, ignore_mismatched_sizes=True
    )
    return info


# Weights a checkpoint may lack because they belong to the classification head, which is new for the run's labels:
# DeBERTa's pooler (ContextPooler) sits in its head, so base checkpoints (deberta-v3-base) never carry it.
HEAD_WORDS = ("classifier", "pre_classifier", "score", "pooler")


def _report_loading(checkpoint: str, info: dict, num_labels: int) -> None:
    head_words = HEAD_WORDS
    missing = [key for key in info.get("missing_keys", []) if not any(word in key for word in head_words)]
    if missing:
        raise UserError(
            f"checkpoint {checkpoint} is missing {len(missing)} weights of its body (e.g. {missing[0]}): "
            "it is partial or for another architecture; re-download it or pick another checkpoint"
        )
    if info.get("mismatched_keys"):
        print(
            f"kerasft: warning: the checkpoint's classifier head has another size; re-initialised it for {num_labels} "
            "labels"
        )
    elif not any(any(word in key for word in head_words) for key in info.get("missing_keys", [])):
        print(
            "kerasft: warning: the classifier head was loaded from the checkpoint (it has the same number of labels); "
            "its label meanings may differ from this dataset's"
        )


def compile_classifier(
    model,
    learning_rate: float,
    jit_compile: bool = False,
    steps_per_execution: int = 1,
    optimizer=None,
    threshold: float = 0.5,
    positive_weights=None,
) -> None:
    """The classic compile: Adam, the loss and metrics of the model's problem type (`loss_and_metrics`; ``threshold``
    and ``positive_weights`` for multi-label ones), XLA if ``jit_compile``.

    Adam is kerasft.optimizer.Adam: TensorFlow's fused kernel, epsilon placed as in PyTorch;
    ``optimizer`` names another Keras optimizer class, built with ``learning_rate``, such as
    kerasft.optimizer.LazyAdam (the recipe's ``train.lazy_adam``). The optimizer's variables
    are created here (`create_optimizer_state`) and the steps are traced without AutoGraph
    (`trace_without_autograph`), both so that the first step traces once, and quickly.
    """
    from kerasft.optimizer import Adam

    loss, metrics = loss_and_metrics(model.config, threshold, positive_weights)
    model.compile(
        optimizer=(optimizer or Adam)(learning_rate=learning_rate),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    create_optimizer_state(model)
    create_random_generators(model)
    trace_without_autograph(model)


def is_multi_label(config) -> bool:
    return getattr(config, "problem_type", None) == MULTI_LABEL


def loss_and_metrics(config, threshold: float = 0.5, positive_weights=None) -> tuple:
    """The loss on logits and the metrics of the config's problem type.

    Single-label: sparse categorical cross-entropy, accuracy and macro F1. Multi-label
    (``problem_type="multi_label_classification"``, transformers #30792: its TF loss has no such
    mode): binary cross-entropy on each label's logit, subset accuracy (reported as ``accuracy``),
    micro and macro F1, a label counting as predicted where its sigmoid reaches ``threshold``.
    ``positive_weights`` (one per label, ``train.class_weight=balanced``: kerasft.class_weights)
    weight each label's positive examples in that binary cross-entropy
    (kerasft.losses.PositiveWeightedBinaryCrossentropy); single-label runs weight theirs in `fit`.
    Metric objects, not strings such as "accuracy", which Keras would turn into metrics (new
    variables) in the first step.
    """
    import tf_keras as keras

    from kerasft.metrics import MacroF1, MultiLabelF1, SubsetAccuracy

    if is_multi_label(config):
        if positive_weights is not None:
            from kerasft.losses import PositiveWeightedBinaryCrossentropy

            loss = PositiveWeightedBinaryCrossentropy(positive_weights)
        else:
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
        return loss, [
            SubsetAccuracy(threshold),
            MultiLabelF1(config.num_labels, threshold, average="micro"),
            MultiLabelF1(config.num_labels, threshold, average="macro"),
        ]
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True), [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        MacroF1(num_classes=config.num_labels),
    ]


def create_optimizer_state(model) -> None:
    """Creates the optimizer's step counter and slots (Adam's moments) now, in the caller's strategy scope.

    Keras creates them in the first training step otherwise, and a `tf.function` that creates
    variables when first called is traced twice: once creating them, once again without. For
    all-MiniLM-L6-v2, one epoch of 2048 texts trained 83.5 examples/s traced twice and 94.5 traced
    once (medians of three rounds, BENCHMARKS.md).
    ``model.train_function.experimental_get_tracing_count()`` is 1 after the first step.
    """
    if not model.built:  # no weights yet (a model from_config): they and their slots are made in the first step
        return
    optimizer = model.optimizer
    if hasattr(optimizer, "_create_all_weights"):  # Keras 2's (legacy) optimizers and their LossScaleOptimizer
        optimizer._create_all_weights(model.trainable_variables)
    else:  # keras.optimizers.Optimizer
        optimizer.build(model.trainable_variables)


def create_random_generators(model) -> None:
    """Creates the random generators of the model's dropout layers now, in the caller's strategy scope.

    Hugging Face's ``build`` skips dropout layers, so Keras would create them inside the first
    training step, too late for kerasft.resume to add them to the backup before it restores one.
    They are `tf.random.Generator` objects when ``keras.backend.experimental.enable_tf_random_generator()``
    is on (kerasft.session turns it on); otherwise there is nothing to create.

    Their dropout then draws its uniform numbers in float32 (`_dropout_drawing_float32`).
    """
    import tensorflow as tf

    for layer in model._flatten_layers():  # noqa: SLF001 (Keras' own walk over every nested layer)
        generator = getattr(layer, "_random_generator", None)
        if generator is not None:
            generator._maybe_init()  # noqa: SLF001 (what Keras' BaseRandomLayer.build calls)
            if isinstance(getattr(generator, "_generator", None), tf.random.Generator):
                generator.dropout = _dropout_drawing_float32(generator._generator)  # noqa: SLF001


def _dropout_drawing_float32(generator):
    """Keras' dropout with ``generator``'s uniform numbers drawn in float32, whatever the inputs' dtype.

    Keras draws them in the inputs' dtype. A bfloat16 uniform number has 7 bits (128 values), so under
    ``mixed_bfloat16`` a rate of 0.1 dropped 13/128 = 10.16% of the values, and the kept ones were scaled by
    1/0.9 rounded to bfloat16: the layer's output averaged 0.9966 of its input in training instead of 1
    (tests/test_model.py). In float32 the rate is exact and the mean 0.9984, the scale's rounding, as PyTorch's
    dropout on bfloat16 tensors. The draw costs the same (BENCHMARKS.md, speed round 3).
    """
    import tensorflow as tf

    def draw_float32(shape, dtype):
        return generator.uniform(shape, dtype=tf.float32)

    def dropout(inputs, rate, noise_shape=None):
        return tf.nn.experimental.general_dropout(
            inputs, rate=rate, noise_shape=noise_shape, uniform_sampler=draw_float32
        )

    return dropout


def trace_without_autograph(model) -> None:
    """Makes `fit`, `evaluate` and `predict` trace the model's steps without AutoGraph.

    Keras converts every layer's ``call`` with AutoGraph while tracing, which rewrites Python
    ``if``/``for`` on tensors into graph ops. Hugging Face's TF models need none of that (they
    are written to run in graph mode and under XLA), and converting their source delays the first
    step by seconds: one epoch of all-MiniLM-L6-v2 trained 82.6 examples/s with AutoGraph and 91.5
    without (BENCHMARKS.md). The traced graphs compute the same losses; tests/test_model.py trains
    the common architectures this way.
    """
    import tensorflow as tf

    for step in ("train_step", "test_step", "predict_step"):
        setattr(model, step, tf.autograph.experimental.do_not_convert(getattr(model, step)))


def label_names_of(config) -> list[str]:
    """The label names a model's config carries, in id order."""
    return [config.id2label[index] for index in range(config.num_labels)]


def weights_fingerprint(model) -> str:
    """A short SHA-256 of every weight's bytes: equal on every worker of a multi-worker run."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]
