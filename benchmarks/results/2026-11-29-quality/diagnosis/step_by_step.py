"""Step by step: kerasft's compiled TF classifier against the PyTorch model, same weights, same batches, no dropout.

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 flock /tmp/cpu.lock /work/bench-venv/bin/python \
        benchmarks/results/2026-11-29-quality/diagnosis/step_by_step.py compare [--steps 60] [--lr 1e-4] \
        [--data /tmp/q16/go]
    ... step_by_step.py init [--steps 50]
    ... step_by_step.py full --seed 0 [--kerasft-adam torch-epsilon]

``compare``: kerasft's model comes from kerasft.session.Session on the quality benchmark's GoEmotions recipe
(benchmarks/multilabel_pairs_quality.py `recipe_for`: recipes/goemotions.py, the local-file overrides,
float32, lr 1e-4 as the benchmark ran it), so its loss, optimizer (kerasft.optimizer.Adam) and compile are the
real ones; the checkpoint is a copy of the packaged all-MiniLM-L6-v2 with both dropout rates 0 in config.json.
Every TF weight, the new head included, is copied into AutoModelForSequenceClassification
(problem_type multi_label_classification). The first ``--steps`` batches of kerasft's own training pipeline
(kerasft.batching.training_batches over kerasft.train.training_plan: length-bucketed, padded per batch) go to:

- TF: ``model.train_on_batch`` (HF's train_step: Keras' compiled loss and kerasft's Adam);
- PT "torch": ``torch.optim.Adam(eps=1e-7)`` on the model's own BCEWithLogitsLoss (what the benchmark's
  Trainer side runs);
- PT "tfeps": the same, with TensorFlow's fused Adam update instead (ResourceApplyAdam: epsilon added to
  sqrt(v) before the bias correction, i.e. an effective epsilon of eps / sqrt(1 - beta2^t)).

Before step 1 it compares the two sides' gradients per variable; after steps 1, 10 and the last it prints the
largest weight difference of a few variables. ``init``: the TF side alone, from the same weights, once with
kerasft's own new head (Keras TruncatedNormal(0.02), seed 0) and once with PyTorch's (normal(0, 0.02), bias 0,
``set_seed(0)``), losses over the first ``--steps`` batches; and each side's initial loss on the first
batches with its own default head.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "benchmarks"))

import multilabel_pairs_quality as quality  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, set_seed  # noqa: E402
from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name  # noqa: E402

from kerasft import batching  # noqa: E402
from kerasft import optimizer as kerasft_optimizer  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402
from kerasft.session import Session  # noqa: E402
from kerasft.train import training_plan  # noqa: E402

WATCHED = {  # short name -> PyTorch parameter name
    "classifier.kernel": "classifier.weight",
    "pooler.kernel": "bert.pooler.dense.weight",
    "word_embeddings": "bert.embeddings.word_embeddings.weight",
    "layer0.query.kernel": "bert.encoder.layer.0.attention.self.query.weight",
}


class TensorFlowAdam(torch.optim.Optimizer):
    """TF's ResourceApplyAdam (Keras' legacy Adam): lr_t = lr*sqrt(1-b2^t)/(1-b1^t); w -= lr_t*m/(sqrt(v)+eps)."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-7):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["t"], state["m"], state["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                state["t"] += 1
                t = state["t"]
                state["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                lr_t = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.addcdiv_(state["m"], state["v"].sqrt().add_(group["eps"]), value=-lr_t)


class TorchEpsilonAdam(kerasft_optimizer.Adam):
    """kerasft's Adam with PyTorch's epsilon: ResourceApplyAdam given eps * sqrt(1 - beta2^t), so that its
    lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v) + eps*sqrt(1-b2^t)) = lr * m_hat/(sqrt(v_hat) + eps), torch.optim.Adam's
    update (the fix proposed for kerasft.optimizer.Adam; LazyAdam reads the same coefficient)."""

    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)
        coefficients = apply_state[(var_device, var_dtype)]
        coefficients["epsilon"] = coefficients["epsilon"] * tf.sqrt(1 - coefficients["beta_2_power"])


