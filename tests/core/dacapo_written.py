"""Files the way DaCapo 0.3.5 writes them, for the DaCapo-compatibility tests.

* Config documents are what DaCapo's cattrs converter makes of its attrs configs: every field,
  defaults included, ``"__type__"`` on tagged configs, private attributes under their own
  name (``_eval_shape_increase``, ``_axes``), and funlib ``Coordinate``/``Roi`` values as
  Python tuples.
* DaCapo's file config store writes such a document with ``yaml.dump`` (tuples become
  ``!!python/tuple``); its Mongo store keeps it as a BSON document, exported here as JSON.
* Containers are written as DaCapo writes arrays: with funlib.persistence's ``prepare_ds``
  (one zarr array per path, no root group) where it is installed (zarr 2); with zarr 3, the
  same layout and attributes written with zarr directly (in zarr format 3).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def coordinate(*values: int) -> tuple[int, ...]:
    """A funlib ``Coordinate`` as DaCapo's converter unstructures it: a tuple."""
    return tuple(values)


def zarr_array_config(name: str, file_name: Path, dataset: str) -> dict[str, Any]:
    return {
        "__type__": "ZarrArrayConfig",
        "name": name,
        "file_name": str(file_name),
        "dataset": dataset,
        "snap_to_grid": None,
        "_axes": None,
        "mode": "a",
    }


def intensities_config(
    name: str, source: dict[str, Any], low: float, high: float
) -> dict[str, Any]:
    return {
        "__type__": "IntensitiesArrayConfig",
        "name": name,
        "source_array_config": source,
        "min": low,
        "max": high,
    }


def binarize_config(
    name: str, source: dict[str, Any], groupings: list[tuple[str, list[int]]]
) -> dict[str, Any]:
    return {
        "__type__": "BinarizeArrayConfig",
        "name": name,
        "source_array_config": source,
        "groupings": [tuple(group) for group in groupings],
        "background": 0,
    }


def crop_config(
    name: str, source: dict[str, Any], offset: tuple[int, ...], shape: tuple[int, ...]
) -> dict[str, Any]:
    return {
        "__type__": "CropArrayConfig",
        "name": name,
        "source_array_config": source,
        "roi": (offset, shape),  # a funlib Roi: (offset, shape)
    }


def raw_gt_dataset(
    name: str,
    raw: dict[str, Any],
    gt: dict[str, Any],
    mask: dict[str, Any] | None = None,
    sample_points: list[tuple[int, ...]] | None = None,
) -> dict[str, Any]:
    return {
        "__type__": "RawGTDatasetConfig",
        "name": name,
        "weight": 1,
        "raw_config": raw,
        "gt_config": gt,
        "mask_config": mask,
        "sample_points": sample_points,
    }


def datasplit(name: str, train: list[dict[str, Any]], validate: list[dict[str, Any]]) -> dict:
    return {
        "__type__": "TrainValidateDataSplitConfig",
        "name": name,
        "train_configs": train,
        "validate_configs": validate,
    }


def cnnectome_unet(
    input_shape: tuple[int, ...],
    fmaps_out: int = 4,
    downsample_factors: tuple[tuple[int, ...], ...] = ((2, 2, 2),),
    **changes: Any,
) -> dict[str, Any]:
    document = {
        "__type__": "CNNectomeUNetConfig",
        "name": "unet",
        "input_shape": input_shape,
        "fmaps_out": fmaps_out,
        "fmaps_in": 1,
        "num_fmaps": 4,
        "fmap_inc_factor": 2,
        "downsample_factors": list(downsample_factors),
        "kernel_size_down": None,
        "kernel_size_up": None,
        "_eval_shape_increase": None,
        "upsample_factors": None,
        "constant_upsample": True,
        "padding": "valid",
        "use_attention": False,
        "batch_norm": False,
    }
    document.update(changes)
    return document


def affinities_task(neighborhood: list[tuple[int, ...]]) -> dict[str, Any]:
    return {
        "__type__": "AffinitiesTaskConfig",
        "name": "affs",
        "neighborhood": neighborhood,
        "lsds": False,
        "num_lsd_voxels": 10,
        "downsample_lsds": 1,
        "lsds_to_affs_weight_ratio": 1,
        "affs_weight_clipmin": 0.05,
        "affs_weight_clipmax": 0.95,
        "lsd_weight_clipmin": 0.05,
        "lsd_weight_clipmax": 0.95,
        "background_as_object": False,
    }


