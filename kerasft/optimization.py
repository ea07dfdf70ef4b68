"""The optimizer a run trains with: Adam or AdamW, a learning-rate schedule with warmup, gradient accumulation.

    plan = Optimization.of(recipe.train, steps_per_epoch=63)   # 2 epochs, accumulating 4 batches: 31 optimizer steps
    plan.optimizer_steps, plan.warmup_steps                     # (31, 4) with train.warmup_ratio=0.1
    with strategy.scope():
        compile_classifier(model, 5e-5, optimizer=plan.build)   # plan.build(learning_rate=5e-5) makes the optimizer

The recipe's knobs (``train.lr_schedule``, ``train.warmup_ratio`` or ``train.warmup_steps``,
``train.weight_decay``, ``train.gradient_accumulation_steps``) are resolved here against the run's
length, once, so that recipe.json, the first line of the run and the optimizer agree. Left at their
defaults, `build` makes exactly kerasft.optimizer's `Adam` with a constant rate, as before.

Schedules are Keras ``LearningRateSchedule`` objects, which Keras' optimizers evaluate at
``optimizer.iterations``: the count of optimizer steps, which backups save, which replicas share,
and which gradient accumulation advances once per N batches (kerasft.accumulation). So the rate is
right after a resume in mid-epoch, and ``step_learning_rate`` in TensorBoard (kerasft.monitor) is the
rate each step used. They are Hugging Face's: the warmup ramps up linearly from 0 over the first
``warmup_steps`` steps (transformers' own Keras ``WarmUp``), then ``linear`` decays linearly to 0
at the last step (Keras' ``PolynomialDecay``), ``cosine`` along half a cosine to 0 (Keras'
``CosineDecay``), ``constant`` stays; the same curves as ``get_linear_schedule_with_warmup``,
``get_cosine_schedule_with_warmup`` and ``get_constant_schedule_with_warmup`` in PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kerasft.errors import UserError


@dataclass(frozen=True)
class Optimization:
    """A run's optimizer settings, resolved for its length in optimizer steps."""

    schedule: str = "constant"
    warmup_steps: int = 0
    optimizer_steps: int = 1  # over the whole run: batches // accumulation_steps
    weight_decay: float = 0.0
    accumulation_steps: int = 1
    lazy_adam: bool = False
    batch_size: int = 32  # the global batch
    leftover_batches: int = 0  # the run's last batches that add up to no optimizer step (batches % accumulation_steps)

    @classmethod
    def of(cls, train, steps_per_epoch: int) -> Optimization:
        """Resolves ``train`` (a recipe's TrainConfig) for a run of ``train.epochs`` x ``steps_per_epoch`` batches.

        >>> from kerasft.recipe import TrainConfig
        >>> plan = Optimization.of(TrainConfig(epochs=2, gradient_accumulation_steps=4, warmup_ratio=0.1), 63)
        >>> plan.optimizer_steps, plan.warmup_steps, plan.leftover_batches, plan.effective_batch
        (31, 4, 2, 128)
        """
        batches = train.epochs * steps_per_epoch
        optimizer_steps, leftover = divmod(batches, train.gradient_accumulation_steps)
        if optimizer_steps == 0:
            raise UserError(
                f"train.gradient_accumulation_steps={train.gradient_accumulation_steps} is more than the {batches} "
                "batches of the whole run, so the model would never be updated; lower it, or add epochs or data"
            )
        warmup = train.warmup_steps or math.ceil(train.warmup_ratio * optimizer_steps)  # rounded up, as transformers
        return cls(
            schedule=train.lr_schedule,
            warmup_steps=warmup,
            optimizer_steps=optimizer_steps,
            weight_decay=train.weight_decay,
            accumulation_steps=train.gradient_accumulation_steps,
            lazy_adam=train.lazy_adam,
            batch_size=train.batch_size,
            leftover_batches=leftover,
        )

    @property
    def effective_batch(self) -> int:
        """Examples per optimizer step: the global batch x the batches accumulated."""
        return self.batch_size * self.accumulation_steps

    def learning_rate(self, peak: float):
        """``peak`` as a float (constant, no warmup) or as the schedule that reaches it after the warmup.

        >>> schedule = Optimization(schedule="linear", warmup_steps=2, optimizer_steps=6).learning_rate(1.0)
        >>> [round(float(schedule(step)), 4) for step in range(7)]  # evaluated at optimizer.iterations
        [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
        """
        import tf_keras as keras

        if self.schedule == "constant" and not self.warmup_steps:
            return peak
        decay_steps = max(1, self.optimizer_steps - self.warmup_steps)
        if self.schedule == "linear":
            after_warmup = keras.optimizers.schedules.PolynomialDecay(peak, decay_steps, end_learning_rate=0.0)
        elif self.schedule == "cosine":
            after_warmup = keras.optimizers.schedules.CosineDecay(peak, decay_steps, alpha=0.0)
        else:  # constant: a "decay" from peak to peak, so that every branch is a Keras schedule
            after_warmup = keras.optimizers.schedules.PolynomialDecay(peak, decay_steps, end_learning_rate=peak)
        if not self.warmup_steps:
            return after_warmup
        from transformers.optimization_tf import WarmUp

        return WarmUp(peak, after_warmup, self.warmup_steps)

    def optimizer_class(self) -> type:
        """kerasft.optimizer's Adam or LazyAdam, or their AdamW, accumulating if asked (looked up when called, so that
        the benchmarks' levers that swap kerasft.optimizer.Adam still reach it)."""
        from kerasft import optimizer as optimizers
        from kerasft.accumulation import accumulating

        if self.weight_decay:
            chosen = optimizers.LazyAdamW if self.lazy_adam else optimizers.AdamW
        else:
            chosen = optimizers.LazyAdam if self.lazy_adam else optimizers.Adam
        return accumulating(chosen) if self.accumulation_steps > 1 else chosen

    def build(self, learning_rate: float):
        """The optimizer, its rate peaking at ``learning_rate`` (``compile_classifier(..., optimizer=plan.build)``)."""
        extras = {"weight_decay": self.weight_decay} if self.weight_decay else {}
        if self.accumulation_steps > 1:
            extras["accumulation_steps"] = self.accumulation_steps
        return self.optimizer_class()(learning_rate=self.learning_rate(learning_rate), **extras)

    def manifest(self) -> dict:
        """What recipe.json records under "run" about the optimizer's steps."""
        return {
            "lr_schedule": self.schedule,
            "warmup_steps": self.warmup_steps,
            "optimizer_steps": self.optimizer_steps,
            "weight_decay": self.weight_decay,
            "gradient_accumulation_steps": self.accumulation_steps,
            "effective_batch": self.effective_batch,
        }

    def summary(self) -> list[str]:
        """The lines a run starts with when any knob is set; warnings start with "warning: "."""
        parts = []
        if self.schedule != "constant" or self.warmup_steps:
            warmup = f" after {self.warmup_steps} warmup steps" if self.warmup_steps else ""
            parts.append(f"{self.schedule} learning rate{warmup}")
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g} (not on biases and LayerNorm weights)")
        if self.accumulation_steps > 1:
            parts.append(
                f"{self.accumulation_steps} batches accumulated per optimizer step (effective batch "
                f"{self.effective_batch}; {self.optimizer_steps} optimizer steps)"
            )
        lines = [f"optimizer: {'; '.join(parts)}"] if parts else []
        if self.leftover_batches:
            lines.append(
                f"warning: the run's last {self.leftover_batches} batches add up to no optimizer step "
                f"(train.gradient_accumulation_steps={self.accumulation_steps} does not divide its "
                f"{self.optimizer_steps * self.accumulation_steps + self.leftover_batches} batches)"
            )
        return lines
