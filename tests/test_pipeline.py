"""Length-bucketed batches: seeded per epoch, every example once, little padding, resumable, and predictions in input order."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from kerasft.pipeline import PAD_MULTIPLE, Padder, Plan, in_input_order, token_lengths

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
        assert all(len(rows) == BATCH for rows in batches[:-1]) and len(batches[-1]) == EXAMPLES % BATCH  # the partial batch last
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
    assert [resumed.indices(number).tolist() for number in range(resumed.batches)] == everything[full.steps_per_epoch + 7 :]


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
def test_padder_builds_what_the_hugging_face_collator_builds(tokenizer, multiple):
    from transformers import DataCollatorWithPadding

    texts = ["short", "a much longer text with many more words in it than the others", "mid sized text here", "two words"] * 5
    split = Dataset.from_dict({"text": texts, "label": list(range(20))}).map(lambda batch: tokenizer(batch["text"]), batched=True)
    split = split.shuffle(seed=0).select(range(3, 17))  # an indices mapping over the arrow table, as data.load_splits makes
    rows = np.array([5, 0, 13, 2])
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple, return_tensors="np")
    expected = collator([{name: split[int(row)][name] for name in tokenizer.model_input_names} for row in rows])
    padded = Padder(split, tokenizer, pad_to_multiple_of=multiple)(rows)
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
            logits = [np.stack([features["attention_mask"].numpy().sum(axis=1), features["input_ids"].numpy()[:, 1]], axis=1)
                      for features, _ in dataset]
            return {"logits": np.concatenate(logits).astype(np.float32) / 100}

    encoded = [tokenizer(text, truncation=True, max_length=64)["input_ids"] for text in TEXTS]
    expected = np.array([[len(ids), ids[1]] for ids in encoded], dtype=np.float32) / 100
    expected = np.exp(expected) / np.exp(expected).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(predict_texts(LengthEcho(), tokenizer, TEXTS, max_length=64, batch_size=2), expected, rtol=1e-5)


def test_batches_pad_to_their_longest_text_on_cpus_to_multiples_of_8_on_gpus_and_32_under_xla():
    from kerasft.pipeline import pad_multiple

    assert pad_multiple("CPU", jit_compile=False) == 1
    assert pad_multiple("GPU", jit_compile=False) == 8
    assert pad_multiple("GPU", jit_compile=True) == pad_multiple("CPU", jit_compile=True) == 32


def test_training_and_evaluation_pipelines_run_without_tf_data_autotuning(tokenizer):
    """Autotuning makes deleting an iterator wait for the autotuner's thread (seconds at the end of every `fit` and `predict`)."""
    from kerasft.data import to_tf_dataset
    from kerasft.pipeline import batches_dataset

    split = Dataset.from_dict({"text": ["a b", "c"], "label": [0, 1]}).map(lambda batch: tokenizer(batch["text"]), batched=True)
    training = batches_dataset(split, tokenizer, Plan(examples=2, global_batch=2, lengths=token_lengths(split)))
    evaluation = to_tf_dataset(split, tokenizer, batch_size=2, shuffle=False)
    for dataset in (training, evaluation):
        assert dataset.options().autotune.enabled is False
        assert len(list(dataset)) == 1
