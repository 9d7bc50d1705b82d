"""The program every worker runs: tie its life to the launcher's, then run the command.

``python -P -u -m dacapo_trainers_distributed._worker train <output>/run_config.json``:

* ``-P`` keeps the working directory off ``sys.path`` (a ``tqdm.py`` or ``torch.py`` lying
  there is not imported); ``PYTHONPATH`` and installed packages stay as the launcher has them.
* On Linux the worker asks the kernel for SIGKILL when its parent, the launcher, dies
  (``prctl(PR_SET_PDEATHSIG)``), so that no worker trains on after a launcher killed with
  SIGKILL (whose lock on the output folder the kernel released at once). A launcher that died
  before the request was made is noticed through the parent pid, and the worker stops.
* It then runs ``dacapo-trainers <arguments>`` as ``python -m dacapo_trainers`` would.

Imports nothing heavy: the parent-death request comes first.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys

#: The launcher's pid, set in the workers' environment by the launcher.
LAUNCHER_PID_VARIABLE = "DACAPO_TRAINERS_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(signal_number: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``signal_number`` to this process when its parent dies.

    Returns False where that is not available (other systems), True where it is set.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal_number), 0, 0, 0)) == 0


def main() -> None:
    """Request the parent-death signal, check the launcher still lives, run the command."""
    die_with_parent()
    launcher = os.environ.get(LAUNCHER_PID_VARIABLE, "")
    if launcher.isdigit() and os.getppid() != int(launcher):
        print(
            f"error: the launcher (pid {launcher}) exited before this worker started; "
            "this worker stops too. Run the command again to resume",
            file=sys.stderr,
        )
        raise SystemExit(1)
    sys.argv = ["dacapo-trainers", *sys.argv[1:]]
    runpy.run_module("dacapo_trainers", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
