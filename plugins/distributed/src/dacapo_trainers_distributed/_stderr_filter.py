"""Keeping torch's C++ log lines and stack frames out of what the user reads.

torch's C++ code (TCPStore, gloo) logs to the process's file descriptor 2 directly, stack
frames included ("[E1206 05:46:46 socket.cpp:1028] ...", "frame #3: ..."), below Python and
beyond ``TORCH_CPP_LOG_LEVEL`` once torch is loaded. :func:`filtered_stderr` puts a pipe on
descriptor 2 for a block: a thread copies every line to the real stderr except those, so the
process's own messages (and those of the workers, which inherit the descriptor) stay in
order and intact.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Lines of torch's C++ logging (``[E1206 05:46:46.773 socket.cpp:1028] ...``) and of its
#: stack traces. (The elastic agent's Python log lines, without brackets, stay: they name
#: the worker that failed and how.)
CPP_NOISE = re.compile(
    rb"^\s*(\[[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ [^\]]*\]|frame #\d+:|"
    rb"Exception raised from .*most recent call first|<omitting python frames>)"
)
_DRAIN_S = 5.0


@contextmanager
def filtered_stderr() -> Iterator[int]:
    """Filter descriptor 2 for the block; yields a descriptor of the real stderr (for
    messages that must get out even if the process ends at once)."""
    sys.stderr.flush()
    real = os.dup(2)
    reader, writer = os.pipe()
    os.dup2(writer, 2)
    os.close(writer)
    thread = threading.Thread(target=_copy, args=(reader, real), name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield real
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer here is gone: the thread sees its end
        thread.join(_DRAIN_S)  # (unless a worker that outlived the block still holds it)
        if not thread.is_alive():
            os.close(real)


def _copy(reader: int, real: int) -> None:
    pending = b""
    with os.fdopen(reader, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not CPP_NOISE.match(line):
                    os.write(real, line + b"\n")
    if pending and not CPP_NOISE.match(pending):
        os.write(real, pending)