def checkpoint_without_dropout(folder: Path) -> Path:
    """The packaged checkpoint's files, linked, with both dropout rates 0 in its config.json."""
    source = Path(packaged_minilm())
    for item in source.iterdir():
        if item.name != "config.json":
            (folder / item.name).symlink_to(item)
    config = json.loads((source / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def kerasft_session(args, checkpoint: Path) -> Session:
    recipe_args = argparse.Namespace(
        task="goemotions",
        data=args.data,
        checkpoint=str(checkpoint),
        max_length=128,
        epochs=3,
        batch_size=32,
        learning_rate=args.lr,
        seed=args.seed,
        kerasft_overrides=args.overrides,
    )
    return Session(quality.recipe_for(recipe_args))


def first_batches(session: Session, count: int) -> list[tuple[dict, np.ndarray]]:
    """The first ``count`` batches `fit` would get: kerasft's own pipeline, as kerasft.train builds it."""
    plan = training_plan(session)
    precision = session.precision
    collate = batching.PadToLongest.for_device(
        session.tokenizer, precision.device_kind, precision.jit_compile, session.recipe.model.max_length
    )
    pipeline = batching.training_batches(session.tokenized["train"], plan, collate)
    return [({name: value.numpy() for name, value in x.items()}, y.numpy()) for x, y in pipeline.take(count)]


def pairs_of(tf_model, pt_model) -> list[tuple[str, tf.Variable, str, bool]]:
    """(TF name, TF variable, PT name, transposed) for every TF weight; every PT parameter must be matched."""
    prefix = "" if any(n.startswith(pt_model.base_model_prefix) for n, _ in pt_model.named_parameters()) else "bert."
    params = dict(pt_model.named_parameters())
    pairs = []
    for variable in tf_model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            variable.name, start_prefix_to_remove=prefix, tf_weight_shape=variable.shape
        )
        if name not in params:
            raise KeyError(f"{variable.name} -> {name}: no such PyTorch parameter")
        pairs.append((variable.name, variable, name, transpose.name != "NO"))
    unmatched = set(params) - {name for *_, name, _ in pairs}
    if unmatched:
        raise KeyError(f"PyTorch parameters without a TF weight: {sorted(unmatched)}")
    return pairs


def as_pt(array: np.ndarray, transposed: bool) -> np.ndarray:
    return array.T if transposed else array


def copy_tf_into_pt(pairs, pt_model) -> None:
    params = dict(pt_model.named_parameters())
    with torch.no_grad():
        for _, variable, name, transposed in pairs:
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(as_pt(variable.numpy(), transposed))))


def pt_model_of(checkpoint: Path, label_names: list[str]):
    return AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
        problem_type="multi_label_classification",
    )


def pt_inputs(x: dict) -> dict:
    return {name: torch.from_numpy(value) for name, value in x.items()}


def weight_differences(pairs, pt_model) -> dict[str, float]:
    params = dict(pt_model.named_parameters())
    by_pt = {name: (variable, transposed) for _, variable, name, transposed in pairs}
    out = {}
    for short, name in WATCHED.items():
        variable, transposed = by_pt[name]
        out[short] = float(np.abs(as_pt(variable.numpy(), transposed) - params[name].detach().numpy()).max())
    every = max(float(np.abs(as_pt(v.numpy(), t) - params[n].detach().numpy()).max()) for _, v, n, t in pairs)
    return out | {"any": every}


