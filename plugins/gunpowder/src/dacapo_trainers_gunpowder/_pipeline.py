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

import contextlib
from typing import Any

import attrs
import numpy as np

from dacapo_trainers import Array, Dataset, InMemoryArray, Task, world_bounds

from ._augment_configs import AugmentConfig
from ._locations import LocationSampler
from ._sample_geometry import SampleGeometry
from ._shared_memory import BatchLayout

#: Names of the arrays of one batch, in the order snapshots list them.
BATCH_ARRAYS = ("raw", "gt", "target", "weight", "mask", "location")


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
    geometry: SampleGeometry
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
            if dataset.gt is None:
                raise ValueError(
                    f"dataset {dataset.name!r} has no gt; GunpowderTrainer needs gt to train"
                )
            clip = None
            if self.clip_raw:
                begin, end = world_bounds(dataset.gt)
                size = tuple(e - b for b, e in zip(begin, end, strict=True))
                clip = gp.Roi(gp.Coordinate(begin), gp.Coordinate(size))
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
        self._exit_stack = contextlib.ExitStack()

    def __enter__(self) -> SampleProducer:
        import gunpowder as gp

        self._exit_stack.enter_context(gp.build(self.pipeline))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._exit_stack.__exit__(*exc_info)

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
