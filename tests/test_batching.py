"""Batching: length-bucketed batches seeded per epoch, every example once, little padding, resumable, through
`Dataset.to_tf_dataset`; predictions in input order; the export's in-graph chunks cut as this module cuts batches."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from kerasft.batching import PAD_MULTIPLE, PadToLongest, Plan, in_input_order, token_lengths

EXAMPLES, BATCH, EPOCHS = 1000, 16, 3
LENGTHS = np.random.default_rng(0).integers(3, 120, size=EXAMPLES)  # a wide spread, like real texts


def epoch_batches(plan: Plan, epoch: int) -> list[list[int]]:
    first = (epoch - plan.start_epoch) * plan.steps_per_epoch
    return [plan.indices(first + step).tolist() for step in range(plan.steps_per_epoch)]


def padding_share(plan: Plan) -> float:
    """The share of padded positions in one epoch, each batch padded to its longest rounded up to a multiple of 8."""
    padded = real = 0
    for rows in epoch_batches(plan, 0):
        width = -(-LENGTHS[rows].max() // PAD_MULTIPLE) * PAD_MULTIPLE
        padded += width * len(rows)
        real += LENGTHS[rows].sum()
    return 1 - real / padded


def test_bucketed_batches_are_a_function_of_seed_and_epoch_and_hold_every_example_once():
    plan = Plan(EXAMPLES, BATCH, seed=3, epochs=EPOCHS, lengths=LENGTHS)
    again = Plan(EXAMPLES, BATCH, seed=3, epochs=EPOCHS, lengths=LENGTHS.copy())
    other_seed = Plan(EXAMPLES, BATCH, seed=4, epochs=EPOCHS, lengths=LENGTHS)
    epochs = [epoch_batches(plan, epoch) for epoch in range(EPOCHS)]
    for epoch, batches in enumerate(epochs):
        assert sorted(sum(batches, [])) == list(range(EXAMPLES))
        assert (
            all(len(rows) == BATCH for rows in batches[:-1]) and len(batches[-1]) == EXAMPLES % BATCH
        )  # the partial batch last
        assert batches == epoch_batches(again, epoch)  # what every worker and a restarted run compute
    assert epochs[0] != epochs[1] != epochs[2]
    assert epochs[0] != epoch_batches(other_seed, 0)
    # the model does not see a fixed order: which examples share a batch changes between epochs, too
    pairs = [{tuple(sorted(rows[:2])) for rows in batches} for batches in epochs]
    assert len(pairs[0] & pairs[1]) < len(pairs[0]) / 2


def test_bucketing_pads_far_less_than_random_batches():
    bucketed = padding_share(Plan(EXAMPLES, BATCH, seed=1, lengths=LENGTHS))
    random = padding_share(Plan(EXAMPLES, BATCH, seed=1))
    assert random > 0.4 and bucketed < random / 4, (bucketed, random)


def test_a_resumed_bucketed_plan_is_the_tail_of_the_full_plan():
    full = Plan(EXAMPLES, BATCH, seed=5, epochs=EPOCHS, lengths=LENGTHS)
    everything = [full.indices(number).tolist() for number in range(full.batches)]
    resumed = Plan(EXAMPLES, BATCH, seed=5, epochs=EPOCHS, start_epoch=1, start_step=7, lengths=LENGTHS)
    assert [resumed.indices(number).tolist() for number in range(resumed.batches)] == everything[
        full.steps_per_epoch + 7 :
    ]


def test_drop_remainder_keeps_full_batches_only():
    plan = Plan(EXAMPLES, BATCH, seed=5, lengths=LENGTHS, drop_remainder=True)
    batches = epoch_batches(plan, 0)
    assert plan.steps_per_epoch == EXAMPLES // BATCH and all(len(rows) == BATCH for rows in batches)


def test_unshuffled_plans_sort_by_length_and_results_go_back_in_input_order():
    plan = Plan(EXAMPLES, BATCH, shuffle=False, lengths=LENGTHS)
    order = plan.order(0)
    assert (np.diff(LENGTHS[order]) <= 0).all()
    assert (in_input_order(LENGTHS[order], plan) == LENGTHS).all()


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_checkpoint)


@pytest.mark.parametrize("multiple", [PAD_MULTIPLE, 8])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("stored_mask", [False, True], ids=["mask built", "mask stored"])
def test_padder_builds_what_the_hugging_face_collator_builds(tokenizer, multiple, side, stored_mask, monkeypatch):
    """kerasft.tokenizing stores no attention mask: the padder builds it, as the collator pads the tokenizer's."""
    from transformers import DataCollatorWithPadding

    monkeypatch.setattr(tokenizer, "padding_side", side)

    texts = [
        "short",
        "a much longer text with many more words in it than the others",
        "mid sized text here",
        "two words",
    ] * 5
    split = Dataset.from_dict({"text": texts, "label": list(range(20))}).map(
        lambda batch: tokenizer(batch["text"]), batched=True
    )
    split = split.shuffle(seed=0).select(
        range(3, 17)
    )  # an indices mapping over the arrow table, as data.load_splits makes
    rows = np.array([5, 0, 13, 2])
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple, return_tensors="np")
    examples = [
        {name: split.with_format("numpy")[int(row)][name] for name in tokenizer.model_input_names} for row in rows
    ]
    expected = collator([{name: example[name].tolist() for name in example} for example in examples])
    if not stored_mask:
        examples = [{name: ids for name, ids in example.items() if name != "attention_mask"} for example in examples]
    padded = PadToLongest(tokenizer, pad_to_multiple_of=multiple)(examples)
    assert padded.keys() == set(tokenizer.model_input_names)
    for name in padded:
        np.testing.assert_array_equal(padded[name], expected[name])
    assert list(token_lengths(split)) == [len(ids) for ids in split["input_ids"]]


