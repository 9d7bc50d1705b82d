"""Writing DaCapo 0.3.5's weights file without importing DaCapo.

DaCapo's ``LocalWeightsStore`` reads ``torch.load(file, weights_only=False)`` and expects a
``dacapo.store.weights_store.Weights``. The file written here is ``torch.save`` (zip format,
pickle protocol 2, as DaCapo writes) of a :class:`~dacapo_trainers._run._dacapo_weights.
DacapoWeights` record, pickled under DaCapo's class name: a pickler that writes that name for
the record's class, where pickle would otherwise look the class up by importing its module.
The state is the record's ``__dict__`` (``model``, ``optimizer``), which DaCapo's class sets
on unpickling as it does for its own files.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

from .._outputs._atomic import atomic_writer
from .._run._dacapo_weights import DACAPO_WEIGHTS_CLASS, DacapoWeights

_MODULE, _, _NAME = DACAPO_WEIGHTS_CLASS.rpartition(".")
#: torch.save's default, and what DaCapo's files use.
PICKLE_PROTOCOL = 2


class _DacapoPickler(pickle._Pickler):
    """Pickles :class:`DacapoWeights` as DaCapo's ``Weights`` class, the rest as pickle does."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is DacapoWeights:
            # protocol 2: GLOBAL "module\nname\n"; memoized so that it is written once
            # (write and memoize are the pure-Python pickler's, which typeshed leaves out)
            self.write(pickle.GLOBAL + f"{_MODULE}\n{_NAME}\n".encode("ascii"))  # type: ignore[attr-defined]
            self.memoize(obj)  # type: ignore[attr-defined]
            return
        super().save_global(obj, name)  # type: ignore[misc]


#: What ``torch.save`` takes as ``pickle_module``: it uses ``Pickler`` (zip files) and
#: ``__name__``.
_PICKLE_MODULE = types.ModuleType(f"{__name__}.pickle_module")
_PICKLE_MODULE.Pickler = _DacapoPickler  # type: ignore[attr-defined]


def write_dacapo_weights(path: Path, model: dict[str, Any], optimizer: dict[str, Any]) -> Path:
    """Write DaCapo's weights file ``path`` (atomically) holding the two state dicts."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, "wb") as file:
        torch.save(
            DacapoWeights(model, optimizer),
            file,
            pickle_module=_PICKLE_MODULE,
            pickle_protocol=PICKLE_PROTOCOL,
        )
    return path
