"""IntensityAugment: a random contrast scale and brightness shift of raw."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from ._raw_intensity_augment import RawIntensityAugment

#: The range normalized raw lies in (see :func:`dacapo_trainers.normalize_raw`).
RAW_RANGE = (-1.0, 1.0)


class IntensityAugment(RawIntensityAugment):
    """``raw <- mean + (raw - mean) * scale + shift`` with random ``scale`` and ``shift``.

    ``mean`` is the sample's mean (as gunpowder's IntensityAugment). With ``clip``, the result
    is clipped to the normalized raw range [-1, 1]. Applied with probability ``p``.
    """

    def __init__(
        self,
        array: gp.ArrayKey,
        scale_min: float,
        scale_max: float,
        shift_min: float,
        shift_max: float,
        clip: bool = True,
        p: float = 1.0,
    ) -> None:
        super().__init__(array, p)
        self.scale = (scale_min, scale_max)
        self.shift = (shift_min, shift_max)
        self.clip = clip

    def transform(self, data: Any, rng: np.random.Generator) -> Any:
        scale = rng.uniform(*self.scale)
        shift = rng.uniform(*self.shift)
        mean = data.mean()
        data = (data - mean) * data.dtype.type(scale) + data.dtype.type(mean + shift)
        if self.clip:
            np.clip(data, *RAW_RANGE, out=data)
        return data
