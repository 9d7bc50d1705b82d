"""The batch slots as page-locked memory for CUDA: registered once per producer, after the
workers forked, only for a CUDA device; unregistered when the workers stop. A fake CUDA runtime
stands in for ``torch.cuda.cudart()`` (no GPU here)."""

from __future__ import annotations

import ctypes
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_gunpowder_trainer import make

CUDA = torch.device("cuda")


class FakeCudart:
    def __init__(self, register: int = 0) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.register_result = register

    def cudaHostRegister(self, address: int, size: int, flags: int) -> int:
        self.calls.append(("register", address, size))
        return self.register_result

    def cudaHostUnregister(self, address: int) -> int:
        self.calls.append(("unregister", address))
        return 0


@pytest.fixture
def cudart(monkeypatch: pytest.MonkeyPatch) -> FakeCudart:
    fake = FakeCudart()
    monkeypatch.setattr(torch.cuda, "cudart", lambda: fake)
    return fake


def address_of(buffer: Any) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def arrays(batch: Any) -> list[np.ndarray]:
    return [t.numpy().copy() for t in (batch.raw, batch.target, batch.weight)]


@pytest.mark.parametrize("fetchers", [0, 2])
def test_slots_are_pinned_once_for_cuda_and_unpinned_when_the_workers_stop(
    tmp_path: Path, cudart: FakeCudart, fetchers: int
) -> None:
    reference, _, _ = make(tmp_path / "cpu", num_data_fetchers=fetchers)
    with reference:
        expected = [arrays(reference.next_batch(i)) for i in range(3)]
    trainer, _, _ = make(tmp_path / "cuda", num_data_fetchers=fetchers)
    trainer.device = CUDA  # as iterate() sets it
    with trainer:
        batches = []
        for index in range(3):
            batch = trainer.next_batch(index)
            assert batch.pinned
            batches.append(arrays(batch))
            batch.release()
        producer = trainer._batches
        memory = producer.buffer.memory
        address = address_of(memory)
        assert cudart.calls == [("register", address, len(memory))]  # the whole mapping, once
        pids = trainer.worker_pids
    assert len(pids) == fetchers
    assert cudart.calls[1:] == [("unregister", address)]
    assert trainer.worker_pids == []
    for got, want in zip(batches, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_nothing_is_pinned_for_the_cpu(tmp_path: Path, cudart: FakeCudart) -> None:
    trainer, _, _ = make(tmp_path)
    trainer.device = torch.device("cpu")
    with trainer:
        batch = trainer.next_batch(0)
        assert not batch.pinned
        batch.release()
    assert cudart.calls == []


def test_a_restarted_pool_unpins_the_old_slots_before_forking_new_workers(
    tmp_path: Path, cudart: FakeCudart
) -> None:
    trainer, _, _ = make(tmp_path)
    trainer.device = CUDA
    with trainer:
        trainer.next_batch(0).release()
        first = address_of(trainer._batches.buffer.memory)
        batch = trainer.next_batch(5)  # not the next index: a resume restarts the workers
        assert batch.pinned
        batch.release()
        second = address_of(trainer._batches.buffer.memory)
    assert [call[:2] for call in cudart.calls] == [
        ("register", first),
        ("unregister", first),
        ("register", second),
        ("unregister", second),
    ]


def test_a_failed_registration_warns_once_and_the_batches_stay_correct(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = FakeCudart(register=2)
    monkeypatch.setattr(torch.cuda, "cudart", lambda: failing)
    reference, _, _ = make(tmp_path / "cpu")
    with reference:
        expected = arrays(reference.next_batch(0))
    trainer, _, _ = make(tmp_path / "cuda")
    trainer.device = CUDA
    with warnings.catch_warnings(record=True) as caught, trainer:
        warnings.simplefilter("always")
        first = trainer.next_batch(0)
        got = arrays(first)
        first.release()
        second = trainer.next_batch(1)
        second.release()
    assert not first.pinned and not second.pinned
    assert len(failing.calls) == 1  # not tried again for every batch
    assert [str(w.message) for w in caught if "pageable" in str(w.message)] == [
        "GunpowderTrainer: the batch slots stay in pageable memory: cudaHostRegister of "
        f"{failing.calls[0][2]} bytes failed with CUDA error 2: check the limit of locked "
        "memory (ulimit -l) and the free host memory; batches from an unregistered buffer are "
        "copied from pageable memory (correct, but not asynchronously)"
    ]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_training_copies_from_pinned_slots(tmp_path: Path) -> None:
    reference, reference_model, reference_optimizer = make(tmp_path / "cpu")
    trainer, model, optimizer = make(tmp_path / "cuda")
    model.load_state_dict(reference_model.state_dict())
    model.to(CUDA)
    with reference:
        steps = reference.iterate(4, reference_model, reference_optimizer, "cpu")
        expected = [s.loss for s in steps]
    pinned: list[bool] = []
    next_batch = trainer.next_batch

    def recording(index: int) -> Any:
        batch = next_batch(index)
        pinned.append(batch.pinned and batch.raw.is_pinned())
        return batch

    trainer.next_batch = recording
    with trainer:
        seen = [s.loss for s in trainer.iterate(4, model, optimizer, CUDA)]
        buffer = trainer._batches.buffer
    assert pinned == [True] * 4
    assert not buffer.pinned  # unregistered with the workers
    assert seen == pytest.approx(expected, rel=1e-3)
