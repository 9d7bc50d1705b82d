"""IntensityScaleShiftAugment: ``raw * scale + shift`` with a probability."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from ._raw_intensity_augment import RawIntensityAugment


class IntensityScaleShiftAugment(RawIntensityAugment):
    """``raw <- raw * scale + shift`` (gunpowder's IntensityScaleShift), applied with ``p``."""

    def __init__(self, array: gp.ArrayKey, scale: float, shift: float, p: float = 1.0) -> None:
        super().__init__(array, p)
        self.scale = scale
        self.shift = shift

    def transform(self, data: Any, rng: np.random.Generator) -> Any:
        return data * data.dtype.type(self.scale) + data.dtype.type(self.shift)
