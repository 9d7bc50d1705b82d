"""MaskedRandomLocation: moves each request to a random location that meets ``min_masked``."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

from .._locations import LocationSampler
from ._seeding import node_rng


class MaskedRandomLocation(gp.BatchFilter):
    """Shifts every request to a location drawn by ``sampler``, then shifts the batch back.

    Unlike gunpowder's ``RandomLocation`` (and DaCapo, which stores ``min_masked`` but never
    passes it on), the draw uses the fraction of the *output crop* inside the mask, from
    integral images computed once (:class:`~dacapo_trainers_gunpowder._locations.LocationSampler`),
    and it never loops forever: it raises when no location qualifies.

    The output crop is the box of size ``output_size`` centred on the request's total ROI, so
    augments upstream of this node that grow the request do not change what is tested.

    :param sampler: draws the location.
    :param output_size: the model's output size in world units.
    :param location_key: if given, provides the chosen shift (world units, a 1D int64
        array) under this non-spatial key: request-space position ``p`` came from world
        position ``p + shift`` (before augments).
    """

    def __init__(
        self,
        sampler: LocationSampler,
        output_size: gp.Coordinate,
        location_key: gp.ArrayKey | None = None,
    ) -> None:
        self.sampler = sampler
        self.output_size = np.asarray(output_size, dtype=np.int64)
        self.location_key = location_key

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Randomness comes from :func:`node_rng`; leave the global generators alone."""

    def setup(self) -> None:
        if self.location_key is not None:
            self.provides(self.location_key, gp.ArraySpec(nonspatial=True))

    def provide(self, request: gp.BatchRequest) -> gp.Batch:
        spatial_keys = [
            key
            for key, spec in request.array_specs.items()
            if not spec.nonspatial and spec.roi is not None
        ]
        grid = np.asarray(self.spec.get_lcm_voxel_size(spatial_keys), dtype=np.int64)
        total = request.get_total_roi()
        center = np.asarray(total.center, dtype=np.float64)
        base_begin = np.round((center - self.output_size / 2) / grid).astype(np.int64) * grid
        rng = node_rng(request, "MaskedRandomLocation")
        shift = self.sampler.draw(rng, base_begin, self.output_size, grid)
        offset = gp.Coordinate(int(s) for s in shift)

        upstream = request.copy()
        if self.location_key is not None and self.location_key in upstream:
            del upstream[self.location_key]
        for _key, spec in list(upstream.items()):
            if spec.roi is not None:
                spec.roi = spec.roi.shift(offset)
        batch = self.get_upstream_provider().request_batch(upstream)

        for key, spec in request.array_specs.items():
            if key in batch.arrays and spec.roi is not None:
                batch.arrays[key].spec.roi = spec.roi
        if self.location_key is not None and self.location_key in request:
            batch[self.location_key] = gp.Array(
                np.asarray(shift, dtype=np.int64), gp.ArraySpec(nonspatial=True)
            )
        return batch
