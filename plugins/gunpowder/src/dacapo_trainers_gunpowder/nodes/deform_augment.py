"""DeformAugment: gunpowder's, next to non-spatial arrays and without subsampling."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

#: gunpowder's own sampling of the transformation at an array's voxel size.
_SAMPLE = gp.DeformAugment._DeformAugment__sample_transform


class DeformAugment(gp.DeformAugment):
    """gunpowder's ``DeformAugment`` (elastic deformation, zoom and rotation).

    Two fixes: gunpowder's node fails on non-spatial arrays in the batch (the trainer's
    sample location is one), which this node hands on unchanged; and gunpowder 1.4.4 fails
    (``UnboundLocalError``) when the transformation is computed at the array's own voxel
    size, i.e. with ``subsample=1``, where gunpowder 1.5 crops the transformation, as this
    node does. The transformation is drawn as gunpowder draws it, from the global generators
    gunpowder seeds from the request.
    """

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> Any:
        held = {key: array for key, array in batch.arrays.items() if array.spec.nonspatial}
        for key in held:
            del batch.arrays[key]
        try:
            return super().process(batch, request)
        finally:
            batch.arrays.update(held)

    def _DeformAugment__sample_transform(
        self, transformation: Any, output_spec: Any, interpolate_order: int = 1
    ) -> Any:
        # the name-mangled private method of gunpowder's class, which its prepare calls
        if transformation.spec.voxel_size != output_spec.voxel_size:
            return _SAMPLE(self, transformation, output_spec, interpolate_order)
        relative = (output_spec.roi - transformation.spec.roi.offset) / output_spec.voxel_size
        data = np.copy(transformation.data[(slice(None), *relative.get_bounding_box())])
        return gp.Array(
            data, gp.ArraySpec(output_spec.roi, output_spec.voxel_size, interpolatable=True)
        )
