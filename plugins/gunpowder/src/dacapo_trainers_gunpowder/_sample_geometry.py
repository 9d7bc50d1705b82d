"""The sizes of one sample: the model's input and output crops on raw's and gt's grids."""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from dacapo_trainers import Dataset, Model, output_voxel_size


def _lcm(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.lcm(x, y) for x, y in zip(a, b, strict=True))


@attrs.define(frozen=True)
class SampleGeometry:
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


def geometry_of(datasets: Sequence[Dataset], model: Model) -> SampleGeometry:
    """The sample geometry of ``model`` on the first dataset's raw grid (as DaCapo's)."""
    voxel_size = tuple(int(v) for v in datasets[0].raw.voxel_size)
    return SampleGeometry(
        voxel_size=voxel_size,
        input_shape=tuple(int(s) for s in model.input_shape),
        output_shape=tuple(int(s) for s in model.output_shape),
        output_voxel_size=output_voxel_size(model, voxel_size),
    )
