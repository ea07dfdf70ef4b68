"""Two of kerasft's training choices measured in one process, epoch against epoch: the input pipeline
(`Dataset.to_tf_dataset` vs the ``numpy_function`` pipeline it replaced) and dropout's random numbers
(`tf.random.Generator` state, which backups save so resumed runs draw the same masks, vs Keras' op-seeded ops).

    python benchmarks/ab_levers.py --data emotion_style.txt --sep ';' --columns text,label --repeats 3

Separate processes (train_throughput.py) measure whole runs, first-step tracing included, and vary
by 10% from one process to the next. Here one model per dropout kind is built and traced once
(a warm-up epoch), then the four (dropout, pipeline) pairs each train one epoch in turn, round after
round; each pair's figure is its median epoch. Models keep training from epoch to epoch, which
does not change the work of a step.
"""

from __future__ import annotations

import json
import os
import time
from unittest import mock

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    from batching_cost import data_config, parse_arguments

    args = parse_arguments(__doc__, repeats=3)

    import numpy as np
    import tf_keras as keras
    from train_throughput import numpy_function_batches

    from kerasft import batching, train
    from kerasft.recipe import ModelConfig, Recipe, TrainConfig, packaged_minilm
    from kerasft.session import Session

    data = data_config(args)
    recipe = Recipe(
        name="ab",
        model=ModelConfig(checkpoint=packaged_minilm(), max_length=512),
        data=data,
        train=TrainConfig(epochs=1, batch_size=args.batch_size, learning_rate=5e-5),
    )
    sessions = {}
    with mock.patch.object(keras.backend.experimental, "enable_tf_random_generator", lambda: None):
        sessions["op-seeded dropout"] = Session(recipe).prepare()  # built first, while Keras' default is in force
    sessions["generator dropout"] = Session(recipe).prepare()
    pipelines = {"to_tf_dataset": batching.training_batches, "numpy_function": numpy_function_batches}
    seconds = {(dropout, pipeline): [] for dropout in sessions for pipeline in pipelines}
    for session in sessions.values():  # warm-up: trace each model's train function once
        plan = train.training_plan(session)
        session.model.fit(
            batching.training_batches(session.tokenized["train"], plan, batching.PadToLongest(session.tokenizer)),
            epochs=1,
            steps_per_epoch=plan.steps_per_epoch,
            verbose=0,
        )
    for _ in range(args.repeats):
        for (dropout, pipeline), times in seconds.items():
            session = sessions[dropout]
            plan = train.training_plan(session)
            dataset = pipelines[pipeline](session.tokenized["train"], plan, batching.PadToLongest(session.tokenizer))
            started = time.perf_counter()
            session.model.fit(dataset, epochs=1, steps_per_epoch=plan.steps_per_epoch, verbose=0)
            times.append(time.perf_counter() - started)
            print(f"{dropout}, {pipeline}: {plan.examples / times[-1]:.1f} examples/s", flush=True)
    examples = len(sessions["generator dropout"].tokenized["train"])
    report = {
        f"{dropout}, {pipeline}": {
            "ex_per_s": examples / float(np.median(times)),
            "rounds_ex_per_s": [examples / t for t in times],
        }
        for (dropout, pipeline), times in seconds.items()
    }
    report["settings"] = vars(args) | {"examples": examples}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    print("| dropout, pipeline | examples/s (median epoch) | every epoch |\n|---|---:|---|")
    for name, row in report.items():
        if name != "settings":
            print(
                f"| {name} | {row['ex_per_s']:.1f} | {' / '.join(f'{value:.1f}' for value in row['rounds_ex_per_s'])} |"
            )


if __name__ == "__main__":
    main()
