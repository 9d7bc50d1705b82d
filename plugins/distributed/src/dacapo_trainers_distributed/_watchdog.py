"""Bounds on the launcher's waits that hold even while torch's C++ code blocks it.

While the launcher waits for the rendezvous (connecting to its store, waiting for the other
machines), the main thread sits inside C++ calls that Python signal handlers cannot
interrupt: a SIGTERM would wait for the call to return, and a store that never answers can
keep it for many minutes. The watchdog is a thread that needs no help from the main one:

* Python's C-level signal handler writes every signal's number to the *wakeup fd* at once,
  whatever the main thread does; the watchdog reads it. When the main thread has not ended
  the launch ``signal_grace_s`` seconds after a SIGINT/SIGTERM, the watchdog stops the
  launcher itself (its workers die with it: ``PR_SET_PDEATHSIG``).
* Every ``poll_s`` it looks whether the launcher has worker processes (its children). Time
  without any, beyond ``idle_limit_s`` (the rendezvous timeout plus a margin; None: no
  limit), ends the launcher with a line saying what it waited for and what to do.

Both endings print one line and exit (``os._exit``: the main thread cannot be unwound); the
kernel releases the output folder's lock.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Seconds a SIGINT/SIGTERM gives the main thread to stop the workers cleanly (their
#: ``train_end`` hooks) before the watchdog ends them and the process at once.
SIGNAL_GRACE_S = 10.0
#: Exit status of a launcher that the watchdog ended because nothing came.
TIMED_OUT_STATUS = 1


def child_pids() -> list[int]:
    """This process's children (Linux ``/proc``; empty where that is not available)."""
    pids: list[int] = []
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return pids
    for task in tasks:
        try:
            pids.extend(int(pid) for pid in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return pids


class LaunchWatchdog:
    """See the module docstring. Use as a context manager around the launch (main thread)."""

    def __init__(
        self,
        *,
        idle_limit_s: float | None,
        idle_message: Callable[[float], str] = str,
        signal_grace_s: float,
        poll_s: float = 0.2,
        stderr_fd: int = 2,
    ) -> None:
        self.stderr_fd = stderr_fd
        self.idle_limit_s = idle_limit_s
        self.idle_message = idle_message
        self.signal_grace_s = signal_grace_s
        self.poll_s = poll_s
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._previous_fd = -1

    def __enter__(self) -> LaunchWatchdog:
        if threading.current_thread() is not threading.main_thread():
            return self  # set_wakeup_fd needs the main thread: signals are not watched then
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="launch-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        self._thread.join()
        for end in (self._reader, self._writer):
            if end is not None:
                end.close()

    def _watch(self) -> None:
        assert self._reader is not None
        idle_since = time.monotonic()
        received: int | None = None
        signalled_at = 0.0
        while not self._done.is_set():
            ready, _, _ = select.select([self._reader], [], [], self.poll_s)
            if ready:
                numbers = self._reader.recv(64)
                stops = [n for n in numbers if n in (signal.SIGINT, signal.SIGTERM)]
                if stops and received is None:
                    received, signalled_at = stops[0], time.monotonic()
            if self._done.is_set():
                return
            now = time.monotonic()
            if received is not None and now - signalled_at > self.signal_grace_s:
                name = signal.Signals(received).name
                self._end(
                    f"interrupted: {name} while waiting for the other processes of the run; "
                    f"stopped after {self.signal_grace_s:g} s without them (the same command "
                    "resumes from the last checkpoint)",
                    128 + received,
                )
            if self.idle_limit_s is None or child_pids():
                idle_since = now
            elif now - idle_since > self.idle_limit_s:
                self._end(f"error: {self.idle_message(now - idle_since)}", TIMED_OUT_STATUS)

    def _end(self, line: str, status: int) -> None:
        for pid in child_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os.write(self.stderr_fd, (line + "\n").encode())
        os._exit(status)
