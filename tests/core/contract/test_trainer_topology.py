"""The contract's process topology: a declared world size, and the launcher interface that
takes the run (the former ``launch(argv)`` still works for trainers that override it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from dacapo_trainers import RunLaunch, Trainer, TrainerConfig
from dacapo_trainers._run._training_loop import is_multi_process


class _Config(TrainerConfig):
    trainer_type = "tests:unused"


class Alone(Trainer):
    def create_optimizer(self, model: Any) -> torch.optim.Optimizer:
        raise NotImplementedError

    def iterate(
        self, num_iterations: int, model: Any, optimizer: Any, device: Any
    ) -> Iterator[Any]:
        raise NotImplementedError

    def build_batch_provider(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError


class LegacyLauncher(Alone):
    """A launcher written against the former interface: overrides launch(argv) and barrier."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.argv: list[str] | None = None

    def launch(self, argv: Sequence[str]) -> int | None:
        self.argv = list(argv)
        return 3

    def barrier(self) -> None:
        pass


class Declared(LegacyLauncher):
    """Overrides barrier but declares its world size: the declaration decides."""

    size = 1

    @property
    def world_size(self) -> int:
        return self.size


def config() -> Any:
    return _Config(name="t", batch_size=1, learning_rate=0.1)


def test_a_trainer_is_single_process_unless_it_declares_otherwise() -> None:
    assert Alone(config()).world_size == 1
    assert not is_multi_process(Alone(config()))
    assert is_multi_process(LegacyLauncher(config()))  # barrier overridden, nothing declared
    declared = Declared(config())
    assert not is_multi_process(declared)
    declared.size = 4
    assert is_multi_process(declared)


def test_launch_run_hands_the_run_to_a_launcher_of_the_former_interface(tmp_path: Path) -> None:
    run_file = tmp_path / "run_config.json"
    launch = RunLaunch({"name": "x"}, run_file, tmp_path, output_claimed=True, quiet=True)
    assert launch.arguments == ["train", str(run_file), "--quiet"]
    legacy = LegacyLauncher(config())
    assert legacy.launch_run(launch) == 3
    assert legacy.argv == ["train", str(run_file), "--quiet"]
    assert Alone(config()).launch_run(launch) is None  # trains in this process
