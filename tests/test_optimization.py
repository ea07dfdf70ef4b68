"""The training knobs on toy Keras models, in this process: learning-rate schedules, AdamW's weight decay, gradient
accumulation (float32, bfloat16, float16 with loss scaling, and resumed from a checkpoint mid-way), class weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import adam_algorithm_1
from kerasft.errors import UserError
from kerasft.optimization import Optimization
from kerasft.recipe import TrainConfig

# --- learning-rate schedules ------------------------------------------------------------------------------------


def hugging_face_rate(kind: str, step: int, warmup: int, total: int) -> float:
    """transformers' get_{constant,linear,cosine}_schedule_with_warmup multipliers (PyTorch), written out."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
@pytest.mark.parametrize("warmup", [0, 3])
def test_schedules_follow_hugging_face_curves_at_the_optimizers_step_count(kind, warmup):
    import tensorflow as tf

    total, peak = 12, 2e-3
    plan = Optimization(schedule=kind, warmup_steps=warmup, optimizer_steps=total)
    optimizer = plan.build(peak)
    expected = [peak * hugging_face_rate(kind, step, warmup, total) for step in range(total + 1)]
    for step in range(total + 1):  # as a resumed run restores it: the rate follows optimizer.iterations alone
        optimizer.iterations.assign(step)
        assert float(optimizer._decayed_lr(tf.float32)) == pytest.approx(expected[step], abs=1e-9), step
    if kind == "constant" and not warmup:  # today's default: kerasft's Adam itself, with a plain rate
        from kerasft.optimizer import Adam

        assert type(optimizer) is Adam and isinstance(optimizer.learning_rate, tf.Variable)


def test_warmup_from_a_ratio_counts_optimizer_steps():
    plan = Optimization.of(TrainConfig(epochs=3, warmup_ratio=0.1, gradient_accumulation_steps=4), steps_per_epoch=10)
    assert (plan.optimizer_steps, plan.warmup_steps, plan.leftover_batches) == (7, 1, 2)  # 30 // 4; ceil(0.7)
    assert Optimization.of(TrainConfig(epochs=1, warmup_steps=5), steps_per_epoch=20).warmup_steps == 5
    assert "the run's last 2 batches add up to no optimizer step" in plan.summary()[-1]
    with pytest.raises(UserError, match=r"gradient_accumulation_steps=40 is more than the 30 batches of the whole run"):
        Optimization.of(TrainConfig(epochs=3, gradient_accumulation_steps=40), steps_per_epoch=10)


# --- AdamW --------------------------------------------------------------------------------------------------------


def test_adamw_decays_weight_matrices_and_embeddings_but_not_biases_or_layernorm(tiny_checkpoint):
    from kerasft.model import build_classifier
    from kerasft.optimizer import takes_weight_decay

    model = build_classifier(str(tiny_checkpoint), ["a", "b"])
    decayed = {variable.name for variable in model.trainable_variables if takes_weight_decay(variable)}
    kept = {variable.name for variable in model.trainable_variables} - decayed
    assert kept and decayed
    assert all("bias" in name or "LayerNorm" in name for name in kept)
    assert not any("bias" in name or "LayerNorm" in name for name in decayed)
    assert any("word_embeddings" in name for name in decayed) and any("classifier/kernel" in name for name in decayed)
    # every LayerNorm scale and offset, and every bias, of the 2-layer BERT
    assert len([name for name in kept if "LayerNorm" in name]) == 2 * (1 + 2 * 2)
    assert len(kept) == len([name for name in kept if "LayerNorm" in name]) + len(
        [name for name in kept if name.endswith("bias:0") and "LayerNorm" not in name]
    )


@pytest.mark.parametrize("kind", ["Adam", "LazyAdam", "AdamW", "LazyAdamW"])
@pytest.mark.parametrize("sparse", [False, True])
def test_every_adam_adds_epsilon_to_the_bias_corrected_moment_as_pytorch_does(kind, sparse):
    """Gradients of fine-tuning's size (1e-6), where Keras' epsilon placement (3.2e-6 in step 1) would halve steps."""
    import tensorflow as tf

    from kerasft import optimizer as optimizers

    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3))
    gradients = [rng.normal(scale=1e-6, size=(4, 3)) for _ in range(5)]
    optimizer = getattr(optimizers, kind)(learning_rate=1e-3, **({"weight_decay": 0.0} if "W" in kind else {}))
    embedding = tf.Variable(start.astype("float32"), name="embeddings")
    for gradient, expected in zip(gradients, adam_algorithm_1(start, gradients, rate=1e-3)):
        value = tf.constant(gradient, tf.float32)
        if sparse:  # every row, so that LazyAdam's update is Adam's too
            value = tf.IndexedSlices(value, indices=tf.range(4), dense_shape=tf.constant([4, 3]))
        optimizer.apply_gradients([(value, embedding)])
        moved, expected_move = embedding.numpy() - start, expected - start
        np.testing.assert_allclose(moved, expected_move, rtol=2e-3, atol=2e-8)


