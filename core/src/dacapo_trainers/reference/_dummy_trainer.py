"""The DummyTrainer (imports torch; loaded when a DummyTrainerConfig builds its trainer)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from dacapo_trainers import Trainer, TrainingIterationStats


class DummyTrainer(Trainer):
    """See :class:`~dacapo_trainers.reference.DummyTrainerConfig`."""

    def __init__(self, trainer_config: Any) -> None:
        super().__init__(trainer_config)
        self.mirror_augment = bool(trainer_config.mirror_augment)
        self._loss: Any = None

    def create_optimizer(self, model: Any) -> torch.optim.Optimizer:
        """RAdam with the configured learning rate, as DaCapo's DummyTrainer."""
        return torch.optim.RAdam(model.parameters(), lr=self.learning_rate)

    def build_batch_provider(
        self,
        datasets: Sequence[Any],
        model: Any,
        task: Any,
        snapshot_container: Any = None,
    ) -> None:
        """Keep the task's loss; no data pipeline (the inputs are noise)."""
        self._loss = task.loss

    def _generator(self, iteration: int) -> torch.Generator:
        seed = np.random.SeedSequence([self.seed or 0, iteration]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))

    def iterate(
        self,
        num_iterations: int,
        model: Any,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ) -> Iterator[TrainingIterationStats]:
        """``num_iterations`` RAdam steps on noise towards zeros; yields the real loss."""
        if self._loss is None:
            raise RuntimeError("build_batch_provider() must be called before iterate()")
        model.train()
        for _ in range(num_iterations):
            start = time.perf_counter()
            iteration = self.iteration
            shape = (1, int(model.num_in_channels), *(int(s) for s in model.input_shape))
            raw = torch.randn(shape, generator=self._generator(iteration)).to(device)
            out_shape = (1, int(model.num_out_channels), *(int(s) for s in model.output_shape))
            target = torch.zeros(out_shape, device=device)
            optimizer.zero_grad()
            loss = self._loss.compute(model(raw), target)
            loss.backward()
            optimizer.step()
            self.iteration += 1
            yield TrainingIterationStats(
                iteration=iteration, loss=float(loss.item()), time=time.perf_counter() - start
            )
