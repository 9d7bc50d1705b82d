"""The batch transfer to the device: no copy on the CPU; on CUDA (here with recording fakes of
its CUDA calls) copies on a side stream that the step waits for, and batches given back only
after their copy completed. Also page-locking host buffers (with a fake CUDA runtime)."""

from __future__ import annotations

import mmap
import warnings
from typing import Any

import pytest
import torch
from test_batch_trainer import (
    CPU,
    LOOP_ORDER,
    ToyModels,
    ToyTask,
    ToyTrainer,
    checkpoint_at,
    log_forwards,
    losses,
    make,
)

import dacapo_trainers._batches._batch_trainer as batch_trainer_module
from dacapo_trainers import Batch, BatchGeometry, PinnedMemory, pin_host_memory
from dacapo_trainers._batches._device_transfer import (
    CudaTransfer,
    DeviceTransfer,
    HostTransfer,
    InFlight,
    device_transfer,
)

# The toy trainer's batches are pageable: the fake CUDA transfer says so once per trainer.
pytestmark = pytest.mark.filterwarnings("ignore:BatchTrainer. a batch holds:UserWarning")

GEOMETRY = BatchGeometry((1,), (1,), [(0,)], [(0,)])


def host_batch(log: list[Any] | None = None, **fields: Any) -> Batch:
    return Batch(
        torch.rand(2, 1, 4),
        torch.rand(2, 1, 2),
        torch.ones(2, 1, 2),
        GEOMETRY,
        on_release=(lambda: log.append("release")) if log is not None else None,
        **fields,
    )


# -- a fake of CUDA's asynchronous copies --------------------------------------------------


class FakeEvent:
    def __init__(self, stream: FakeStream, position: int) -> None:
        self.stream = stream
        self.position = position


class FakeStream:
    """A queue of copies that run only when an event after them is waited for."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.done = 0

    def run_until(self, position: int) -> None:
        while self.done < position:
            source, destination = self.queue[self.done]
            destination.copy_(source)
            self.done += 1


class FakeCudaOps:
    """CudaOps on the CPU: a copy is an uninitialised (NaN) tensor filled only when its
    stream runs, i.e. when an event recorded after it is waited for or synchronised."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.main = FakeStream("main")
        self.pinned: set[int] = set()

    def new_stream(self) -> FakeStream:
        return FakeStream("side")

    def current_stream(self) -> FakeStream:
        return self.main

    def copy(self, tensor: torch.Tensor, stream: FakeStream) -> torch.Tensor:
        destination = torch.full_like(tensor, float("nan"))
        stream.queue.append((tensor, destination))
        self.log.append(("copy", stream.name))
        return destination

    def record_event(self, stream: FakeStream) -> FakeEvent:
        self.log.append(("event", stream.name, len(stream.queue)))
        return FakeEvent(stream, len(stream.queue))

    def wait_event(self, stream: FakeStream, event: FakeEvent) -> None:
        # The waiting stream's later work sees the copies: model it by running them now.
        event.stream.run_until(event.position)
        self.log.append(("wait", stream.name, event.position))

    def record_stream(self, tensor: torch.Tensor, stream: FakeStream) -> None:
        self.log.append(("record_stream", stream.name))

    def synchronize(self, event: FakeEvent) -> None:
        event.stream.run_until(event.position)
        self.log.append(("synchronize", event.position))

    def is_pinned(self, tensor: torch.Tensor) -> bool:
        return tensor.data_ptr() in self.pinned


# -- the host transfer -----------------------------------------------------------------------


def test_host_transfer_on_the_cpu_makes_no_copy() -> None:
    log: list[Any] = []
    batch = host_batch(log)
    transfer = device_transfer(CPU)
    assert isinstance(transfer, HostTransfer)
    flight = transfer.start(batch)
    tensors = transfer.ready(flight)
    assert [t.data_ptr() for t in tensors] == [
        t.data_ptr() for t in (batch.raw, batch.target, batch.weight)
    ]
    transfer.release(flight)
    transfer.release(flight)
    assert log == ["release"]


def test_host_transfer_converts_to_another_device() -> None:
    # The meta device stands for a device without streams: a plain synchronous .to().
    batch = host_batch()
    transfer = HostTransfer(torch.device("meta"))
    assert all(t.device.type == "meta" for t in transfer.ready(transfer.start(batch)))


# -- the CUDA transfer, with fakes --------------------------------------------------------------


def test_cuda_transfer_copies_on_a_side_stream_the_step_waits_for() -> None:
    log: list[Any] = []
    ops = FakeCudaOps(log)
    transfer = CudaTransfer(torch.device("cuda"), ops=ops)  # type: ignore[arg-type]
    batch = host_batch(log, pinned=True)
    flight = transfer.start(batch)
    assert log == [("copy", "side")] * 3 + [("event", "side", 3)]
    assert all(torch.isnan(t).all() for t in flight.tensors)  # queued, not yet done
    raw, target, _ = transfer.ready(flight)
    assert log[4:] == [("wait", "main", 3)] + [("record_stream", "main")] * 3
    assert torch.equal(raw, batch.raw) and torch.equal(target, batch.target)
    assert raw.data_ptr() != batch.raw.data_ptr()
    transfer.release(flight)
    assert log[-2:] == [("synchronize", 3), "release"]


