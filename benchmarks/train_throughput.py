"""Training throughput: kerasft as shipped vs the seed-style Keras path vs Hugging Face Trainer on PyTorch.

    python benchmarks/make_emotion_style.py emotion_style.txt        # synthetic data (see that script)
    python benchmarks/train_throughput.py --data emotion_style.txt --sep ';' --columns text,label --json train.json

Every contender trains one epoch on the same first ``--samples`` rows, with the same model (the
packaged all-MiniLM-L6-v2 unless ``--checkpoint``), batch size, learning rate (5e-5, constant) and
seed, each in its own process, one after another. Timed: the training call alone (Keras ``fit``,
including its graph tracing; ``Trainer.train``), not loading or tokenizing. Then each model predicts
the training rows in inference mode; that accuracy is reported so that speed never hides a broken
model. Contenders:

- ``kerasft``: kerasft's defaults: length-bucketed batches, each padded to its longest text
  (kerasft.batching, through ``Dataset.to_tf_dataset``), mixed precision ``auto`` (bfloat16 on CPUs with
  AVX512-BF16), XLA ``auto``,
  kerasft.optimizer's Adam, the optimizer's slots made before the first step and steps traced without
  AutoGraph (kerasft.model), tf.data autotuning off.
- ``seed-padding``: the seed-style path as a notebook writes it: tokenize padding every text to the
  dataset's longest, ``Dataset.to_tf_dataset(shuffle=True)``, ``compile(keras.optimizers.Adam(5e-5),
  SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])``, float32 ``fit``.
- ``kerasft-run``: the training stage of a whole ``kerasft run`` (kerasft.train.train: ``fit`` with the run's
  callbacks: backups, epoch log, TensorBoard, epoch checkpoints, NaN stop, monitoring) with its validation pass
  over a split one eighth the size of the training rows (emotion's proportion), the figure users meet. Its
  ``phases`` say where the time bare ``fit`` does not spend goes (`PhaseClock`).
- ``hf-trainer``: Trainer with dynamic padding (``DataCollatorWithPadding``).
- ``hf-trainer-grouped``: the same with ``group_by_length=True``.
- ``hf-trainer-bf16``, ``hf-trainer-grouped-bf16``: the two above with ``TrainingArguments(bf16=True)`` (CPU
  autocast to bfloat16), the Trainer's fastest CPU setting on CPUs with AVX512-BF16.

``ratios.vs_hf_trainer`` is kerasft over the fastest Hugging Face contender. Each contender's
``model_gflops_per_s`` is the epoch's model work (forward and backward over the real tokens, not the
padding: ``training_gflop``) over its train time, and ``share_of_bf16_peak`` divides it by this CPU's
bfloat16 matmul peak, measured first (benchmarks/peak.py).

Lever variants (not run unless named in ``--contenders``): ``kerasft-float32`` and ``kerasft-bfloat16`` (the
two policies ``train.mixed_precision=auto`` chooses between on a CPU, set outright), ``kerasft-xla``
(XLA with batches padded to multiples of 32), ``kerasft-spe`` (``steps_per_execution=8``), ``kerasft-random``
(random batches instead of length buckets), ``kerasft-threads1`` (1 intra-op thread, 2 inter-op), and one
each undoing one choice of kerasft.optimizer, kerasft.model, kerasft.session or kerasft.batching: ``kerasft-new-adam``
(``keras.optimizers.Adam``), ``kerasft-sparse-adam`` (``keras.optimizers.legacy.Adam``, whose sparse path
updates embeddings in several passes), ``kerasft-lazy-adam`` (kerasft.optimizer.LazyAdam: only the batch's
embedding rows,
``train.lazy_adam=true``), ``kerasft-autograph`` (steps traced with AutoGraph),
``kerasft-autotune`` (tf.data autotuning left on), ``kerasft-pad8`` (batches padded to a multiple of 8 tokens),
``kerasft-traced-twice`` (the optimizer's slots left to the first step, which is then traced twice),
``kerasft-numpy-batches`` (the training batches cut by a ``numpy_function`` over ``Dataset.range`` instead of
``Dataset.to_tf_dataset`` with kerasft's collate), ``kerasft-legacy-dropout`` (dropout from Keras' op-seeded random
ops instead of the ``tf.random.Generator`` state that backups save, so that resumed runs draw the same masks),
``kerasft-keras-gelu`` (GELU as Keras computes it, in the policy's dtype, instead of kerasft.activations' float32),
``kerasft-keras-dropout-draw`` (dropout's uniform numbers drawn in the inputs' dtype, as Keras draws them, instead of
float32: kerasft.model).

With ``--repeats N`` the whole list runs N times, round after round, and each contender's figures
are those of its median round (every round's examples/s is kept beside them); ratios compare medians.
Each contender's CPU steal (/proc/stat: time the hypervisor gave other guests while it ran) is
reported beside its figure: on a virtual machine, busy neighbours slow contenders unequally
(PyTorch more than TensorFlow), so a run with steal above 2% warns that its ratios are not evidence.

PyTorch is a benchmark-only extra: ``pip install -e '.[benchmark]'`` (torch CPU build, accelerate).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REQUIRED = [
    "kerasft",
    "kerasft-run",
    "seed-padding",
    "hf-trainer",
    "hf-trainer-grouped",
    "hf-trainer-bf16",
    "hf-trainer-grouped-bf16",
]
VARIANTS = [
    "kerasft-float32",
    "kerasft-bfloat16",
    "kerasft-xla",
    "kerasft-spe",
    "kerasft-random",
    "kerasft-threads1",
    "kerasft-new-adam",
    "kerasft-sparse-adam",
    "kerasft-autograph",
    "kerasft-autotune",
    "kerasft-pad8",
    "kerasft-traced-twice",
    "kerasft-lazy-adam",
    "kerasft-numpy-batches",
    "kerasft-legacy-dropout",
    "kerasft-keras-gelu",
    "kerasft-keras-dropout-draw",
]
LEARNING_RATE = 5e-5
VALIDATION_SHARE = 8  # kerasft-run's validation split: 1 / 8 of the training rows, as in emotion (2000 / 16000)
STEAL_WARNING = 0.02  # more CPU steal than this during a contender: the host was busy, the ratios are not comparable
SEED = 42


def read_rows(
    path: str, sep: str | None, columns: list[str] | None, samples: int
) -> tuple[list[str], list[int], list[str]]:
    """Texts, label ids and label names (sorted) of the first ``samples`` rows."""
    with open(path, newline="", encoding="utf-8") as handle:
        if columns:
            reader = csv.reader(handle, delimiter=sep or ",", quoting=csv.QUOTE_NONE)
            rows = [dict(zip(columns, row)) for row in reader if row]
        else:
            rows = list(csv.DictReader(handle, delimiter=sep or ","))
    rows = rows[:samples]
    names = sorted({row["label"] for row in rows})
    return [row["text"] for row in rows], [names.index(row["label"]) for row in rows], names


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


# --- the contenders, each run in a fresh process ------------------------------------------------------------------


def run_seed_padding(texts, labels, names, checkpoint: str, batch_size: int) -> dict:
    """The classic notebook: pad every text to the dataset's longest, `to_tf_dataset(shuffle=True)`, compile the
    usual way."""
    import datasets
    import numpy as np
    import tf_keras as keras
    from transformers import DataCollatorWithPadding

    from kerasft import evaluate
    from kerasft import model as models

    keras.utils.set_random_seed(SEED)
    tokenizer = models.load_tokenizer(checkpoint)
    model = models.build_classifier(checkpoint, names)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    longest = max(len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"])
    tokenized = datasets.Dataset.from_dict({"text": texts, "label": labels}).map(
        lambda batch: tokenizer(batch["text"], padding="max_length", max_length=longest, truncation=True), batched=True
    )
    train_ds = tokenized.to_tf_dataset(
        columns=list(tokenizer.model_input_names),
        label_cols="label",
        batch_size=batch_size,
        shuffle=True,
        collate_fn=DataCollatorWithPadding(tokenizer, return_tensors="np"),
    )
    started = time.perf_counter()
    model.fit(train_ds, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    probabilities = evaluate.predict_split(model, tokenized, tokenizer, batch_size)
    accuracy = float((probabilities.argmax(axis=1) == np.asarray(labels)).mean())
    return {"seconds": seconds, "accuracy": accuracy, "precision": "float32", "xla": False}


def numpy_function_batches(split, plan, collate):
    """The training pipeline kerasft had before its batches went through `Dataset.to_tf_dataset`, for the
    ``kerasft-numpy-batches`` lever: ``tf.data.Dataset.range(batches).map(numpy_function)``, each global batch
    cut from the arrow columns with NumPy (no per-example Python)."""
    import numpy as np
    import pyarrow as pa
    import tensorflow as tf

    from kerasft import batching

    columns = collate.columns(split)
    ragged = {}
    for name in columns:
        array = split.with_format("arrow")[name]
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        offsets = array.offsets.to_numpy()
        ragged[name] = (array.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]], offsets - offsets[0])
    lengths = np.diff(ragged[columns[0]][1])
    labels = np.asarray(split.with_format("numpy")["label"], dtype=np.int64)

    def fetch(batch):
        rows = plan.indices(int(batch))
        width = collate.width(int(lengths[rows].max(initial=0)))
        filled = np.arange(width) < lengths[rows][:, None]
        outputs = []
        for name in columns:
            values, offsets = ragged[name]
            out = np.full((len(rows), width), collate.pad_id if name == "input_ids" else 0, dtype=np.int64)
            take = np.repeat(offsets[rows] - np.concatenate([[0], np.cumsum(lengths[rows])[:-1]]), lengths[rows])
            out[filled] = values[take + np.arange(lengths[rows].sum())]
            outputs.append(out)
        return (*outputs, labels[rows])

    def to_inputs(batch):
        tensors = tf.numpy_function(fetch, [batch], [tf.int64] * (len(columns) + 1), stateful=False)
        features = {name: tf.ensure_shape(tensor, [None, None]) for name, tensor in zip(columns, tensors)}
        return features, tf.ensure_shape(tensors[-1], [None])

    dataset = tf.data.Dataset.range(plan.batches).map(to_inputs).prefetch(2)
    return batching.shard_by_data(batching.without_autotune(dataset))


class PhaseClock:
    """Where the training stage of ``kerasft run`` spends the time bare `fit` does not: the validation pass (its
    first trace included), each callback's hooks, saving the trained weights. Seconds per phase, summed::

        clock = PhaseClock()
        model.fit = clock.fit_with_timed_callbacks(model.fit)
        model.evaluate = clock.timed("validation", model.evaluate)   # fit validates through model.evaluate
    """

    HOOKS = ("on_train_begin", "on_train_batch_begin", "on_train_batch_end", "on_epoch_end", "on_train_end")

    def __init__(self):
        self.seconds = collections.defaultdict(float)

    def timed(self, phase: str, function):
        @functools.wraps(function)  # keeps Keras' ``_is_default`` mark: a hook it skips stays skipped
        def timed_function(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started

        return timed_function

    def fit_with_timed_callbacks(self, fit):
        def timed_fit(*args, callbacks=(), **kwargs):
            for callback in callbacks:
                for hook in self.HOOKS:
                    method = getattr(callback, hook)
                    if not getattr(method, "_is_default", False):
                        setattr(callback, hook, self.timed(f"{type(callback).__name__}.{hook}", method))
            return fit(*args, callbacks=callbacks, **kwargs)

        return timed_fit

    def phases(self) -> dict:
        return {phase: round(seconds, 3) for phase, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1])}


def run_kerasft(name: str, data_file: str, checkpoint: str, batch_size: int, rows: int) -> dict:
    """kerasft as a run builds it (kerasft.session, kerasft.train, kerasft.batching), with one lever undone for a
    variant."""
    if name == "kerasft-threads1":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(2)
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from kerasft import activations, batching, evaluate, optimizer, train
    from kerasft import model as models
    from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig
    from kerasft.resume import TrainingState
    from kerasft.rundir import RunDir
    from kerasft.session import Session

    recipe = Recipe(
        name="benchmark",
        model=ModelConfig(checkpoint=checkpoint, max_length=512),
        data=DataConfig(
            train=data_file,
            validation=data_file,
            test=data_file,
            # a run validates each epoch: on a split one eighth the training set's size, as emotion's (2000 / 16000)
            validation_samples=max(1, rows // VALIDATION_SHARE),
        ),  # every contender trains on the same rows
        train=TrainConfig(
            epochs=1,
            batch_size=batch_size,
            learning_rate=LEARNING_RATE,
            seed=SEED,
            lazy_adam=name == "kerasft-lazy-adam",
            mixed_precision={"kerasft-float32": "off", "kerasft-bfloat16": "mixed_bfloat16"}.get(name, "auto"),
            jit_compile="on" if name == "kerasft-xla" else "auto",
        ),
    )
    real_compile = models.compile_classifier
    levers = {  # each undoes one choice of kerasft.model, kerasft.optimizer or kerasft.session
        "kerasft-new-adam": mock.patch.object(optimizer, "Adam", keras.optimizers.Adam),
        "kerasft-sparse-adam": mock.patch.object(optimizer, "Adam", keras.optimizers.legacy.Adam),
        "kerasft-traced-twice": mock.patch.object(models, "create_optimizer_state", lambda model: None),
        "kerasft-spe": mock.patch.object(
            models, "compile_classifier", lambda *a, **k: real_compile(*a, **k, steps_per_execution=8)
        ),
        "kerasft-legacy-dropout": mock.patch.object(
            keras.backend.experimental, "enable_tf_random_generator", lambda: None
        ),
        "kerasft-keras-gelu": mock.patch.object(activations, "float32_gelu", contextlib.nullcontext),
        "kerasft-keras-dropout-draw": mock.patch.object(
            models,
            "_dropout_drawing_float32",
            lambda generator: functools.partial(tf.nn.experimental.general_dropout, uniform_sampler=generator.uniform),
        ),
    }
    with levers.get(name, contextlib.nullcontext()):
        session = Session(recipe).prepare()
    model = session.model
    if name == "kerasft-autograph":
        for step in ("train_step", "test_step", "predict_step"):
            setattr(model, step, getattr(type(model), step).__get__(model))  # the class's own steps, unwrapped
    plan = train.training_plan(session)
    if name == "kerasft-random":
        plan = batching.Plan(plan.examples, batch_size, seed=SEED)  # random batches instead of length buckets
    precision = session.precision
    multiple = 8 if name == "kerasft-pad8" else batching.pad_multiple(precision.device_kind, precision.jit_compile)
    collate = batching.PadToLongest(session.tokenizer, multiple)
    split = session.tokenized["train"]
    pipeline = numpy_function_batches if name == "kerasft-numpy-batches" else batching.training_batches
    train_ds = pipeline(split, plan, collate)
    if name == "kerasft-autotune":
        options = tf.data.Options()
        options.autotune.enabled = True
        train_ds = train_ds.with_options(options)
    clock = PhaseClock()
    started = time.perf_counter()
    if name == "kerasft-run":
        with tempfile.TemporaryDirectory() as scratch:
            run_dir = RunDir.create(Path(scratch), "run", "benchmark")
            state = TrainingState(run_dir, chief=True)
            model.fit = clock.fit_with_timed_callbacks(model.fit)
            model.evaluate = clock.timed("validation", model.evaluate)
            state.save_trained = clock.timed("save_trained", state.save_trained)
            train.train(session, run_dir, Path(scratch) / "tb" / "run", state, plan)
            seconds = time.perf_counter() - started
    else:
        model.fit(train_ds, epochs=1, steps_per_epoch=plan.steps_per_epoch, verbose=0)
        seconds = time.perf_counter() - started
    probabilities = evaluate.predict_split(evaluate.evaluation_model(session), split, session.tokenizer, batch_size)
    accuracy = float((probabilities.argmax(axis=1) == np.asarray(split["label"])).mean())
    return {
        "seconds": seconds,
        "accuracy": accuracy,
        "precision": precision.policy,
        "xla": precision.jit_compile,
        **({"phases": clock.phases()} if clock.seconds else {}),
    }


def run_hf_trainer(name: str, texts, labels, names, checkpoint: str, batch_size: int) -> dict:
    import datasets
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    split = datasets.Dataset.from_dict({"text": texts, "label": labels})
    tokenized = split.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=512), batched=True, remove_columns=["text"]
    )
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            num_train_epochs=1,
            learning_rate=LEARNING_RATE,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            seed=SEED,
            group_by_length="grouped" in name,
            bf16=name.endswith("-bf16"),
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model, args=arguments, train_dataset=tokenized, data_collator=DataCollatorWithPadding(tokenizer)
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        # with group_by_length, predict returns rows grouped by length: score against its own label_ids
        output = trainer.predict(tokenized)
    accuracy = float((np.asarray(output.predictions).argmax(axis=1) == output.label_ids).mean())
    precision = "bfloat16 autocast" if name.endswith("-bf16") else "float32"
    return {"seconds": seconds, "accuracy": accuracy, "precision": precision, "torch_threads": torch.get_num_threads()}


def training_gflop(checkpoint: str, texts: list[str], max_length: int = 512) -> float:
    """One epoch's model work over these texts, forward and backward, on their real tokens (padding excluded).

    Per text of n tokens: 6 * P * n for the encoder's dense layers (P weights outside the embeddings: 2 P n
    forward, 4 P n backward) and 12 * layers * hidden * n^2 for attention's two n x n products (4 layers
    hidden n^2 forward, twice that backward). The embeddings are lookups, and the classifier is negligible.
    """
    from transformers import AutoConfig, AutoTokenizer, TFAutoModel

    config = AutoConfig.from_pretrained(checkpoint)
    model = TFAutoModel.from_config(config)
    model(model.dummy_inputs)
    embedding = sum(int(weight.shape.num_elements()) for weight in model.weights if "embeddings" in weight.name)
    dense = sum(int(weight.shape.num_elements()) for weight in model.weights) - embedding
    lengths = [
        len(ids)
        for ids in AutoTokenizer.from_pretrained(checkpoint)(texts, truncation=True, max_length=max_length)["input_ids"]
    ]
    attention = 12 * config.num_hidden_layers * config.hidden_size
    return sum(6 * dense * n + attention * n * n for n in lengths) / 1e9


def run_one(name: str, args) -> dict:
    texts, labels, names = read_rows(args.data, args.sep, args.columns, args.samples)
    if name.startswith("kerasft"):
        with tempfile.TemporaryDirectory() as scratch:  # the same rows, as a file a recipe names
            data_file = Path(scratch) / "train.csv"
            with data_file.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(
                    [("text", "label"), *((text, names[label]) for text, label in zip(texts, labels))]
                )
            result = run_kerasft(name, str(data_file), args.checkpoint, args.batch_size, len(texts))
    elif name == "seed-padding":
        result = run_seed_padding(texts, labels, names, args.checkpoint, args.batch_size)
    else:
        result = run_hf_trainer(name, texts, labels, names, args.checkpoint, args.batch_size)
    return result | {"examples": len(texts), "ex_per_s": len(texts) / result["seconds"], "peak_rss_mb": peak_rss_mb()}


# --- the driver ---------------------------------------------------------------------------------------------------


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat): user, nice, system, idle, iowait, irq, softirq, steal."""
    return [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def steal_share(before: list[int], after: list[int]) -> float:
    """The share of CPU time the hypervisor gave to other guests in between: a virtual machine's neighbours at work."""
    spent = [end - start for start, end in zip(before, after)]
    return spent[7] / max(sum(spent), 1)


def run_child(name: str, command: list[str]) -> dict:
    """Runs one contender in a fresh process and returns the JSON it prints after ``RESULT``; exits if it failed."""
    print(f"running {name} ...", file=sys.stderr, flush=True)
    before = cpu_times()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=os.environ | {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT ") :]) | {"cpu_steal": steal_share(before, cpu_times())}


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def median_round(runs: list[dict]) -> dict:
    """The round with the median examples/s (the lower middle one for an even count), with every round's figure
    beside it."""
    ordered = sorted(runs, key=lambda row: row["ex_per_s"])
    return ordered[(len(ordered) - 1) // 2] | {"rounds_ex_per_s": [row["ex_per_s"] for row in runs]}


def markdown_table(results: dict, ratios: dict, peak: dict) -> str:
    lines = [
        "| contender | examples/s | every round | train time (s) | training accuracy | model GFLOP/s | of bf16 peak "
        "| peak RSS (MB) | precision | CPU steal |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, row in results.items():
        every = " / ".join(f"{figure:.1f}" for figure in row["rounds_ex_per_s"])
        lines.append(
            f"| {name} | {row['ex_per_s']:.1f} | {every} | {row['seconds']:.1f} | {row['accuracy']:.4f} | "
            f"{row['model_gflops_per_s']:.0f} | {row['share_of_bf16_peak']:.1%} | {row['peak_rss_mb']:.0f} "
            f"| {row['precision']} | {row['cpu_steal']:.1%} |"
        )
    lines.append("")
    lines.append(
        f"- matmul peak ({peak['size']}x{peak['size']}): float32 {peak['float32_gflops']:.0f}, "
        f"bfloat16 {peak['bfloat16_gflops']:.0f} GFLOP/s"
    )
    lines += [f"- {key}: {value:.2f}x" for key, value in ratios.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", required=True, help="training file: .csv with a header, or delimited lines with --sep and --columns"
    )
    parser.add_argument("--sep", default=None)
    parser.add_argument(
        "--columns", type=lambda text: text.split(","), default=None, help="e.g. text,label for files without a header"
    )
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--checkpoint", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument(
        "--contenders",
        type=lambda text: text.split(","),
        default=REQUIRED,
        help=f"default: {','.join(REQUIRED)}; levers: {','.join(VARIANTS)}",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of all contenders, one after another; each figure is the median round's",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checkpoint is None:
        from kerasft.recipe import packaged_minilm

        args.checkpoint = packaged_minilm()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args)))
        return
    print("measuring the matmul peak ...", file=sys.stderr, flush=True)
    peak = json.loads(
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("peak.py"))],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
        ).stdout
    )
    rounds = {name: [] for name in args.contenders}
    for _ in range(args.repeats):  # whole rounds, so that a slow spell of the machine falls on every contender alike
        for name in args.contenders:
            command = [
                sys.executable,
                __file__,
                "--one",
                name,
                "--data",
                args.data,
                "--samples",
                str(args.samples),
                "--batch-size",
                str(args.batch_size),
                "--checkpoint",
                args.checkpoint,
            ]
            command += (["--sep", args.sep] if args.sep else []) + (
                ["--columns", ",".join(args.columns)] if args.columns else []
            )
            row = run_child(name, command)
            rounds[name].append(row)
            print(
                f"  {name}: {row['ex_per_s']:.1f} examples/s, accuracy {row['accuracy']:.4f}, CPU steal "
                f"{row['cpu_steal']:.1%}" + (f", seconds by phase {row['phases']}" if "phases" in row else ""),
                file=sys.stderr,
                flush=True,
            )
            if row["cpu_steal"] > STEAL_WARNING:
                print(
                    f"  warning: other guests took {row['cpu_steal']:.1%} of this machine's CPU time during {name}; "
                    "this round's figures are not evidence",
                    file=sys.stderr,
                    flush=True,
                )
    results = {name: median_round(runs) for name, runs in rounds.items()}
    texts = read_rows(args.data, args.sep, args.columns, args.samples)[0]
    epoch_gflop = training_gflop(args.checkpoint, texts)
    for row in results.values():
        row["model_gflops_per_s"] = epoch_gflop / row["seconds"]
        row["share_of_bf16_peak"] = row["model_gflops_per_s"] / peak["bfloat16_gflops"]
    ex_per_s = {name: row["ex_per_s"] for name, row in results.items()}
    ratios = {}
    hf = [ex_per_s[name] for name in ex_per_s if name.startswith("hf-")]
    if "kerasft" in ex_per_s and hf:
        ratios["vs_hf_trainer"] = ex_per_s["kerasft"] / max(hf)
    if "kerasft" in ex_per_s and "kerasft-run" in ex_per_s:
        ratios["run_vs_bare_fit"] = ex_per_s["kerasft-run"] / ex_per_s["kerasft"]
    if "kerasft" in ex_per_s and "seed-padding" in ex_per_s:
        ratios["vs_seed_padding"] = ex_per_s["kerasft"] / ex_per_s["seed-padding"]
    report = {
        "ex_per_s": ex_per_s,
        "ratios": ratios,
        "accuracy": {name: row["accuracy"] for name, row in results.items()},
        "peak_rss_mb": {name: row["peak_rss_mb"] for name, row in results.items()},
        "details": results,
        "epoch_training_gflop": epoch_gflop,
        "matmul_peak_gflops": peak,
        "machine": machine(),
        "settings": {
            "data": args.data,
            "samples": args.samples,
            "batch_size": args.batch_size,
            "checkpoint": args.checkpoint,
            "learning_rate": LEARNING_RATE,
            "epochs": 1,
            "seed": SEED,
            "repeats": args.repeats,
        },
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(markdown_table(results, ratios, peak))


if __name__ == "__main__":
    main()
