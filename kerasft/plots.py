"""Pictures: every figure kerasft draws, rendered off-screen (matplotlib's Agg backend) to PNG bytes.

One function per picture, each returning the PNG's bytes, so the same picture can go
to a file or into TensorBoard (`tf.summary.image`)::

    png = confusion_matrix_png(matrix, ["negative", "positive"], "test")
    write_atomic(run_dir / "confusion_matrix.png", png)
"""

from __future__ import annotations

import io
import math

import numpy as np

TRAIN_COLOUR, VALIDATION_COLOUR, TEST_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c"
SPLIT_COLOURS = {"train": TRAIN_COLOUR, "validation": VALIDATION_COLOUR, "test": TEST_COLOUR}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    return plt


def to_png(figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def confusion_matrix_png(matrix: np.ndarray, label_names: list[str], where: str, dpi: int = 110) -> bytes:
    """Counts and row-normalised rates side by side, label names on both axes.

    ``where`` names the data, e.g. ``"test"`` or ``"validation after epoch 3"``.
    """
    plt = _pyplot()
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = np.asarray(matrix)
    count = len(label_names)
    size = max(4.5, 0.6 * count + 0.09 * max(map(len, label_names)) + 2.0)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), layout="constrained")
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    counts_format = "d" if np.issubdtype(matrix.dtype, np.integer) else ".0f"
    font = {"fontsize": 10 if count <= 10 else 8 if count <= 20 else 6}
    panels = (
        (axes[0], matrix, "counts", counts_format),
        (axes[1], normalised, "share of each true label (rows sum to 1)", ".2f"),
    )
    for axis, values, title, fmt in panels:
        display = ConfusionMatrixDisplay(values, display_labels=label_names)
        display.plot(ax=axis, cmap="Blues", values_format=fmt, colorbar=False, text_kw=font)
        axis.set_xticks(range(count), label_names, rotation=45, ha="right", rotation_mode="anchor")
        axis.set_title(title, fontsize=11)
    figure.suptitle(f"Confusion matrix on {where} ({int(matrix.sum())} examples)", fontsize=13)
    return to_png(figure, dpi)


def learning_curves_png(
    train: list[dict], validation: list[dict], kept_epoch: int | None, title: str, kept_label: str | None = None
) -> bytes:
    """Loss, accuracy and macro F1 per epoch, train vs validation; a dotted line marks the epoch whose weights were
    kept.

    ``train`` and ``validation`` are per-epoch records, ``[{"epoch": 1, "loss": ..., "accuracy": ...}, ...]``.
    """
    plt = _pyplot()
    panels = [
        (key, name)
        for key, name in (
            ("loss", "Loss"),
            ("accuracy", "Accuracy"),
            ("micro_f1", "Micro F1"),
            ("macro_f1", "Macro F1"),
        )
        if any(key in record for record in train + validation)
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), layout="constrained", squeeze=False)
    epochs = [record["epoch"] for record in train]
    for axis, (key, name) in zip(axes[0], panels):
        for records, label, colour, style in (
            (train, "train", TRAIN_COLOUR, "o-"),
            (validation, "validation", VALIDATION_COLOUR, "s--"),
        ):
            points = [(record["epoch"], record[key]) for record in records if key in record]
            if points:
                axis.plot(*zip(*points), style, color=colour, label=label)
        if kept_epoch is not None:
            axis.axvline(kept_epoch, color="grey", linestyle=":", label=kept_label or f"kept: epoch {kept_epoch}")
        axis.set_title(f"{name} per epoch")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name if name.endswith("F1") else name.lower())
        axis.set_xticks(epochs if len(epochs) <= 20 else epochs[:: math.ceil(len(epochs) / 20)])
        axis.set_xlim(min(epochs, default=1) - 0.3, max(epochs, default=1) + 0.3)
        if key != "loss":
            low = min([record[key] for record in train + validation if key in record] + [1.0])
            axis.set_ylim(max(0.0, low - 0.05), 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=9)
    figure.suptitle(title, fontsize=13)
    return to_png(figure)


def class_distribution_png(counts: dict[str, dict[str, int]], label_names: list[str], title: str) -> bytes:
    """One horizontal bar chart per split: examples per label, with counts and shares written on the bars."""
    plt = _pyplot()
    splits = list(counts)
    height = max(2.6, 0.32 * len(label_names) + 1.4)
    width = 4.2 + 0.06 * max(map(len, label_names))
    figure, axes = plt.subplots(
        1, len(splits), figsize=(width * len(splits), height), layout="constrained", sharey=True, squeeze=False
    )
    positions = np.arange(len(label_names))
    for axis, split in zip(axes[0], splits):
        values = np.array([counts[split].get(name, 0) for name in label_names])
        total = max(int(values.sum()), 1)
        axis.barh(positions, values, color=SPLIT_COLOURS.get(split, TRAIN_COLOUR))
        for position, value in zip(positions, values):
            axis.text(value, position, f" {value} ({value / total:.0%})", va="center", fontsize=8)
        axis.set_xlim(0, max(values.max(), 1) * 1.35)  # room for the numbers
        axis.set_title(f"{split} ({int(values.sum())} texts)")
        axis.set_xlabel("texts")
        axis.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(positions, label_names)
    axes[0][0].invert_yaxis()  # first label on top
    figure.suptitle(title, fontsize=13)
    return to_png(figure)


