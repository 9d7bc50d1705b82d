"""SIGINT and SIGTERM during a run: finish the step, checkpoint, stop; a second one stops at once.

While :func:`stop_requests` is active (the driver holds it for the whole run), the first SIGINT
(Ctrl-C) or SIGTERM (a batch scheduler, ``timeout``, ``docker stop``) is only *recorded* while
the driver is inside its training loop with :attr:`StopRequests.graceful` set: the driver
finishes the current step, writes a checkpoint of it and raises
:class:`~dacapo_trainers.RunInterrupted`. Outside the loop (opening data, building the model),
in multi-process trainers (whose ranks could not agree on a last step without a collective),
and at a second signal, the handler raises :class:`~dacapo_trainers.RunInterrupted` at once.
Either way the ``dacapo_trainers_train_end`` hooks run, and the CLI exits with 128 + the signal
number (130, 143).

Processes forked while it is active (data workers) inherit the handler; in them it acts as the
handler it replaced, so they behave as before.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .._errors import RunInterrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """What the handler recorded. The driver sets :attr:`graceful` around its loop."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        #: While True, a first signal is recorded instead of raised.
        self.graceful = False
        #: The signal received first, if any.
        self.received: signal.Signals | None = None
        #: Set by the driver so that messages say where the run stopped.
        self.iteration: int | None = None
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    def handle(self, number: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked child: behave as the replaced handler did
            _act_as(self._previous.get(number, signal.SIG_DFL), number, frame)
            return
        received = signal.Signals(number)
        if self.graceful and self.received is None:
            self.received = received
            if not self.quiet:
                print(
                    f"\n{received.name}: stopping after this iteration with a checkpoint "
                    f"(send {received.name} again to stop at once)",
                    file=sys.stderr,
                    flush=True,
                )
            return
        self.received = received
        where = " before training started"
        if self.iteration is not None:
            where = f" at iteration {self.iteration}"
        raise RunInterrupted(
            f"stopped by {received.name}{where}", received, iteration=self.iteration
        )


@contextmanager
def stop_requests(quiet: bool = False) -> Iterator[StopRequests]:
    """Handle SIGINT and SIGTERM as described in the module docstring, for the block.

    Outside the main thread (where Python cannot set handlers) nothing is installed and the
    signals keep their handlers.
    """
    requests = StopRequests(quiet)
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return
    for number in SIGNALS:
        requests._previous[int(number)] = signal.signal(number, requests.handle)
    try:
        yield requests
    finally:
        for replaced, previous in requests._previous.items():
            signal.signal(replaced, previous if previous is not None else signal.SIG_DFL)


def _act_as(handler: Any, number: int, frame: FrameType | None) -> None:
    if handler == signal.SIG_IGN:
        return
    if callable(handler):
        call: Callable[[int, FrameType | None], Any] = handler
        call(number, frame)
        return
    signal.signal(number, signal.SIG_DFL)  # SIG_DFL (or unknown): die as the signal says
    os.kill(os.getpid(), number)