def test_adamw_is_adam_plus_a_decay_by_the_scheduled_rate_of_the_weight_alone():
    import tensorflow as tf

    from kerasft.optimizer import Adam, AdamW

    rng = np.random.default_rng(0)
    start = {"dense/kernel": rng.normal(size=(3, 2)), "dense/bias": rng.normal(size=2)}
    grads = [{name: rng.normal(size=value.shape) for name, value in start.items()} for _ in range(3)]
    rate, decay = 0.1, 0.3
    after = {}
    for kind, optimizer in (
        ("adam", Adam(learning_rate=rate)),
        ("adamw", AdamW(learning_rate=rate, weight_decay=decay)),
    ):
        variables = {name: tf.Variable(value.astype("float32"), name=name) for name, value in start.items()}
        weights_before_last = None
        for step in grads:
            weights_before_last = {name: variable.numpy() for name, variable in variables.items()}
            optimizer.apply_gradients([(tf.constant(step[name], tf.float32), variables[name]) for name in variables])
        after[kind] = {name: variable.numpy() for name, variable in variables.items()}
        after[kind + "-before-last"] = weights_before_last
    np.testing.assert_array_equal(after["adamw"]["dense/bias"], after["adam"]["dense/bias"])  # no decay on biases
    # first step alone: AdamW = Adam - rate x decay x the weight (decoupled: Adam's moments never see the decay)
    one = {}
    for kind, optimizer in (
        ("adam", Adam(learning_rate=rate)),
        ("adamw", AdamW(learning_rate=rate, weight_decay=decay)),
    ):
        kernel = tf.Variable(start["dense/kernel"].astype("float32"), name="dense/kernel")
        optimizer.apply_gradients([(tf.constant(grads[0]["dense/kernel"], tf.float32), kernel)])
        one[kind] = kernel.numpy()
    np.testing.assert_allclose(one["adamw"], one["adam"] - rate * decay * start["dense/kernel"], rtol=0, atol=1e-6)
    assert not np.allclose(after["adamw"]["dense/kernel"], after["adam"]["dense/kernel"], atol=1e-3)


def test_lazy_adamw_decays_only_the_embedding_rows_it_updates():
    import tensorflow as tf

    from kerasft.optimizer import LazyAdam, LazyAdamW

    rows = tf.IndexedSlices(tf.ones([2, 3]), indices=tf.constant([1, 4]), dense_shape=tf.constant([6, 3]))
    results = {}
    for kind, optimizer in (("lazy", LazyAdam(0.1)), ("lazyw", LazyAdamW(0.1, weight_decay=0.5))):
        embedding = tf.Variable(tf.fill([6, 3], 2.0), name="embeddings/word_embeddings")
        optimizer.apply_gradients([(rows, embedding)])
        results[kind] = embedding.numpy()
    np.testing.assert_allclose(results["lazyw"][[1, 4]], results["lazy"][[1, 4]] - 0.1 * 0.5 * 2.0, atol=1e-6)
    np.testing.assert_array_equal(results["lazyw"][[0, 2, 3, 5]], np.full((4, 3), 2.0))  # resting rows rest


# --- gradient accumulation ----------------------------------------------------------------------------------------

EXAMPLES, SMALL_BATCH, ACCUMULATE = 24, 4, 3


def toy_classifier(policy: str = "float32"):
    """Embedding (sparse gradients), LayerNorm, two dense layers; float32 logits, as kerasft's head under mixed
    precision."""
    import tf_keras as keras

    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        inputs = keras.Input(shape=(6,), dtype="int32")
        hidden = keras.layers.Embedding(20, 8)(inputs)
        hidden = keras.layers.LayerNormalization()(hidden)
        hidden = keras.layers.GlobalAveragePooling1D()(hidden)
        hidden = keras.layers.Dense(8, activation="tanh")(hidden)
        return keras.Model(inputs, keras.layers.Dense(3, dtype="float32")(hidden))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def toy_data(batch: int):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    ids, labels = rng.integers(0, 20, (EXAMPLES, 6)), rng.integers(0, 3, EXAMPLES)
    return tf.data.Dataset.from_tensor_slices((ids, labels)).batch(batch)


