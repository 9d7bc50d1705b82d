"""MaskedRandomLocation: moves each request to a random location that DaCapo would accept."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

from .._locations import LocationSampler
from ._seeding import node_rng


class MaskedRandomLocation(gp.BatchFilter):
    """Shifts every request to a location drawn by ``sampler``, then shifts the batch back.

    It stands for DaCapo's ``CopyMask`` + ``RandomLocation`` + ``Reject`` nodes: the centre
    voxel of the request must be masked, and with ``gt_min_reject`` the output crop's mean gt
    must exceed it (:class:`~dacapo_trainers_gunpowder._locations.LocationSampler`); drawn
    without rejection loops for the centre rule, and never looping forever.

    The centre box and the output crop (of size ``output_size``) are centred on the request's
    total ROI, so augments downstream of this node that grow the request do not move them.

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
        center = np.asarray(total.center, dtype=np.int64)
        voxel = self.sampler.voxel_size
        crop_begin = np.round((center - self.output_size / 2) / voxel).astype(np.int64) * voxel
        box_begin, box_size = self.sampler.centre_box(center)
        rng = node_rng(request, "MaskedRandomLocation")
        shift = self.sampler.draw(rng, box_begin, box_size, grid, crop_begin, self.output_size)
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
