"""Class weights for imbalanced labels: Keras ``class_weight`` for one label per text, positive weights for several.

    weights = class_weights_for("balanced", train_labels, num_classes=6)   # {0: 0.57, ..., 5: 4.17}, or None
    model.fit(train_ds, class_weight=weights)                             # Keras weights each example's loss

``train.class_weight=balanced`` gives each class ``n_examples / (n_classes x its count)`` in the train
split (scikit-learn's "balanced"), so that every class carries the same total weight in the loss: a
label with 4% of the examples gets about 4x the weight of an average one. Keras applies it through
``fit(class_weight=...)``: each training example's loss is multiplied by its class's weight, and the
batch's loss is their sum over the batch size. The training loss is then the weighted one; accuracy
and macro F1 (compiled as ``metrics``, not ``weighted_metrics``) and every validation and test figure
are not weighted. The report names each label's weight beside its recall (`report_section`).

For multi-label data (several labels per text, a sigmoid per label), Keras' ``class_weight`` does not
apply: an example has no one class. There ``train.class_weight=balanced`` gives each label's positive
examples the weight ``negatives / positives`` in the train split (`positive_weights`), as PyTorch
documents for ``BCEWithLogitsLoss(pos_weight=...)``, and the loss is
``tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight)`` (kerasft.losses). That
weighting is in the compiled loss, so the validation loss is weighted too; the metrics and every test
figure are not. The report names each label's train positives, weight and test recall.

`weights_for` gives either kind by label id; recipe.json records them by label name under
"run"/"class_weights", and the JSON report as "class_weight" beside each label's recall.
"""

from __future__ import annotations

import json

import numpy as np


def balanced(labels, num_classes: int) -> np.ndarray:
    """``n / (num_classes x count)`` per class id, from the label ids of the train split (a class with no example
    gets 1.0: it never weighs in).

    Equals ``sklearn.utils.class_weight.compute_class_weight("balanced", ...)`` where every class occurs.

    >>> balanced([0, 0, 0, 1], num_classes=2).tolist()
    [0.6666666666666666, 2.0]
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 1.0)


def class_weights_for(choice: str, labels, num_classes: int) -> dict[int, float] | None:
    """Keras' ``class_weight`` argument for ``train.class_weight`` (``none``: None, plain `fit`)."""
    return weights_for(choice, labels, num_classes)


def weights_for(choice: str, labels, num_classes: int, multi_label: bool = False) -> dict[int, float] | None:
    """``train.class_weight``'s weight per label id, from the train split's labels: None for ``none``; for
    ``balanced``, each class's `balanced` weight (label ids), or with ``multi_label`` each label's `positive_weights`
    (a multi-hot matrix)."""
    if choice == "none":
        return None
    weights = positive_weights(labels) if multi_label else balanced(labels, num_classes)
    return {index: float(weight) for index, weight in enumerate(weights)}


def positive_weights(multi_hot) -> np.ndarray:
    """Each label's weight for its positive examples in a multi-label binary cross-entropy: negatives / positives.

    ``multi_hot`` is the train split's label matrix, one row per text, 1 where the label applies. A
    label on half the texts gets 1.0; on a tenth, 9.0. A label with no positive example or no negative
    one gets 1.0: there is nothing to balance (and no infinite weight: its loss stays the plain one).

    >>> positive_weights([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 0, 1]]).tolist()
    [3.0, 3.0, 1.0]
    """
    matrix = np.asarray(multi_hot, dtype=np.float64)
    positives = matrix.sum(axis=0)
    negatives = len(matrix) - positives
    return np.where((positives > 0) & (negatives > 0), negatives / np.maximum(positives, 1), 1.0)


def manifest(weights: dict[int, float] | None, label_names: list[str]) -> dict:
    """What recipe.json records under "run": each label's weight, or None."""
    return {"class_weights": None if weights is None else {label_names[i]: w for i, w in weights.items()}}


def summary(weights: dict[int, float] | None, label_names: list[str], multi_label: bool = False) -> list[str]:
    """The line a run starts with when the loss is class-weighted."""
    if weights is None:
        return []
    kind = "positive weights (balanced, negatives / positives)" if multi_label else "class weights (balanced)"
    return [f"{kind}: " + ", ".join(f"{label_names[i]} {w:.2f}" for i, w in weights.items())]


def train_counts(train_labels, num_labels: int) -> np.ndarray:
    """Each label's train examples: from label ids, or its positives from a multi-hot matrix (one row per text)."""
    labels = np.asarray(train_labels)
    if labels.ndim == 2:
        return labels.astype(np.float64).sum(axis=0).astype(np.int64)
    return np.bincount(labels.astype(np.int64), minlength=num_labels)


def report_section(weights: dict[int, float] | None, label_names: list[str], train_labels, recall: dict) -> str:
    """The lines under the test report of a class-weighted run: per label, its train examples, weight and test recall
    (multi-label ``train_labels``, a multi-hot matrix: its train positives and positive weight).

    >>> print(report_section({0: 0.75, 1: 1.5}, ["joy", "fear"], [0, 0, 1], {"joy": 0.9, "fear": 0.5}))
    <BLANKLINE>
    train.class_weight=balanced: each training example's loss was multiplied by its label's weight
    <BLANKLINE>
       label  train examples  weight  test recall
         joy               2  0.7500       0.9000
        fear               1  1.5000       0.5000
    >>> print(report_section({0: 1.0, 1: 3.0}, ["joy", "fear"], [[1, 0], [0, 1], [1, 0], [0, 0]], {"joy": 0.9}))
    <BLANKLINE>
    train.class_weight=balanced: each label's loss on its positive examples was multiplied by its weight (pos_weight)
    <BLANKLINE>
       label  train examples  weight  test recall
         joy               2  1.0000       0.9000
        fear               1  3.0000       0.0000
    """
    if weights is None:
        return ""
    counts = train_counts(train_labels, len(label_names))
    width = max(len("label"), *(len(name) for name in label_names))
    how = (
        "each label's loss on its positive examples was multiplied by its weight (pos_weight)"
        if np.ndim(train_labels) == 2
        else "each training example's loss was multiplied by its label's weight"
    )
    lines = [
        "",
        f"train.class_weight=balanced: {how}",
        "",
        f"{'label':>{width + 3}}  train examples  weight  test recall",
    ]
    lines += [
        f"{name:>{width + 3}}  {counts[i]:>14}  {weights[i]:.4f}  {recall.get(name, 0.0):>11.4f}"
        for i, name in enumerate(label_names)
    ]
    return "\n".join(lines)


def add_to_report(run_dir, weights: dict[int, float] | None, label_names: list[str], train_labels) -> None:
    """Adds each label's class weight to a class-weighted run's test report: a table under the text report, and a
    "class_weight" beside each label's recall in the JSON report (nothing for an unweighted run)."""
    if weights is None:
        return
    from kerasft.rundir import RunDir

    report = json.loads((run_dir / RunDir.REPORT_JSON).read_text())
    for index, name in enumerate(label_names):
        report[name]["class_weight"] = weights[index]
    recall = {name: report[name]["recall"] for name in label_names}
    text = (run_dir / RunDir.REPORT_TEXT).read_text()
    run_dir.write(RunDir.REPORT_TEXT, text + report_section(weights, label_names, train_labels, recall) + "\n")
    run_dir.write_json(RunDir.REPORT_JSON, report)