def compiled(plan: Optimization, policy: str = "float32", learning_rate: float = 0.01):
    import tf_keras as keras

    from kerasft.model import create_optimizer_state

    model = toy_classifier(policy)
    model.compile(
        optimizer=plan.build(learning_rate), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    create_optimizer_state(model)  # as kerasft.model.compile_classifier: the train function then traces once
    return model


def knobs(accumulation_steps: int) -> Optimization:
    """AdamW with a linear schedule and warmup: every part of the update that accumulation must leave intact."""
    steps = 2 * EXAMPLES // (SMALL_BATCH * ACCUMULATE)  # two epochs
    return Optimization(
        schedule="linear",
        warmup_steps=1,
        optimizer_steps=steps,
        weight_decay=0.1,
        accumulation_steps=accumulation_steps,
    )


def largest_difference(first, second) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(first.get_weights(), second.get_weights()))


@pytest.mark.parametrize(
    "policy, tolerance",
    [("float32", 1e-6), ("mixed_bfloat16", 2e-3), ("mixed_float16", 3e-4)],  # against updates of about 2e-2
)
def test_accumulated_update_equals_one_step_on_the_n_times_batch(policy, tolerance):
    import tf_keras as keras

    accumulated = compiled(knobs(ACCUMULATE), policy)
    accumulated.fit(toy_data(SMALL_BATCH), epochs=2, verbose=0)
    big_batch = compiled(knobs(1), policy)
    big_batch.fit(toy_data(SMALL_BATCH * ACCUMULATE), epochs=2, verbose=0)
    small_batch = compiled(knobs(1), policy)
    small_batch.fit(toy_data(SMALL_BATCH), epochs=2, verbose=0)

    if policy == "mixed_float16":  # Keras wrapped it in its LossScaleOptimizer, which skips overflowing batches
        assert isinstance(accumulated.optimizer, keras.mixed_precision.LossScaleOptimizer)
    steps = 2 * EXAMPLES // (SMALL_BATCH * ACCUMULATE)
    assert int(accumulated.optimizer.iterations) == int(big_batch.optimizer.iterations) == steps
    assert int(small_batch.optimizer.iterations) == ACCUMULATE * steps
    assert accumulated.train_function.experimental_get_tracing_count() == 1
    assert largest_difference(accumulated, big_batch) < tolerance
    assert largest_difference(accumulated, small_batch) > 5 * tolerance  # the check tells the two apart
    assert largest_difference(accumulated, toy_classifier(policy)) > 5 * tolerance  # it trained


def test_accumulation_resumed_from_a_checkpoint_between_optimizer_steps_ends_like_an_uninterrupted_run(tmp_path):
    """A backup taken after 4 batches with N=3 holds 1 optimizer step and 1 batch in the sums; the resumed model must
    carry on from there."""
    import tensorflow as tf

    batches = list(toy_data(SMALL_BATCH))  # 6 batches: 2 optimizer steps
    whole = compiled(knobs(ACCUMULATE))
    for ids, labels in batches:
        whole.train_on_batch(ids, labels)

    cut = compiled(knobs(ACCUMULATE))
    for ids, labels in batches[:4]:
        cut.train_on_batch(ids, labels)
    assert (int(cut.optimizer.iterations), int(cut.optimizer.accumulated_batches)) == (1, 1)
    prefix = tf.train.Checkpoint(model=cut).write(str(tmp_path / "backup"))  # what kerasft.resume's backups hold

    resumed = compiled(knobs(ACCUMULATE))
    tf.train.Checkpoint(model=resumed).read(prefix).assert_consumed()
    assert (int(resumed.optimizer.iterations), int(resumed.optimizer.accumulated_batches)) == (1, 1)
    for ids, labels in batches[4:]:
        resumed.train_on_batch(ids, labels)
    assert int(resumed.optimizer.iterations) == 2
    assert largest_difference(resumed, whole) < 1e-6

    forgetful = compiled(knobs(ACCUMULATE))  # the same restore without the sums: the arithmetic goes wrong
    checkpoint = tf.train.Checkpoint(model=forgetful)
    checkpoint.read(prefix).expect_partial()
    for variable in forgetful.optimizer.variables():
        if "gradient_sum" in variable.name:
            variable.assign(tf.zeros_like(variable))
    for ids, labels in batches[4:]:
        forgetful.train_on_batch(ids, labels)
    assert largest_difference(forgetful, whole) > 1e-4


