"""The data workers' settings and messages: the start method, the niceness, the protocol."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gunpowder_helpers import TinyTask, tiny_model, write_volume

from dacapo_trainers_gunpowder import GunpowderTrainerConfig
from dacapo_trainers_gunpowder._worker_process import (
    DEFAULT_NICENESS,
    NICENESS_VARIABLE,
    BatchReady,
    WorkerFailed,
    worker_niceness,
)
from dacapo_trainers_gunpowder._workers import start_method_problem


def test_workers_need_fork_and_say_what_to_do_without_it() -> None:
    assert start_method_problem(["fork", "spawn", "forkserver"]) is None
    problem = start_method_problem(["spawn"])
    assert problem is not None
    assert "cannot fork (start methods: spawn)" in problem
    assert "num_data_fetchers: 0" in problem


def test_niceness_is_read_when_used_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NICENESS_VARIABLE, raising=False)
    assert worker_niceness() == DEFAULT_NICENESS
    monkeypatch.setenv(NICENESS_VARIABLE, " 3 ")
    assert worker_niceness() == 3
    for bad in ("ten", "-1", "20", "1.5"):
        monkeypatch.setenv(NICENESS_VARIABLE, bad)
        with pytest.raises(ValueError, match=f"{NICENESS_VARIABLE} is {bad!r}; it must be"):
            worker_niceness()


def test_a_bad_niceness_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NICENESS_VARIABLE, "very")
    dataset = write_volume(tmp_path, (16, 16, 16))
    config = GunpowderTrainerConfig(name="t", batch_size=1, learning_rate=1e-3)
    trainer = config.build_trainer()
    model = tiny_model()
    trainer.create_optimizer(model)
    with pytest.raises(ValueError, match="integer from 0 to 19"):
        trainer.build_batch_provider([dataset], model, TinyTask())
    # produced in the training process, the setting does not matter
    inline = GunpowderTrainerConfig(
        name="t", batch_size=1, learning_rate=1e-3, num_data_fetchers=0
    ).build_trainer()
    inline.create_optimizer(model)
    inline.build_batch_provider([dataset], model, TinyTask())
    inline.close()


def test_workers_take_the_niceness_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NICENESS_VARIABLE, "7")
    dataset = write_volume(tmp_path, (16, 16, 16))
    config = GunpowderTrainerConfig(name="t", batch_size=1, learning_rate=1e-3, num_data_fetchers=1)
    trainer = config.build_trainer()
    trainer.seed = 0
    model = tiny_model()
    trainer.create_optimizer(model)
    trainer.build_batch_provider([dataset], model, TinyTask())
    with trainer:
        trainer.next_batch(0).release()
        (pid,) = trainer.worker_pids
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7


def test_messages_are_typed_values() -> None:
    assert BatchReady(3, 1) == BatchReady(index=3, slot=1)
    failed = WorkerFailed(None, "ValueError: bad", "trace")
    assert failed.index is None and failed.description == "ValueError: bad"