def compare_gradients(tf_model, pt_model, pairs, x, y) -> None:
    """Step 1's loss and gradient per variable, both sides, from identical weights."""
    with tf.GradientTape() as tape:
        logits = tf_model({k: tf.constant(v) for k, v in x.items()}, training=True).logits
        tf_loss = tf_model.loss(tf.constant(y), logits)  # the compiled loss object (Keras BinaryCrossentropy)
    tf_grads = tape.gradient(tf_loss, [variable for _, variable, _, _ in pairs])
    pt_model.zero_grad()
    output = pt_model(**pt_inputs(x), labels=torch.from_numpy(y))
    output.loss.backward()
    params = dict(pt_model.named_parameters())
    print(f"loss object: {type(tf_model.loss).__name__} {tf_model.loss.get_config()}")
    print(
        f"step-1 loss TF {float(tf_loss):.8f} PT {output.loss.item():.8f}; logits max diff "
        f"{np.abs(logits.numpy() - output.logits.detach().numpy()).max():.2e}"
    )
    rows = []
    for _, _, name, transposed in pairs:
        grad = tf_grads[[p[2] for p in pairs].index(name)]
        grad = tf.convert_to_tensor(grad).numpy()  # IndexedSlices (embeddings) summed into a dense matrix
        pt_grad = params[name].grad.numpy()
        diff = as_pt(grad, transposed) - pt_grad
        rows.append(
            (np.linalg.norm(diff) / (np.linalg.norm(pt_grad) + 1e-30), np.abs(diff).max(), np.abs(pt_grad).max(), name)
        )
    rows.sort(reverse=True)
    # the attention key biases get no gradient in exact arithmetic (softmax ignores a constant per query): theirs is
    # rounding noise, ~1e-12, on both sides
    keys = [row for row in rows if "attention.self.key.bias" in row[3]]
    rest = [row for row in rows if "attention.self.key.bias" not in row[3]]
    print("step-1 gradients, TF vs PT, |dg|/|g| (2-norms), largest first (key biases apart):")
    for relative, diff, scale, name in rest[:6]:
        print(f"  {name:<55} rel {relative:.2e}  max|dg| {diff:.2e}  max|g| {scale:.2e}")
    print(
        f"  ... all {len(rest)} other variables: max rel {rest[0][0]:.2e}, median {np.median([r[0] for r in rest]):.2e}"
    )
    print(
        f"  the {len(keys)} attention key biases: max|g| {max(r[2] for r in keys):.1e} (noise), "
        f"max|dg| {max(r[1] for r in keys):.1e}"
    )
    # how much of the gradient is small enough for Adam's epsilon to matter in step 1
    all_grads = np.concatenate([np.abs(params[name].grad.numpy()).ravel() for *_, name, _ in pairs])
    nonzero = all_grads[all_grads > 0]
    effective = 1e-7 / math.sqrt(1 - 0.999)
    print(
        f"step-1 |g| of the {nonzero.size} nonzero gradient elements: median {np.median(nonzero):.2e}; "
        f"{(nonzero < effective).mean():.1%} below TF's step-1 effective epsilon {effective:.2e}, "
        f"{(nonzero < 1e-7).mean():.1%} below 1e-7"
    )
    pt_model.zero_grad()


