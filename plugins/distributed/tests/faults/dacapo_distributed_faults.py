"""A test-only trainer plugin: the simple tensor trainer with an injected fault on one rank.

The tests make it importable in every worker through ``PYTHONPATH`` and a generated
``.dist-info`` (see ``conftest.py``), so the fault happens inside real torchrun workers.
Faults happen once, in the first worker generation (``TORCHELASTIC_RESTART_COUNT == 0``),
right before the step of ``fault_iteration``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs

from dacapo_trainers import TrainerConfig, TrainingIterationStats, hookimpl
from dacapo_trainers_simple_tensor import SimpleTensorTrainerConfig


@attrs.define(kw_only=True)
class FaultyTrainerConfig(SimpleTensorTrainerConfig):
    """SimpleTensorTrainerConfig whose rank ``fault_rank`` dies or hangs once."""

    trainer_type: ClassVar[str] = "dacapo_distributed_faults:FaultyTrainer"

    fault: str = attrs.field(default="kill", metadata={"help_text": "kill, hang or none"})
    fault_rank: int = attrs.field(default=1, metadata={"help_text": "the rank that fails"})
    fault_iteration: int = attrs.field(
        default=3, metadata={"help_text": "fails right before this iteration's step"}
    )
    step_delay: float = attrs.field(
        default=0.0, metadata={"help_text": "seconds every rank sleeps after each step"}
    )


def _trainer_class() -> type:
    from dacapo_trainers_simple_tensor import SimpleTensorTrainer

    class FaultyTrainer(SimpleTensorTrainer):  # type: ignore[misc, valid-type]
        def iterate(self, *args: Any, **kwargs: Any) -> Iterator[TrainingIterationStats]:
            for stats in super().iterate(*args, **kwargs):
                yield stats
                time.sleep(self.trainer_config.step_delay)
                self._maybe_fail()

        def _maybe_fail(self) -> None:
            config = self.trainer_config
            if (
                config.fault != "none"
                and self.iteration == config.fault_iteration
                and int(os.environ.get("RANK", "0")) == config.fault_rank
                and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
            ):
                if config.fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                while True:  # hang (a SIGTERM from torchrun's agent ends it)
                    time.sleep(1)

    return FaultyTrainer


def __getattr__(name: str) -> Any:
    if name == "FaultyTrainer":
        return _trainer_class()
    raise AttributeError(name)


@hookimpl
def dacapo_trainers_trainer_configs() -> list[type[TrainerConfig]]:
    return [FaultyTrainerConfig]


@hookimpl
def dacapo_trainers_train_end(iteration: int, error: BaseException | None) -> None:
    """Each rank records the end of its run where DT_HOOK_LOG names a folder."""
    folder = os.environ.get("DT_HOOK_LOG")
    if folder:
        rank = os.environ.get("RANK", "launcher")
        with open(os.path.join(folder, f"rank{rank}.log"), "a") as log:
            log.write(f"train_end {iteration} {type(error).__name__ if error else None}\n")