def histograms_by_class_png(
    values_by_class: dict[str, list[int]], title: str, xlabel: str, limit: int | None = None, limit_label: str = ""
) -> bytes:
    """A histogram per class on shared axes, the median marked; ``limit`` draws a red dashed line (e.g. max_length).

    When a few very long texts would squash the rest, the x axis stops after the 99.5th percentile
    (and after ``limit``): longer texts are counted in the last bar, and the panel's title says how many.
    """
    plt = _pyplot()
    names = list(values_by_class)
    everything = np.concatenate(
        [np.asarray(values, dtype=float) for values in values_by_class.values()] or [np.zeros(0)]
    )
    top = float(everything.max()) if everything.size else 1.0
    cut = float(np.percentile(everything, 99.5)) if everything.size else top
    right = max(cut if top > 2 * cut else top, limit or 0) + 1
    width = max(1, math.ceil(right / 40))  # whole numbers per bar, so no bar falls between two lengths
    bins = np.arange(0, right + width, width) - 0.5
    columns = len(names) if len(names) <= 4 else min(6, math.ceil(math.sqrt(1.5 * len(names))))
    rows = math.ceil(len(names) / columns)
    panel = (3.4, 2.3) if len(names) <= 16 else (2.6, 1.8)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(panel[0] * columns, panel[1] * rows + 0.9),
        layout="constrained",
        sharex=True,
        squeeze=False,
    )
    for index, axis in enumerate(axes.flat):
        if index >= len(names):  # an empty slot in the last row: the panel above it shows the x axis
            axis.set_visible(False)
            above = axes.flat[index - columns]
            above.xaxis.set_tick_params(labelbottom=True)
            above.set_xlabel(xlabel, fontsize=9)
    for axis, name in zip(axes.flat, names):
        values = np.asarray(values_by_class[name], dtype=float)
        axis.hist(np.clip(values, 0, bins[-1] - width / 2), bins=bins, color=TRAIN_COLOUR, alpha=0.85)
        off = int((values > bins[-1]).sum())  # drawn in the last bar
        if values.size:
            median = float(np.median(values))
            axis.axvline(median, color="black", linewidth=1, label=f"median {median:g}")
        if limit is not None:
            axis.axvline(limit, color="red", linestyle="--", linewidth=1.2, label=limit_label or f"{limit}")
        axis.set_title(
            f"{name} ({values.size} texts{f'; {off} over {bins[-1]:.0f} in the last bar' if off else ''})", fontsize=9
        )
        axis.legend(fontsize=7, loc="upper right")
        axis.tick_params(labelsize=8)
        axis.yaxis.get_major_locator().set_params(integer=True)  # counts of texts: no 0.5 ticks
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel(xlabel, fontsize=9)
    for axis in axes[:, 0]:
        axis.set_ylabel("texts", fontsize=9)
    figure.suptitle(title, fontsize=12)
    return to_png(figure)


def label_scores_png(report: dict, label_names: list[str], where: str, dpi: int = 110) -> bytes:
    """Multi-label results at a glance: one bar per label for F1, with its precision and recall marked and its
    support written beside it; the micro and macro averages as lines.

    ``report`` is scikit-learn's ``classification_report(..., output_dict=True)`` of multi-label predictions
    (kerasft.metrics); ``where`` names the data, e.g. ``"test"``.
    """
    plt = _pyplot()
    rows = [report[name] for name in label_names]
    f1 = np.array([row["f1-score"] for row in rows])
    positions = np.arange(len(label_names))
    figure, axis = plt.subplots(
        figsize=(7.5 + 0.06 * max(map(len, label_names)), max(3.0, 0.3 * len(label_names) + 1.6)), layout="constrained"
    )
    axis.barh(positions, f1, color=TEST_COLOUR, alpha=0.8, label="F1")
    axis.plot([row["precision"] for row in rows], positions, "k|", markersize=12, label="precision")
    axis.plot([row["recall"] for row in rows], positions, "rx", markersize=6, label="recall")
    for position, row in zip(positions, rows):
        axis.text(1.02, position, f"{row['f1-score']:.2f}  n={int(row['support'])}", va="center", fontsize=8)
    for key, style in (("micro avg", "--"), ("macro avg", ":")):
        if key in report:
            value = report[key]["f1-score"]
            axis.axvline(value, color="grey", linestyle=style, label=f"{key.split()[0]} F1 {value:.3f}")
    axis.set_yticks(positions, label_names)
    axis.invert_yaxis()  # first label on top
    axis.set_xlim(0, 1.25)
    axis.set_xticks(np.linspace(0, 1, 6))
    axis.set_xlabel("score (F1 bar; precision |, recall x); n: examples with the label")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.suptitle(f"Per-label scores on {where}", fontsize=12)
    return to_png(figure, dpi)