TEXTS = ["where is my parcel " * 12, "hi", "refund please", "the app crashes when I log in " * 5, "ok", "billing " * 30]


def test_predictions_come_back_in_input_order_for_texts_of_very_different_lengths(tokenizer):
    from kerasft.evaluate import predict_texts

    class LengthEcho:
        """Answers each text's token count and first word id as logits: a wrong order shows at once."""

        def predict(self, dataset, verbose=0):
            logits = [
                np.stack([features["attention_mask"].numpy().sum(axis=1), features["input_ids"].numpy()[:, 1]], axis=1)
                for features in dataset
            ]  # raw texts have no labels: the batches are the features alone
            return {"logits": np.concatenate(logits).astype(np.float32) / 100}

    encoded = [tokenizer(text, truncation=True, max_length=64)["input_ids"] for text in TEXTS]
    expected = np.array([[len(ids), ids[1]] for ids in encoded], dtype=np.float32) / 100
    expected = np.exp(expected) / np.exp(expected).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        predict_texts(LengthEcho(), tokenizer, TEXTS, max_length=64, batch_size=2), expected, rtol=1e-5
    )


def test_batches_pad_to_their_longest_text_on_cpus_to_multiples_of_8_on_gpus_and_32_under_xla():
    from kerasft.batching import pad_multiple

    assert pad_multiple("CPU", jit_compile=False) == 1
    assert pad_multiple("GPU", jit_compile=False) == 8
    assert pad_multiple("GPU", jit_compile=True) == pad_multiple("CPU", jit_compile=True) == 32


def test_training_and_evaluation_pipelines_run_without_tf_data_autotuning(tokenizer):
    """Autotuning makes deleting an iterator wait for the autotuner's thread (seconds at the end of every `fit` and
    `predict`)."""
    from kerasft.batching import ordered_batches, training_batches

    split = Dataset.from_dict({"text": ["a b", "c"], "label": [0, 1]}).map(
        lambda batch: tokenizer(batch["text"]), batched=True
    )
    training = training_batches(
        split, Plan(examples=2, global_batch=2, lengths=token_lengths(split)), PadToLongest(tokenizer)
    )
    evaluation, _ = ordered_batches(split, 2, PadToLongest(tokenizer))
    for dataset in (training, evaluation):
        assert dataset.options().autotune.enabled is False
        assert len(list(dataset)) == 1


