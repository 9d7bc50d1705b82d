"""PredictorTargets: the task's target and weight from gt (and mask), per sample."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

from dacapo_trainers import InMemoryArray, Predictor


class PredictorTargets(gp.BatchFilter):
    """Provides ``target_key`` and ``weight_key`` from ``predictor`` (DaCapo's TargetFilter).

    gt and mask crops are wrapped in :class:`dacapo_trainers.InMemoryArray` with their world
    geometry (request space) and handed to ``predictor.create_target`` and
    ``predictor.create_weight``; the results become float32 arrays on gt's ROI.
    """

    def __init__(
        self,
        predictor: Predictor,
        gt_key: gp.ArrayKey,
        mask_key: gp.ArrayKey,
        target_key: gp.ArrayKey,
        weight_key: gp.ArrayKey,
    ) -> None:
        self.predictor = predictor
        self.gt_key = gt_key
        self.mask_key = mask_key
        self.target_key = target_key
        self.weight_key = weight_key

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Nothing random here; leave the global generators alone."""

    def setup(self) -> None:
        gt_spec = self.spec[self.gt_key]
        for key in (self.target_key, self.weight_key):
            spec = gt_spec.copy()
            spec.dtype = np.float32
            spec.interpolatable = True
            self.provides(key, spec)

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        roi = request[self.target_key].roi
        deps = gp.BatchRequest()
        deps[self.gt_key] = gp.ArraySpec(roi=roi)
        deps[self.mask_key] = gp.ArraySpec(roi=roi)
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> gp.Batch:
        gt = batch[self.gt_key]
        mask = batch[self.mask_key]
        voxel_size = tuple(gt.spec.voxel_size)
        offset = tuple(gt.spec.roi.offset)
        gt_array = InMemoryArray(gt.data, voxel_size=voxel_size, offset=offset)
        mask_array = InMemoryArray(mask.data, voxel_size=voxel_size, offset=offset)
        target = self.predictor.create_target(gt_array)
        weight = self.predictor.create_weight(gt_array, target, mask=mask_array)
        out = gp.Batch()
        for key, array in ((self.target_key, target), (self.weight_key, weight)):
            spec = self.spec[key].copy()
            spec.roi = gt.spec.roi
            out[key] = gp.Array(np.asarray(array.data, dtype=np.float32), spec)
        return out
