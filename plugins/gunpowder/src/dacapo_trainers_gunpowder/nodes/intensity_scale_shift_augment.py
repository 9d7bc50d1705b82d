"""IntensityScaleShiftAugment: ``raw * scale + shift`` with a probability."""

from __future__ import annotations

import gunpowder as gp

from ._seeding import node_rng


class IntensityScaleShiftAugment(gp.BatchFilter):
    """``raw <- raw * scale + shift`` (gunpowder's IntensityScaleShift), applied with ``p``."""

    def __init__(self, array: gp.ArrayKey, scale: float, shift: float, p: float = 1.0) -> None:
        self.array = array
        self.scale = scale
        self.shift = shift
        self.p = p

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Randomness comes from :func:`node_rng`; leave the global generators alone."""

    def setup(self) -> None:
        self.enable_autoskip()
        self.updates(self.array, self.spec[self.array])

    def skip_node(self, request: gp.BatchRequest) -> bool:
        return bool(node_rng(request, "IntensityScaleShiftAugment.p").random() >= self.p)

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> None:
        raw = batch.arrays[self.array]
        dtype = raw.data.dtype
        raw.data = (raw.data * dtype.type(self.scale) + dtype.type(self.shift)).astype(
            dtype, copy=False
        )