def test_training_batches_through_to_tf_dataset_are_the_plans_rows_from_a_mid_epoch_start(tokenizer):
    """Each example's label is its row number: the batches `fit` gets must hold exactly the plan's rows, in its
    order."""
    from kerasft.batching import training_batches

    texts = [" ".join(["word"] * (1 + index % 13)) for index in range(45)]
    split = Dataset.from_dict({"text": texts, "label": list(range(45))}).map(
        lambda batch: tokenizer(batch["text"]), batched=True
    )
    split = split.shuffle(seed=1)  # an indices mapping, as data.load_splits makes
    for drop_remainder in (False, True):
        full = Plan(len(split), 8, seed=3, epochs=3, lengths=token_lengths(split), drop_remainder=drop_remainder)
        resumed = Plan(
            len(split),
            8,
            seed=3,
            epochs=3,
            start_epoch=1,
            start_step=2,
            lengths=token_lengths(split),
            drop_remainder=drop_remainder,
        )
        rows = np.array(split["label"])
        batches = list(training_batches(split, resumed, PadToLongest(tokenizer)))
        assert len(batches) == resumed.batches == 2 * full.steps_per_epoch - 2
        expected = [rows[full.indices(number)].tolist() for number in range(full.steps_per_epoch + 2, full.batches)]
        assert [labels.numpy().tolist() for _, labels in batches] == expected
        for features, labels in batches:  # each batch as wide as its own longest text
            lengths = [len(tokenizer(texts[label])["input_ids"]) for label in labels.numpy()]
            assert features["input_ids"].shape == (len(lengths), max(lengths))


def test_a_width_that_the_shape_inference_samples_happen_to_share_does_not_freeze(tokenizer):
    """`to_tf_dataset` infers shapes from 20 single examples; with 300 texts of one length and 3 long ones they all
    share a width, which would become static and reject the long batch at run time."""
    from kerasft.batching import ordered_batches

    texts = ["same length text"] * 300 + ["a much longer text with many more words than all the others"] * 3
    split = Dataset.from_dict({"text": texts, "label": [0] * 303}).map(
        lambda batch: tokenizer(batch["text"]), batched=True
    )
    dataset, _ = ordered_batches(split, 64, PadToLongest(tokenizer))
    assert dataset.element_spec[0]["input_ids"].shape.as_list() == [None, None]
    widths = [features["input_ids"].shape[1] for features, _ in dataset]
    assert widths[0] > widths[1] == widths[-1]


@pytest.mark.parametrize("group_by_length", [True, False])
def test_a_runs_batches_group_by_length_unless_the_recipe_says_not(group_by_length):
    from types import SimpleNamespace

    from kerasft.recipe import Recipe, TrainConfig
    from kerasft.train import training_plan

    rng = np.random.default_rng(0)
    split = Dataset.from_dict({"input_ids": [[1] * int(n) for n in rng.integers(1, 200, size=256)]})
    recipe = Recipe(train=TrainConfig(batch_size=8, group_by_length=group_by_length))
    plan = training_plan(SimpleNamespace(recipe=recipe, tokenized={"train": split}, drop_remainder=False))
    lengths = token_lengths(split)
    spread = np.mean([np.ptp(lengths[batch]) for batch in epoch_batches(plan, 0)])
    assert (spread < 20) == group_by_length  # at random, a batch of 8 spans ~150 of the 1-199 tokens
    if not group_by_length:
        assert plan.order(0).tolist() == np.random.default_rng([recipe.train.seed, 0]).permutation(256).tolist()
