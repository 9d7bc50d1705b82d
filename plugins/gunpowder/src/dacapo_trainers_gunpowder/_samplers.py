"""The location sampler of each dataset, built in the training process before the workers
start, from the dataset's mask (or gt's region) and, for the rules that are set, its gt."""

from __future__ import annotations

import numpy as np

from dacapo_trainers import Array, Dataset, world_bounds

from ._box_counter import BoxCounter, spatial_nonzero
from ._locations import LocationSampler
from ._sample_geometry import SampleGeometry
from ._sample_strategy import centre_rule
from ._trainer_config import GunpowderTrainerConfig


def _spatial_shape(array: Array) -> tuple[int, ...]:
    dims = len(array.voxel_size)
    return tuple(int(s) for s in array.data.shape[-dims:])


def _roi_bounds(array: Array) -> tuple[np.ndarray, np.ndarray]:
    """The core's :func:`~dacapo_trainers.world_bounds`, as int64 arrays."""
    begin, end = world_bounds(array)
    return np.asarray(begin, dtype=np.int64), np.asarray(end, dtype=np.int64)


def location_sampler(dataset: Dataset, config: GunpowderTrainerConfig) -> LocationSampler:
    """The location sampler of ``dataset``: its mask (or gt's region) and, for the rules that
    are set, integral images of its gt and mask (see :mod:`._locations`)."""
    gt = dataset.gt
    if gt is None:
        raise ValueError(
            f"dataset {dataset.name!r} has no gt; GunpowderTrainer needs gt to draw locations"
        )
    dims = len(gt.voxel_size)
    mask = None
    if dataset.mask is not None:
        region_begin, region_end = _roi_bounds(dataset.mask)
        mask = spatial_nonzero(dataset.mask.data, dims)
        voxel_size = dataset.mask.voxel_size
    else:
        region_begin, region_end = _roi_bounds(gt)
        voxel_size = gt.voxel_size
    gt_mean = gt_fraction = mask_fraction = None
    if config.gt_min_reject is not None:
        gt_mean = BoxCounter.from_array(gt.data, gt.voxel_size, gt.offset, values=True)
    if config.min_gt_fraction:
        gt_fraction = BoxCounter.from_array(gt.data, gt.voxel_size, gt.offset)
    if config.min_masked_fraction:
        if mask is not None:
            mask_fraction = BoxCounter.from_array(mask, voxel_size, region_begin)
        else:
            mask_fraction = BoxCounter.from_array(
                np.broadcast_to(True, _spatial_shape(gt)), voxel_size, region_begin
            )
    points = None
    if dataset.sample_points is not None and len(dataset.sample_points):
        points = np.asarray(dataset.sample_points, dtype=np.float64)
    rule = centre_rule(config.sample_strategy, dataset.name, mask, points)
    return LocationSampler(
        name=dataset.name,
        voxel_size=np.asarray(voxel_size, dtype=np.int64),
        region_begin=region_begin,
        region_end=region_end,
        mask=rule.mask,
        gt_mean=gt_mean,
        gt_min_reject=config.gt_min_reject,
        mask_fraction=mask_fraction,
        min_masked_fraction=config.min_masked_fraction,
        gt_fraction=gt_fraction,
        min_gt_fraction=config.min_gt_fraction,
        sample_points=rule.sample_points,
        centre_all_masked=rule.all_masked,
    )


def check_sampler(sampler: LocationSampler, geometry: SampleGeometry) -> None:
    """Draw once for the plain request, so that a dataset without any valid location is
    refused before training (:class:`NoValidLocationError`) and the valid locations are
    found once, in this process, before the workers start."""
    input_size = np.asarray(geometry.input_size, dtype=np.int64)
    output_offset = np.asarray(geometry.output_offset, dtype=np.int64)
    output_size = np.asarray(geometry.output_size, dtype=np.int64)
    total_begin = np.minimum(0, output_offset)
    total_end = np.maximum(input_size, output_offset + output_size)
    center = total_begin + (total_end - total_begin) // 2
    box_begin, box_size = sampler.centre_box(center)
    grid = np.asarray(geometry.grid, dtype=np.int64)
    sampler.draw(np.random.default_rng(0), box_begin, box_size, grid, output_offset, output_size)