def test_cuda_transfer_releases_a_batch_only_after_its_copy_completed() -> None:
    log: list[Any] = []
    ops = FakeCudaOps(log)
    transfer = CudaTransfer(torch.device("cuda"), ops=ops)  # type: ignore[arg-type]
    first, second = host_batch(log, pinned=True), host_batch(log, pinned=True)
    flights = [transfer.start(first), transfer.start(second)]
    transfer.release(flights[0])  # e.g. a batch held ahead, dropped before its step
    side = transfer.stream
    assert side.done == 3  # its own copies ran, the next batch's need not have
    transfer.release(flights[1])
    assert side.done == 6
    assert log.count("release") == 2


def test_cuda_transfer_warns_once_about_pageable_batches() -> None:
    log: list[Any] = []
    ops = FakeCudaOps(log)
    transfer = CudaTransfer(torch.device("cuda"), ops=ops)  # type: ignore[arg-type]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        transfer.start(host_batch(pinned=True))  # pinned: not even asked
        pinned = host_batch()
        ops.pinned.update(t.data_ptr() for t in (pinned.raw, pinned.target, pinned.weight))
        transfer.start(pinned)  # Tensor.is_pinned() says so
        assert caught == []
        transfer.start(host_batch())
        transfer.start(host_batch())
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "pageable host memory" in message and "Batch.pinned" in message


def test_device_transfer_picks_cuda_for_cuda_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[torch.device] = []

    class Recording(CudaTransfer):
        def __init__(self, device: torch.device) -> None:
            made.append(device)
            super().__init__(device, ops=FakeCudaOps([]))  # type: ignore[arg-type]

    monkeypatch.setattr("dacapo_trainers._batches._device_transfer.CudaTransfer", Recording)
    assert isinstance(device_transfer(torch.device("cuda", 1)), Recording)
    assert made == [torch.device("cuda", 1)]


# -- the trainer loop with the CUDA transfer's logic --------------------------------------------


def with_fake_cuda(monkeypatch: pytest.MonkeyPatch, log: list[Any]) -> None:
    """Every trainer builds a CudaTransfer on fakes, whatever the device."""

    def fake(device: torch.device) -> DeviceTransfer:
        return CudaTransfer(device, ops=FakeCudaOps(log))  # type: ignore[arg-type]

    monkeypatch.setattr(batch_trainer_module, "device_transfer", fake)


def fake_cuda_trainer(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[Any], ToyTrainer, ToyModels, torch.optim.Optimizer]:
    """A toy trainer on the fake CUDA transfer, logging into the transfer's log."""
    log: list[Any] = []
    with_fake_cuda(monkeypatch, log)
    trainer, model, optimizer = make()
    trainer.log = log
    return log, trainer, model, optimizer


def poisoning(trainer: ToyTrainer) -> None:
    """Batches whose memory is overwritten (NaN) on release, as a reused slot would be."""
    next_batch = trainer.next_batch

    def poisoned(index: int) -> Batch:
        batch = next_batch(index)
        release = batch.on_release

        def poison() -> None:
            if release is not None:
                release()
            for tensor in (batch.raw, batch.target, batch.weight):
                tensor.fill_(float("nan"))

        batch.on_release = poison
        batch.pinned = True
        return batch

    trainer.next_batch = poisoned  # type: ignore[method-assign]


def test_the_loop_with_async_copies_trains_exactly_as_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trainer, model, optimizer = make()
    poisoning(trainer)
    expected = losses(trainer, model, optimizer, 6)

    log: list[Any] = []
    with_fake_cuda(monkeypatch, log)
    trainer, model, optimizer = make()
    poisoning(trainer)
    # A step that read a copy before waiting for it, or a batch given back before its copy
    # ran, would put NaN into the loss.
    assert losses(trainer, model, optimizer, 6) == expected
    assert log.count(("copy", "side")) == 18 and log.count(("record_stream", "main")) == 18


def test_the_copy_of_batch_i_plus_1_is_issued_before_step_i_is_yielded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, trainer, model, optimizer = fake_cuda_trainer(monkeypatch)
    log_forwards(model, log)
    for stats in trainer.iterate(3, model, optimizer, CPU):
        log.append(("yield", stats.iteration))
    order = [entry for entry in log if entry[0] in {"batch", "forward", "release", "yield"}]
    assert order == LOOP_ORDER
    # Between batch 1's request and the yield of iteration 0: its copies and their event.
    between = log[log.index(("batch", 1)) : log.index(("yield", 0))]
    assert between[1:] == [("copy", "side")] * 3 + [("event", "side", 6)]
    # Before the forward of a step, its stream waits for the copy; the release follows a sync.
    forward = log.index(("forward",), log.index(("yield", 0)))
    assert log[forward - 4] == ("wait", "main", 6)
    release = log.index(("release", 1))
    assert log[release - 1] == ("synchronize", 6)


