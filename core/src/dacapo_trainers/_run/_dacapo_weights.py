"""DaCapo 0.3.5's weights files, read without DaCapo, and its parameter names.

A file of DaCapo's ``LocalWeightsStore`` is ``torch.save`` of a
``dacapo.store.weights_store.Weights`` object whose ``model`` and ``optimizer`` attributes are
state dicts (older files: a dict with those keys). It is read with torch's restricted
(``weights_only``) unpickler, in which that one class name is mapped to
:class:`DacapoWeights`, a plain record: every other class or function a file names is refused,
so reading one imports and runs nothing.

Names: DaCapo's ``Model`` holds ``architecture`` and ``prediction_head``, and both again as
``chain.0`` and ``chain.1`` (the same tensors). A model says how its state-dict keys are named
in DaCapo with a method ``dacapo_state_dict_names()`` returning ``{our key: DaCapo's key}``
(the reference ``CNNectomeUNet`` and task heads have it); a model without it uses DaCapo's
names as they are.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

#: The class DaCapo pickles its weights as.
DACAPO_WEIGHTS_CLASS = "dacapo.store.weights_store.Weights"
#: DaCapo's ``Model.chain`` entries and the attribute each repeats.
CHAIN_TWINS = {"chain.0.": "architecture.", "chain.1.": "prediction_head."}


class DacapoWeights:
    """What a DaCapo weights file holds: the model's and the optimizer's state dicts.

    Stands in for ``dacapo.store.weights_store.Weights`` when a file is read, and is written
    under that name by the DaCapo export.
    """

    def __init__(self, model: dict[str, Any], optimizer: dict[str, Any]) -> None:
        self.model = model
        self.optimizer = optimizer

    def __setstate__(self, state: Any) -> None:
        # Only the two state dicts are taken from a file; anything else in it is ignored.
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
            raise pickle.UnpicklingError(f"a {DACAPO_WEIGHTS_CLASS} without a 'model' state dict")
        self.model = state["model"]
        self.optimizer = state.get("optimizer") or {}


class DacapoWeightsError(ValueError):
    """A DaCapo weights file that cannot be used (one paragraph)."""


def read_dacapo_weights(path: Path) -> DacapoWeights:
    """Read a DaCapo weights file with the restricted unpickler (module docstring).

    :raises DacapoWeightsError: the file names a class or function other than DaCapo's
        ``Weights`` and torch's tensor types, is not a torch file, or holds no model state.
    """
    import torch

    try:
        with torch.serialization.safe_globals([(DacapoWeights, DACAPO_WEIGHTS_CLASS)]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"names {found.group(1)}" if found else "holds objects other than plain data"
        raise DacapoWeightsError(
            f"DaCapo weights file {path} {what}, which the restricted loader refuses: a "
            f"DaCapo weights file holds a {DACAPO_WEIGHTS_CLASS} with model and optimizer "
            "state dicts and nothing else, and nothing in it was imported or run. Start from "
            "a file written by DaCapo's LocalWeightsStore (or by 'dacapo-trainers export')"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as error:
        raise DacapoWeightsError(
            f"DaCapo weights file {path} cannot be read by torch ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no message'}); is it a file "
            "of DaCapo's LocalWeightsStore, whole?"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        return DacapoWeights(loaded["model"], loaded.get("optimizer") or {})
    if not isinstance(loaded, DacapoWeights):
        raise DacapoWeightsError(
            f"DaCapo weights file {path} holds a {type(loaded).__name__}, not DaCapo's "
            "Weights (model and optimizer state dicts)"
        )
    return loaded


def dacapo_names(model: Any) -> dict[str, str]:
    """``{our state-dict key: DaCapo's}`` for ``model`` (module docstring)."""
    own = list(model.state_dict())
    names = getattr(model, "dacapo_state_dict_names", None)
    mapped: dict[str, str] = dict(names()) if names is not None else {}
    return {key: mapped.get(key, key) for key in own}


def from_dacapo_names(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """DaCapo's model state dict with ``model``'s keys (``chain.*`` repeats dropped); keys
    with no counterpart in ``model`` keep DaCapo's name."""
    inverse = {theirs: ours for ours, theirs in dacapo_names(model).items()}
    renamed = {}
    for key, value in state.items():
        if _is_chain_twin(key, state):
            continue
        renamed[inverse.get(key, key)] = value
    return renamed


def to_dacapo_names(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """``model``'s state dict under DaCapo's keys, with the ``chain.*`` repeats DaCapo's
    ``Model`` has (the same tensors, so a file stores them once)."""
    names = dacapo_names(model)
    renamed = {names.get(key, key): value for key, value in state.items()}
    for twin, original in CHAIN_TWINS.items():
        renamed.update(
            {
                twin + key.removeprefix(original): value
                for key, value in list(renamed.items())
                if key.startswith(original)
            }
        )
    return renamed


def _is_chain_twin(key: str, state: dict[str, Any]) -> bool:
    return any(
        key.startswith(twin) and original + key.removeprefix(twin) in state
        for twin, original in CHAIN_TWINS.items()
    )
