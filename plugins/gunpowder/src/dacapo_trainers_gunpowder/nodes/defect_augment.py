"""DefectAugment: gunpowder's, with the context a folded section needs requested upstream."""

from __future__ import annotations

import gunpowder as gp


class DefectAugment(gp.DefectAugment):  # type: ignore[misc]  # gunpowder is untyped
    """gunpowder's ``DefectAugment`` (missing, low-contrast and folded sections).

    gunpowder 1.4.4 and 1.5.0 compute the larger upstream request a fold needs
    (``deformation_strength`` voxels more on each side within the section) but do not return
    it, so a fold fails with a reshape error; this node returns it. Sections are drawn as
    gunpowder draws them, from the global generators gunpowder seeds from the request.
    """

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        super().prepare(request)
        spec = request[self.intensities].copy()
        if "deformed_slice" in self.slice_to_augmentation.values():
            voxel_size = self.spec[self.intensities].voxel_size
            growth = gp.Coordinate(
                0 if d == self.axis else voxel_size[d] * self.deformation_strength
                for d in range(spec.roi.dims)
            )
            spec.roi = spec.roi.grow(growth, growth)
        deps = gp.BatchRequest()
        deps[self.intensities] = spec
        return deps
