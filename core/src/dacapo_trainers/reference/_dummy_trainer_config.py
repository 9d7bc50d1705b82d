"""``DummyTrainerConfig``: DaCapo's smoke-test trainer (noise in, zeros out; no torch here)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from dacapo_trainers import Trainer, TrainerConfig


@attrs.define(kw_only=True)
class DummyTrainerConfig(TrainerConfig):
    """DaCapo's ``DummyTrainer``: trains the model on random noise towards a zero target.

    Each iteration feeds one sample of standard normal noise of the model's input shape,
    computes the task's loss against zeros of the output shape (no weight) and takes a RAdam
    step. It reads no data, so it checks a run's model, task and plumbing in seconds; the
    datasets are still opened (and validated) by the run. ``batch_size`` is accepted and, as
    in DaCapo, not used: every step sees one sample. The noise is drawn from a generator
    seeded by the run's seed and the iteration, so runs repeat and resume exactly.
    """

    trainer_type: ClassVar[type[Trainer] | str] = (
        "dacapo_trainers.reference._dummy_trainer:DummyTrainer"
    )

    mirror_augment: bool = attrs.field(
        metadata={"help_text": "Dummy attribute (DaCapo's; not used)."}
    )

    def _start_notes(self) -> list[str]:
        if self.batch_size == 1:
            return []
        return [
            f"{type(self).__name__} {self.name!r}: batch_size {self.batch_size} is not used "
            "(as in DaCapo, every step sees one sample of noise)"
        ]
