"""The batches of a running ``iterate``: each on its way to the device, at most one held ahead.

:class:`BatchTrainer` requests batch ``i + 1`` while the device still computes step ``i``; the
queue starts its transfer and keeps the data state from before it was drawn, so that a batch
handed back (a resume, another device, a loop left mid-way) can be drawn again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._batch import Batch
from ._device_transfer import DeviceTransfer, InFlight


@attrs.define(eq=False)
class Prefetched:
    """Batch ``index``, requested ahead and on its way to the device, and the data state from
    just before it was drawn."""

    index: int
    flight: InFlight
    restore_point: dict[str, Any]


class BatchQueue:
    """Batches sent through one :class:`DeviceTransfer`; :attr:`ahead` is the one held ahead."""

    def __init__(self, transfer: DeviceTransfer) -> None:
        self.transfer = transfer
        self.ahead: Prefetched | None = None

    def take(self, index: int, make: Callable[[int], Batch]) -> InFlight:
        """Batch ``index`` on its way to the device: the one held ahead, or ``make(index)``."""
        ahead = self.ahead
        if ahead is not None and ahead.index == index:
            self.ahead = None
            return ahead.flight
        self.drop()
        return self.send(make(index))

    def request(
        self, index: int, make: Callable[[int], Batch], restore_point: dict[str, Any]
    ) -> Prefetched:
        """Hold ``make(index)`` ahead, its transfer started; ``restore_point`` undoes its draws."""
        self.drop()
        self.ahead = Prefetched(index, self.send(make(index)), restore_point)
        return self.ahead

    def send(self, batch: Batch) -> InFlight:
        """Start the transfer of ``batch`` (released again where starting it fails)."""
        try:
            return self.transfer.start(batch)
        except BaseException:
            batch.release()
            raise

    def drop(self) -> Prefetched | None:
        """Release the batch held ahead and return it (its restore point), or None."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            self.transfer.release(ahead.flight)
        return ahead