def test_an_abandoned_iterate_gives_back_the_batch_ahead_after_its_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, trainer, model, optimizer = fake_cuda_trainer(monkeypatch)
    steps = trainer.iterate(5, model, optimizer, CPU)
    next(steps)
    steps.close()
    assert log[-2:] == [("synchronize", 6), ("release", 1)]


def test_a_failing_step_releases_its_batch_through_the_transfer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, trainer, model, optimizer = fake_cuda_trainer(monkeypatch)

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of memory, say")

    model.forward = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="out of memory"):
        losses(trainer, model, optimizer, 2)
    assert log[-2:] == [("synchronize", 3), ("release", 0)]


def test_resume_is_bit_exact_with_the_cuda_transfer_logic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved, straight = checkpoint_at(3, 8)
    with_fake_cuda(monkeypatch, [])
    trainer, model, optimizer = make(seed=7, model_seed=5, build=False)
    trainer.build_batch_provider([], model, ToyTask())
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    trainer.load_state_dict(saved["trainer"])
    trainer.iteration = 3
    assert losses(trainer, model, optimizer, 5) == straight[3:]


def test_in_flight_keeps_the_batch() -> None:
    batch = host_batch()
    flight = InFlight(batch, (batch.raw, batch.target, batch.weight))
    assert flight.batch is batch and flight.event is None


# -- page-locked host buffers -----------------------------------------------------------------


class FakeCudart:
    def __init__(self, register: int = 0) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.register_result = register

    def cudaHostRegister(self, address: int, size: int, flags: int) -> int:
        self.calls.append(("register", address, size, flags))
        return self.register_result

    def cudaHostUnregister(self, address: int) -> int:
        self.calls.append(("unregister", address))
        return 0


def test_pinned_memory_registers_the_whole_buffer_until_closed() -> None:
    buffer = mmap.mmap(-1, 3 * mmap.PAGESIZE)
    cudart = FakeCudart()
    pinned = PinnedMemory(buffer, cudart)
    import ctypes

    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    assert cudart.calls == [("register", address, 3 * mmap.PAGESIZE, 1)]  # portable
    assert pinned.registered and (pinned.address, pinned.nbytes) == (address, len(buffer))
    with pytest.raises(BufferError):
        buffer.close()  # still registered: the mapping must stay
    pinned.close()
    pinned.close()
    assert cudart.calls[1:] == [("unregister", address)]
    assert not pinned.registered
    buffer.close()  # now it may go


def test_pinned_memory_reports_a_failed_registration() -> None:
    with pytest.raises(RuntimeError, match=r"cudaHostRegister of 4096 bytes failed .* error 2"):
        PinnedMemory(bytearray(4096), FakeCudart(register=2))


def test_pin_host_memory_does_nothing_off_cuda() -> None:
    buffer = bytearray(64)
    assert pin_host_memory(buffer, "cpu") is None
    assert pin_host_memory(buffer, None) is None
    assert pin_host_memory(bytearray(), "cpu") is None


# -- on a real CUDA device (the prepared GPU run; skipped elsewhere) ----------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_on_cuda_a_registered_buffer_is_pinned_and_copies_exactly() -> None:
    import numpy as np

    device = torch.device("cuda")
    buffer = mmap.mmap(-1, 3 * 2**20)
    pinned = pin_host_memory(buffer, device)
    assert pinned is not None and pinned.registered
    host = torch.from_numpy(np.frombuffer(buffer, dtype=np.float32)).view(3, 2**18)
    assert host.is_pinned()  # what CudaTransfer asks of batches that do not say pinned
    host.copy_(torch.rand(3, 2**18))
    log: list[Any] = []
    batch = Batch(host[0], host[1], host[2], GEOMETRY, on_release=lambda: log.append(1))
    batch.pinned = True
    transfer = device_transfer(device)
    flight = transfer.start(batch)
    raw, target, weight = transfer.ready(flight)
    assert raw.device.type == "cuda"
    transfer.release(flight)
    assert flight.event.query() and log == [1]
    assert torch.equal(raw.cpu(), host[0]) and torch.equal(weight.cpu(), host[2])
    del raw, target, weight, host
    pinned.close()
    assert not pinned.registered


@needs_cuda
def test_on_cuda_the_loop_trains_as_on_the_cpu() -> None:
    trainer, model, optimizer = make()
    expected = losses(trainer, model, optimizer, 5)
    trainer, model, optimizer = make()
    model.to("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the toy's batches are pageable
        seen = [s.loss for s in trainer.iterate(5, model, optimizer, torch.device("cuda"))]
    assert seen == pytest.approx(expected, rel=1e-3)
    assert all(input_.device.type == "cuda" for input_ in model.inputs)