def compare(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = checkpoint_without_dropout(Path(folder))
        session = kerasft_session(args, checkpoint)
        session.prepare()
        tf_model = session.model
        print(
            f"kerasft: optimizer {type(tf_model.optimizer).__name__} lr {float(tf_model.optimizer.learning_rate):g} "
            f"eps {tf_model.optimizer.epsilon:g} betas {float(tf_model.optimizer.beta_1):g}/"
            f"{float(tf_model.optimizer.beta_2):g}; loss {type(tf_model.loss).__name__}; "
            f"dropout {tf_model.config.hidden_dropout_prob}/{tf_model.config.attention_probs_dropout_prob}"
        )
        batches = first_batches(session, args.steps)
        print("batch widths:", [x["input_ids"].shape[1] for x, _ in batches[:10]], "inputs:", sorted(batches[0][0]))
        torch.manual_seed(0)
        pt = {kind: pt_model_of(checkpoint, session.label_names) for kind in ("torch", "tfeps")}
        pairs = {kind: pairs_of(tf_model, model) for kind, model in pt.items()}
        for kind, model in pt.items():
            copy_tf_into_pt(pairs[kind], model)
            model.train()  # dropout rates are 0 in the config: the same computation as eval mode
            print(
                f"copied {len(pairs[kind])} TF weights into PT ({kind}); "
                f"max diff {weight_differences(pairs[kind], model)['any']:.1e}"
            )
        optimizers = {
            "torch": torch.optim.Adam(pt["torch"].parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7),
            "tfeps": TensorFlowAdam(pt["tfeps"].parameters(), lr=args.lr, eps=1e-7),
        }
        compare_gradients(tf_model, pt["torch"], pairs["torch"], *batches[0])
        before = {name: v.numpy().copy() for name, v, _, _ in pairs["torch"]}
        print(f"{'step':>4} {'loss TF':>10} {'loss PT torch':>13} {'rel':>8} {'loss PT tfeps':>13} {'rel':>8}")
        losses = {"tf": [], "torch": [], "tfeps": []}
        for step, (x, y) in enumerate(batches, start=1):
            tf_loss = float(tf_model.train_on_batch(x, y, return_dict=True)["loss"])
            losses["tf"].append(tf_loss)
            for kind, model in pt.items():
                optimizers[kind].zero_grad()
                loss = model(**pt_inputs(x), labels=torch.from_numpy(y)).loss
                loss.backward()
                optimizers[kind].step()
                losses[kind].append(loss.item())
            rel = {kind: abs(losses[kind][-1] - tf_loss) / tf_loss for kind in pt}
            print(
                f"{step:>4} {tf_loss:>10.6f} {losses['torch'][-1]:>13.6f} {rel['torch']:>8.1e} "
                f"{losses['tfeps'][-1]:>13.6f} {rel['tfeps']:>8.1e}",
                flush=True,
            )
            if step == 1:
                update_differences(pairs["torch"], pt, before)
            if step in (1, 10, args.steps):
                for kind, model in pt.items():
                    diffs = weight_differences(pairs[kind], model)
                    print(
                        f"     weights after step {step}, TF vs PT {kind}: "
                        + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
                    )
        for kind in pt:
            gap = np.array(losses["tf"]) - np.array(losses[kind])
            print(
                f"mean loss over {args.steps} steps: TF {np.mean(losses['tf']):.6f} PT {kind} "
                f"{np.mean(losses[kind]):.6f}; TF - PT mean {gap.mean():+.2e}, max |.| {np.abs(gap).max():.2e}"
            )


def update_differences(pairs, pt, before) -> None:
    """Step 1's update (new - old weight) on each side, |du|/|u| (2-norms), key biases apart."""
    params = {kind: dict(model.named_parameters()) for kind, model in pt.items()}
    for kind in pt:
        worst = []
        for tf_name, variable, name, transposed in pairs:
            tf_update = as_pt(variable.numpy() - before[tf_name], transposed)
            pt_update = params[kind][name].detach().numpy() - as_pt(before[tf_name], transposed)
            if "attention.self.key.bias" in name:  # moved by rounding noise only (see compare_gradients)
                continue
            worst.append((np.linalg.norm(tf_update - pt_update) / (np.linalg.norm(tf_update) + 1e-30), name))
        worst.sort(reverse=True)
        print(
            f"     step-1 update, TF vs PT {kind}, |du|/|u| (worst 3): "
            + ", ".join(f"{n} {r:.2e}" for r, n in worst[:3])
        )


def initial_losses(model_call, batches, count) -> float:
    return float(np.mean([model_call(x, y) for x, y in batches[:count]]))


def init(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = checkpoint_without_dropout(Path(folder))
        session = kerasft_session(args, checkpoint)
        session.prepare()
        tf_model = session.model
        batches = first_batches(session, args.steps)
        start = tf_model.get_weights()
        head = [v for v in tf_model.weights if "classifier" in v.name]
        kernel = next(v for v in head if "kernel" in v.name)
        bias = next(v for v in head if "bias" in v.name)
        tf_head = (kernel.numpy().copy(), bias.numpy().copy())
        set_seed(args.seed)  # as the benchmark's Trainer side seeds its new head
        pt_model = pt_model_of(checkpoint, session.label_names).eval()
        pt_head = (
            pt_model.classifier.weight.detach().numpy().T.copy(),
            pt_model.classifier.bias.detach().numpy().copy(),
        )
        for name, (k, b) in (("TF TruncatedNormal(0.02)", tf_head), ("PT normal(0, 0.02)", pt_head)):
            print(
                f"head {name}: kernel std {k.std():.5f} max|.| {np.abs(k).max():.4f}; bias max|.| {np.abs(b).max():.1e}"
            )

        def tf_loss(x, y):
            logits = tf_model({k: tf.constant(v) for k, v in x.items()}, training=False).logits
            return float(tf_model.loss(tf.constant(y), logits))

        def pt_loss(x, y):
            with torch.no_grad():
                return pt_model(**pt_inputs(x), labels=torch.from_numpy(y)).loss.item()

        for count in (1, 10, args.steps):
            print(
                f"initial loss over the first {count} batches, each side with its own default head (seed "
                f"{args.seed}): TF {initial_losses(tf_loss, batches, count):.6f} PT "
                f"{initial_losses(pt_loss, batches, count):.6f}"
            )
        runs = {}
        for name, (k, b) in (("tf-head", tf_head), ("pt-head", pt_head)):
            tf_model.set_weights(start)
            for variable in tf_model.optimizer.variables():  # fresh Adam state and step count
                variable.assign(tf.zeros_like(variable))
            kernel.assign(k)
            bias.assign(b)
            runs[name] = [float(tf_model.train_on_batch(x, y, return_dict=True)["loss"]) for x, y in batches]
        print(f"{'step':>4} {'TF, TF head':>12} {'TF, PT head':>12}")
        for step in list(range(1, 11)) + list(range(20, args.steps + 1, 10)):
            print(f"{step:>4} {runs['tf-head'][step - 1]:>12.6f} {runs['pt-head'][step - 1]:>12.6f}")
        for name, values in runs.items():
            print(
                f"{name}: mean loss over {args.steps} steps {np.mean(values):.6f}, last 10 {np.mean(values[-10:]):.6f}"
            )


def full(args) -> None:
    """The quality benchmark's kerasft side as it ran (packaged checkpoint, dropout on, 3 epochs, its seed), with
    ``--kerasft-adam``; its figures compare with the Trainer's in benchmarks/results/2026-11-29-quality/quality.json."""
    run_args = argparse.Namespace(
        task="goemotions",
        data=args.data,
        checkpoint=None,
        max_length=128,
        epochs=3,
        batch_size=32,
        learning_rate=args.lr,
        seed=args.seed,
        kerasft_overrides=args.overrides,
    )
    result = quality.run_kerasft(run_args)
    test = {key: round(result["test"][key], 4) for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy")}
    print(
        f"kerasft ({args.kerasft_adam} Adam) seed {args.seed}: {test}; steps {result['steps']}; "
        f"training loss by epoch {result['train_loss']}; {result['seconds']} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["compare", "init", "full"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-4, help="the quality benchmark's default (the recipe's is 5e-5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="/tmp/q16/go")
    parser.add_argument(
        "--kerasft-adam",
        choices=["keras", "torch-epsilon"],
        default="keras",
        help="torch-epsilon: swap kerasft.optimizer.Adam for TorchEpsilonAdam (the proposed fix)",
    )
    parser.add_argument(
        "--overrides", nargs="*", default=[], help="more kerasft KEY=VALUE, e.g. train.group_by_length=false"
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.kerasft_adam == "torch-epsilon":  # kerasft.optimization looks the class up when it builds the optimizer
        kerasft_optimizer.Adam = TorchEpsilonAdam
    {"compare": compare, "init": init, "full": full}[args.part](args)


if __name__ == "__main__":
    main()
