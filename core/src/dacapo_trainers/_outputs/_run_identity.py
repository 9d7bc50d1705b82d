"""A run's identity: the normalized run config, kept in ``run_config.json`` and in every
checkpoint, and the field-by-field differences between two of them.

``run_config.json`` can be deleted or replaced; the checkpoints keep the config of the run
that wrote them (under :data:`IDENTITY_KEY`, as JSON text, which ``weights_only`` loading
accepts), so a resume with another config is refused even then. Checkpoints of earlier
versions have no identity and are compared through ``run_config.json`` alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

#: The checkpoint key holding the run config (JSON text) of the run that wrote it.
IDENTITY_KEY = "run_config"
_SHOWN = 60


def identity_text(data: Any) -> str:
    """The JSON text a checkpoint keeps of the normalized run config ``data``."""
    return json.dumps(data, sort_keys=True)


def checkpoint_identity(path: Path) -> dict[str, Any] | None:
    """The run config a checkpoint records, or None (an earlier version's, or unreadable).

    The checkpoint is memory-mapped, not read: only its small pickle is parsed. Whether its
    bytes are intact is checked when the run resumes from it.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        data = json.loads(state[IDENTITY_KEY])
    except Exception:  # damaged or of an earlier version: the resume sorts that out
        return None
    return data if isinstance(data, dict) else None


def differences(
    before: Any, now: Any, ignored: Collection[str] = (), path: str = "$"
) -> Iterator[tuple[str, Any, Any]]:
    """``(config path, value before, value now)`` for every leaf that differs, in key order;
    top-level keys in ``ignored`` are skipped. A missing key shows as ``None``."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in sorted(set(before) | set(now)):
            if path == "$" and key in ignored:
                continue
            yield from differences(before.get(key), now.get(key), (), f"{path}.{key}")
    elif (
        isinstance(before, list)
        and isinstance(now, list)
        and len(before) == len(now)
        and not _same(before, now)
    ):
        for index, (old, new) in enumerate(zip(before, now, strict=True)):
            yield from differences(old, new, (), f"{path}[{index}]")
    elif not _same(before, now):
        yield path, before, now


def describe_differences(found: list[tuple[str, Any, Any]], there: str, here: str) -> str:
    """``$.a.b (0.01 there, 0.02 here); ...`` for the first differences found."""
    shown = "; ".join(
        f"{path} ({_short(old)} {there}, {_short(new)} {here})" for path, old, new in found[:6]
    )
    return shown + (f"; and {len(found) - 6} more" if len(found) > 6 else "")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _short(value: Any) -> str:
    text = "absent" if value is None else json.dumps(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
