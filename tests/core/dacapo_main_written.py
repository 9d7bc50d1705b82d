"""Run documents as DaCapo's main branch writes them (after 0.3.5).

DaCapo main moved ``batch_size``, ``num_workers``, ``snapshot_interval`` and ``learning_rate``
from the trainer config to its RunConfig; its converter writes every RunConfig field in its
order (an unset ``repetition`` as null), ``GunpowderTrainerConfig`` with ``sample_strategy``
and without ``num_data_fetchers``, ``snapshot_interval`` or ``gt_min_reject``, the U-Net's
input shape as ``_input_shape`` (a private attribute there) and ``ome_metadata`` on every
``ZarrArrayConfig``. :func:`main_shape` turns a DaCapo 0.3.5 document
(:mod:`dacapo_written`) into that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dacapo_run_files import dacapo_run

#: DaCapo main's RunConfig fields, in the order its converter writes them.
MAIN_RUN_KEYS = (
    "architecture_config",
    "task_config",
    "trainer_config",
    "datasplit_config",
    "name",
    "repetition",
    "num_iterations",
    "batch_size",
    "num_workers",
    "validation_interval",
    "snapshot_interval",
    "start_config",
    "learning_rate",
)
#: DaCapo main's RunConfig defaults for the fields that DaCapo 0.3.5's RunConfig lacks.
MAIN_RUN_DEFAULTS = {
    "batch_size": 1,
    "num_workers": 0,
    "snapshot_interval": None,
    "learning_rate": 1e-3,
}


def main_gunpowder_trainer(sample_strategy: str | None = None) -> dict[str, Any]:
    """DaCapo main's GunpowderTrainerConfig with every field, as its converter writes it."""
    return {
        "__type__": "GunpowderTrainerConfig",
        "name": "gunpowder",
        "augments": [],
        "min_masked": 0.15,
        "clip_raw": False,
        "sample_strategy": sample_strategy,
    }


def main_shape(document: dict[str, Any], **run_fields: Any) -> dict[str, Any]:
    """DaCapo 0.3.5's run ``document`` as DaCapo main writes it, with ``run_fields`` set on
    the run (others at main's defaults) and ``repetition`` null (main's default)."""
    document = _main_configs(document)
    document["architecture_config"] = {
        ("_input_shape" if key == "input_shape" else key): value
        for key, value in document["architecture_config"].items()
    }
    values = {**document, "repetition": None, **MAIN_RUN_DEFAULTS, **run_fields}
    return {key: values[key] for key in MAIN_RUN_KEYS}


def _main_configs(value: Any) -> Any:
    """``value`` with ``ome_metadata`` added to every ZarrArrayConfig in it."""
    if isinstance(value, dict):
        copied = {key: _main_configs(item) for key, item in value.items()}
        if copied.get("__type__") == "ZarrArrayConfig":
            copied["ome_metadata"] = False
        return copied
    if isinstance(value, list):
        return [_main_configs(item) for item in value]
    return value


def main_run(
    container: Path, trainer: dict[str, Any], *, num_iterations: int = 4, **run_fields: Any
) -> dict[str, Any]:
    """The run of :func:`dacapo_run_files.dacapo_run` in DaCapo main's shape."""
    document = dacapo_run(container, trainer, name="main_run", num_iterations=num_iterations)
    return main_shape(document, **run_fields)
