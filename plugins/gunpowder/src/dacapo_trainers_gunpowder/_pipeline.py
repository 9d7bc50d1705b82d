"""Building the gunpowder pipeline and request of a training run, and producing samples.

Per dataset::

    ArraySource(raw) + ArraySource(gt) + ArraySource(mask or ones)   (zero-padded, unbounded)
      -> MergeProvider -> MaskedRandomLocation (min_masked, gt_min_reject, sample points)
      -> augments, in config order

then ``RandomProvider`` (datasets by weight) -> ``PredictorTargets`` (target, weight). Keys
are created here, per pipeline, never at import time. :class:`SampleProducer` runs it: one
request per sample, with a seed derived from ``(seed, batch index, sample index)`` so that a
batch is the same whichever worker produces it, and a resumed run draws what an
uninterrupted one would have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from dacapo_trainers import (
    Array,
    Dataset,
    InMemoryArray,
    Model,
    Task,
    output_voxel_size,
    world_bounds,
)

from ._augment_configs import AugmentConfig
from ._locations import BoxCounter, LocationSampler, spatial_nonzero
from ._trainer_config import GunpowderTrainerConfig

#: Names of the arrays of one batch, in the order snapshots list them.
BATCH_ARRAYS = ("raw", "gt", "target", "weight", "mask", "location")


@attrs.define(frozen=True)
class BatchLayout:
    """Shapes and dtypes of the arrays of one batch (batch axis first)."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, np.dtype[Any]]

    def nbytes(self, name: str) -> int:
        return int(np.prod(self.shapes[name])) * self.dtypes[name].itemsize

    @property
    def total_nbytes(self) -> int:
        # each array starts on a 64-byte boundary
        return sum(-(-self.nbytes(name) // 64) * 64 for name in self.shapes)

    def views(self, buffer: Any, offset: int = 0) -> dict[str, np.ndarray]:
        """numpy views of the batch arrays in ``buffer`` starting at byte ``offset``."""
        views = {}
        for name, shape in self.shapes.items():
            dtype = self.dtypes[name]
            count = int(np.prod(shape))
            views[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(
                shape
            )
            offset += -(-self.nbytes(name) // 64) * 64
        return views

    def allocate(self) -> dict[str, np.ndarray]:
        return {name: np.empty(shape, self.dtypes[name]) for name, shape in self.shapes.items()}


def _lcm(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.lcm(x, y) for x, y in zip(a, b, strict=True))


@attrs.define(frozen=True)
class Geometry:
    """Sizes of a sample, from the model and the first dataset's raw voxel size.

    ``voxel_size`` is raw's; ``output_voxel_size`` is the prediction's, gt's, target's,
    weight's and mask's: ``model.scale(voxel_size)`` for a model that upsamples (DaCapo's),
    else raw's.
    """

    voxel_size: tuple[int, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    output_voxel_size: tuple[int, ...] = attrs.field()

    @output_voxel_size.default
    def _same_as_raw(self) -> tuple[int, ...]:
        return self.voxel_size

    @property
    def input_size(self) -> tuple[int, ...]:
        return tuple(s * v for s, v in zip(self.input_shape, self.voxel_size, strict=True))

    @property
    def output_size(self) -> tuple[int, ...]:
        return tuple(s * v for s, v in zip(self.output_shape, self.output_voxel_size, strict=True))

    @property
    def output_offset(self) -> tuple[int, ...]:
        """Where the output crop starts inside the input crop (world units)."""
        return tuple(
            (i - o) // 2 // v * v
            for i, o, v in zip(
                self.input_size, self.output_size, self.output_voxel_size, strict=True
            )
        )

    @property
    def grid(self) -> tuple[int, ...]:
        """The grid every shift of a sample lies on: lcm of raw's and the output's voxels."""
        return _lcm(self.voxel_size, self.output_voxel_size)


def geometry_of(datasets: Sequence[Dataset], model: Model) -> Geometry:
    voxel_size = tuple(int(v) for v in datasets[0].raw.voxel_size)
    return Geometry(
        voxel_size=voxel_size,
        input_shape=tuple(int(s) for s in model.input_shape),
        output_shape=tuple(int(s) for s in model.output_shape),
        output_voxel_size=output_voxel_size(model, voxel_size),
    )


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
    assert dataset.gt is not None
    gt = dataset.gt
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
    return LocationSampler(
        name=dataset.name,
        voxel_size=np.asarray(voxel_size, dtype=np.int64),
        region_begin=region_begin,
        region_end=region_end,
        mask=mask,
        gt_mean=gt_mean,
        gt_min_reject=config.gt_min_reject,
        mask_fraction=mask_fraction,
        min_masked_fraction=config.min_masked_fraction,
        gt_fraction=gt_fraction,
        min_gt_fraction=config.min_gt_fraction,
        sample_points=points,
    )


def check_sampler(sampler: LocationSampler, geometry: Geometry) -> None:
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


@attrs.define(eq=False)
class PipelineSpec:
    """Everything the pipeline is built from; built in the training process, used by workers.

    Building the gunpowder nodes themselves is deferred to :meth:`build` (in each worker), so
    that nothing gunpowder-specific crosses a process boundary.
    """

    datasets: list[Dataset]
    samplers: list[LocationSampler]
    task: Task
    augments: list[AugmentConfig]
    geometry: Geometry
    clip_raw: bool
    batch_size: int
    seed: int
    gt_dtype: np.dtype[Any]
    raw_channels: tuple[int, ...]
    gt_channels: tuple[int, ...] = ()
    mask_channels: tuple[int, ...] = ()

    def layout(self) -> BatchLayout:
        """The batch layout, probing the predictor once with an all-zero gt crop."""
        import warnings

        geometry = self.geometry
        gt_shape = (*self.gt_channels, *geometry.output_shape)
        mask_shape = (*self.mask_channels, *geometry.output_shape)
        gt = InMemoryArray(
            np.zeros(gt_shape, dtype=self.gt_dtype),
            voxel_size=geometry.output_voxel_size,
            offset=geometry.output_offset,
        )
        mask = InMemoryArray(
            np.ones(mask_shape, dtype=np.uint8),
            voxel_size=geometry.output_voxel_size,
            offset=geometry.output_offset,
        )
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            target = self.task.predictor.create_target(gt)
            weight = self.task.predictor.create_weight(gt, target, mask=mask)
        b = self.batch_size
        raw_channels = self.raw_channels or (1,)
        shapes = {
            "raw": (b, *raw_channels, *geometry.input_shape),
            "gt": (b, *gt_shape),
            "target": (b, *np.shape(target.data)),
            "weight": (b, *np.shape(weight.data)),
            "mask": (b, *mask_shape),
            "location": (b, len(geometry.voxel_size)),
        }
        dtypes = {
            "raw": np.dtype(np.float32),
            "gt": np.dtype(self.gt_dtype),
            "target": np.dtype(np.float32),
            "weight": np.dtype(np.float32),
            "mask": np.dtype(np.uint8),
            "location": np.dtype(np.int64),
        }
        return BatchLayout(shapes, dtypes)

    def build(self) -> SampleProducer:
        """Build the gunpowder pipeline (imports gunpowder)."""
        import gunpowder as gp

        from .nodes import ArraySource, MaskedRandomLocation, PredictorTargets

        keys = {name: gp.ArrayKey(name.upper()) for name in BATCH_ARRAYS}
        output_size = gp.Coordinate(self.geometry.output_size)
        sources = []
        for dataset, sampler in zip(self.datasets, self.samplers, strict=True):
            assert dataset.gt is not None
            clip = None
            if self.clip_raw:
                begin, end = _roi_bounds(dataset.gt)
                clip = gp.Roi(gp.Coordinate(begin), gp.Coordinate(end - begin))
            mask_array: Array = dataset.mask if dataset.mask is not None else _ones_like(dataset.gt)
            sources_of_dataset = (
                ArraySource(
                    keys["raw"], dataset.raw, interpolatable=True, dtype=np.float32, clip=clip
                ),
                ArraySource(keys["gt"], dataset.gt, interpolatable=False, dtype=self.gt_dtype),
                ArraySource(keys["mask"], mask_array, interpolatable=False, dtype=np.uint8),
            )
            source = sources_of_dataset + gp.MergeProvider()
            source += MaskedRandomLocation(sampler, output_size, location_key=keys["location"])
            for augment in self.augments:
                source += augment.node(keys["raw"], keys["gt"], keys["mask"])
            sources.append(source)
        weights = [float(dataset.weight) for dataset in self.datasets]
        pipeline = tuple(sources) + gp.RandomProvider(probabilities=weights)
        pipeline += PredictorTargets(
            self.task.predictor, keys["gt"], keys["mask"], keys["target"], keys["weight"]
        )

        geometry = self.geometry
        input_roi = gp.Roi((0,) * len(geometry.voxel_size), geometry.input_size)
        output_roi = gp.Roi(geometry.output_offset, geometry.output_size)
        template = gp.BatchRequest()
        template[keys["raw"]] = gp.ArraySpec(roi=input_roi)
        for name in ("gt", "target", "weight", "mask"):
            template[keys[name]] = gp.ArraySpec(roi=output_roi)
        template[keys["location"]] = gp.ArraySpec(nonspatial=True)
        return SampleProducer(pipeline, template, keys, self.batch_size, self.seed)


def _ones_like(array: Array) -> Array:
    """An array of ones of ``array``'s shape (channels included) and geometry, without
    allocating it: DaCapo's mask for a dataset without one."""
    return InMemoryArray(
        np.broadcast_to(np.uint8(1), tuple(int(s) for s in array.data.shape)),
        voxel_size=tuple(array.voxel_size),
        offset=tuple(array.offset),
    )


def sample_seed(seed: int, batch_index: int, sample_index: int) -> int:
    """The request seed of one sample: a function of the run seed and its position only."""
    state = np.random.SeedSequence([seed, batch_index, sample_index]).generate_state(1)
    return int(state[0])


class SampleProducer:
    """Runs a built pipeline: fills batch buffers sample by sample.

    Use as a context manager (it enters ``gunpowder.build``, which sets the nodes up and
    tears them down).
    """

    def __init__(
        self, pipeline: Any, template: Any, keys: dict[str, Any], batch_size: int, seed: int
    ) -> None:
        self.pipeline = pipeline
        self.template = template
        self.keys = keys
        self.batch_size = batch_size
        self.seed = seed
        self._build: Any = None

    def __enter__(self) -> SampleProducer:
        import gunpowder as gp

        self._build = gp.build(self.pipeline)
        self._build.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._build is not None:
            build, self._build = self._build, None
            build.__exit__(*exc_info)

    def fill(self, batch_index: int, out: dict[str, np.ndarray]) -> None:
        """Produce batch ``batch_index`` into the arrays ``out`` (see :class:`BatchLayout`)."""
        import gunpowder as gp

        keys = self.keys
        for s in range(self.batch_size):
            request = gp.BatchRequest(random_seed=sample_seed(self.seed, batch_index, s))
            for key, spec in self.template.items():
                request[key] = spec.copy()
            batch = self.pipeline.request_batch(request)
            raw = batch[keys["raw"]].data
            out["raw"][s] = raw.reshape(out["raw"].shape[1:])
            out["gt"][s] = batch[keys["gt"]].data
            out["target"][s] = batch[keys["target"]].data
            out["weight"][s] = batch[keys["weight"]].data
            out["mask"][s] = batch[keys["mask"]].data
            out["location"][s] = batch[keys["location"]].data