def test_tensorboard_gets_one_point_per_optimizer_step_with_the_mean_loss_of_its_batches(tmp_path):
    import tf_keras as keras
    from test_monitoring import read_events

    from kerasft.monitor import StepScalars

    model = compiled(knobs(ACCUMULATE))
    losses = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(logs["loss"]))
    model.fit(toy_data(SMALL_BATCH), epochs=1, verbose=0, callbacks=[record, StepScalars(tmp_path, chief=True)])
    events = read_events(tmp_path)
    assert [step for step, _ in events["step_loss"]] == [1, 2]  # 6 batches, 2 optimizer steps
    # Keras logs the running mean over the epoch: batch k's own loss is k x mean_k - (k - 1) x mean_(k-1)
    own = [(k + 1) * mean - k * (losses[k - 1] if k else 0.0) for k, mean in enumerate(losses)]
    expected = [np.mean(own[:ACCUMULATE]), np.mean(own[ACCUMULATE:])]
    assert [loss for _, loss in events["step_loss"]] == pytest.approx(expected, rel=1e-5)
    schedule = knobs(ACCUMULATE).learning_rate(0.01)
    assert [rate for _, rate in events["step_learning_rate"]] == pytest.approx([float(schedule(0)), float(schedule(1))])


# --- class weights ------------------------------------------------------------------------------------------------


def test_balanced_class_weights_are_scikit_learns_and_weight_each_examples_loss():
    import tensorflow as tf
    import tf_keras as keras
    from sklearn.utils.class_weight import compute_class_weight

    from kerasft.class_weights import balanced, class_weights_for

    labels = np.array([0] * 12 + [1] * 6 + [2] * 6)
    np.testing.assert_allclose(balanced(labels, 3), compute_class_weight("balanced", classes=np.arange(3), y=labels))
    assert class_weights_for("none", labels, 3) is None
    weights = class_weights_for("balanced", labels, 3)
    assert weights == pytest.approx({0: 24 / 36, 1: 24 / 18, 2: 24 / 18})
    assert balanced([0, 0, 2], 3).tolist() == [0.5, 1.0, 1.0]  # a class absent from train never weighs in

    # Keras' fit(class_weight=...): the batch loss is the sum of weighted losses over the batch size
    model = toy_classifier()
    model.compile(optimizer=keras.optimizers.legacy.SGD(0.0), loss=keras.losses.SparseCategoricalCrossentropy(True))
    ids = np.random.default_rng(2).integers(0, 20, (24, 6))
    loss = model.fit(ids, labels, batch_size=24, class_weight=weights, verbose=0).history["loss"][0]
    per_example = keras.losses.sparse_categorical_crossentropy(labels, model(ids), from_logits=True).numpy()
    expected = float((per_example * np.array([weights[label] for label in labels])).mean())
    assert loss == pytest.approx(expected, rel=1e-5)
    assert loss != pytest.approx(float(per_example.mean()), rel=1e-3)
    assert tf.reduce_sum([weights[label] for label in labels]).numpy() == pytest.approx(24)  # the classes' shares


def test_positive_weights_of_a_multi_hot_matrix_balance_each_labels_positives_and_negatives():
    import tensorflow as tf

    from kerasft.class_weights import positive_weights

    rng = np.random.default_rng(3)
    multi_hot = (rng.random((200, 4)) < np.array([0.5, 0.1, 0.02, 0.0])).astype(np.float32)
    multi_hot[0, 3] = 1  # one positive in 200
    weights = positive_weights(multi_hot)
    positives = multi_hot.sum(axis=0)
    np.testing.assert_allclose(weights, (200 - positives) / positives)
    assert positive_weights(np.ones((5, 2))).tolist() == [1.0, 1.0]  # no negatives: nothing to balance
    assert positive_weights(np.zeros((5, 1))).tolist() == [1.0]  # no positives either
    # in the weighted binary cross-entropy, every label's positives then weigh as much as its negatives
    logits = tf.zeros_like(multi_hot)
    losses = tf.nn.weighted_cross_entropy_with_logits(multi_hot, logits, pos_weight=weights.astype(np.float32))
    positive_share = (losses.numpy() * multi_hot).sum(axis=0)
    negative_share = (losses.numpy() * (1 - multi_hot)).sum(axis=0)
    np.testing.assert_allclose(positive_share, negative_share, rtol=1e-5)
