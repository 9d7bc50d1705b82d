"""Checkpoints: one atomic save per checkpoint, loaded with ``torch.load(weights_only=True)``.

A checkpoint holds everything an exact resume needs: model, optimizer, the trainer's own state
(learning-rate scheduler, data generators), the completed iteration count and the global random
states of Python, numpy and torch. It is written to a temporary file in the same folder and
moved into place with ``os.replace``, so a checkpoint file is always complete.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^iteration_(\d+)\.pt$")


def checkpoint_path(folder: Path, iteration: int) -> Path:
    """Where the checkpoint of ``iteration`` completed iterations lives."""
    return folder / f"iteration_{iteration:08d}.pt"


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the most completed iterations in ``folder``, if any."""
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None


def random_states() -> dict[str, Any]:
    """The global random states of Python, numpy and torch (CPU and CUDA), weights-only safe."""
    import numpy as np
    import torch

    kind, keys, position, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    """Restore what :func:`random_states` returned."""
    import numpy as np
    import torch

    random.setstate(_as_tuples(states["python"]))
    saved = states["numpy"]
    np.random.set_state(
        (
            saved["kind"],
            saved["keys"].numpy().astype(np.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached"],
        )
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code runs)."""
    import torch

    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state