def distance_task(channels: list[str]) -> dict[str, Any]:
    return {
        "__type__": "DistanceTaskConfig",
        "name": "distances",
        "channels": channels,
        "clip_distance": 40.0,
        "tol_distance": 40.0,
        "scale_factor": 50.0,
        "mask_distances": True,
        "clipmin": 0.05,
        "clipmax": 0.95,
    }


def one_hot_task(classes: list[str]) -> dict[str, Any]:
    return {
        "__type__": "OneHotTaskConfig",
        "name": "one_hot",
        "classes": classes,
        "kernel_size": None,
    }


def dummy_trainer() -> dict[str, Any]:
    return {
        "__type__": "DummyTrainerConfig",
        "name": "dummy",
        "batch_size": 1,
        "learning_rate": 1e-3,
        "mirror_augment": False,
    }


def gunpowder_trainer() -> dict[str, Any]:
    """DaCapo's GunpowderTrainerConfig with every field, as its converter writes it."""
    return {
        "__type__": "GunpowderTrainerConfig",
        "name": "gunpowder",
        "batch_size": 1,
        "learning_rate": 1e-3,
        "num_data_fetchers": 1,
        "augments": [],
        "snapshot_interval": None,
        "min_masked": 0.15,
        "clip_raw": False,
        "gt_min_reject": None,
    }


def run_document(
    name: str,
    task: dict[str, Any],
    architecture: dict[str, Any],
    trainer: dict[str, Any],
    split: dict[str, Any],
    *,
    num_iterations: int,
    validation_interval: int = 1000,
    repetition: int = 0,
    start: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RunConfig as DaCapo's converter unstructures it (RunConfig itself carries no tag)."""
    return {
        "task_config": task,
        "architecture_config": architecture,
        "trainer_config": trainer,
        "datasplit_config": split,
        "name": name,
        "repetition": repetition,
        "num_iterations": num_iterations,
        "validation_interval": validation_interval,
        "start_config": start,
    }


def write_file_store_yaml(path: Path, document: dict[str, Any]) -> Path:
    """As DaCapo's FileConfigStore: ``yaml.dump`` of the document (tuples tagged)."""
    with path.open("w") as file:
        yaml.dump(dict(document), file)
    return path


def write_mongo_json(path: Path, document: dict[str, Any]) -> Path:
    """As a document of DaCapo's MongoConfigStore, exported as JSON (tuples become lists)."""
    path.write_text(json.dumps(document))
    return path


def prepare_array(
    container: Path,
    name: str,
    data: np.ndarray,
    *,
    voxel_size: tuple[int, ...],
    offset: tuple[int, ...] | None = None,
    axis_names: list[str] | None = None,
) -> Path:
    """Write ``data`` as DaCapo does: funlib's ``prepare_ds`` on ``container/name``."""
    spatial = len(voxel_size)
    offset = offset if offset is not None else (0,) * spatial
    axis_names = axis_names or ["c^"] * (data.ndim - spatial) + ["z", "y", "x"][-spatial:]
    units = ["nm"] * spatial
    try:
        from funlib.persistence import prepare_ds
    except ImportError:  # zarr 3 without funlib.persistence 0.6: the same layout by hand
        import zarr

        if os.environ.get("DACAPO_TRAINERS_TESTS_NEED_FUNLIB"):
            raise  # the core's zarr-2 session installs funlib.persistence: write with it

        array = zarr.open_array(
            str(container / name), mode="w", shape=data.shape, dtype=data.dtype, chunks=data.shape
        )
        array[...] = data
        types = ["channel" if a.endswith("^") else "space" for a in axis_names]
        array.attrs.update(
            {
                "axis_names": axis_names,
                "units": units,
                "voxel_size": list(voxel_size),
                "offset": list(offset),
                "types": types,
            }
        )
        return container
    array = prepare_ds(
        str(container / name),
        shape=data.shape,
        offset=offset,
        voxel_size=voxel_size,
        axis_names=axis_names,
        units=units,
        dtype=data.dtype,
        mode="w",
    )
    array[array.roi] = data
    return container
