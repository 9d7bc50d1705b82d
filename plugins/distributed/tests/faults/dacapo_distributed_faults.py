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

    fault: str = attrs.field(default="kill", metadata={"help_text": "kill or hang"})
    fault_rank: int = attrs.field(default=1, metadata={"help_text": "the rank that fails"})
    fault_iteration: int = attrs.field(
        default=3, metadata={"help_text": "fails right before this iteration's step"}
    )


def _trainer_class() -> type:
    from dacapo_trainers_simple_tensor import SimpleTensorTrainer

    class FaultyTrainer(SimpleTensorTrainer):  # type: ignore[misc, valid-type]
        def iterate(self, *args: Any, **kwargs: Any) -> Iterator[TrainingIterationStats]:
            for stats in super().iterate(*args, **kwargs):
                yield stats
                self._maybe_fail()

        def _maybe_fail(self) -> None:
            config = self.trainer_config
            if (
                self.iteration == config.fault_iteration
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
