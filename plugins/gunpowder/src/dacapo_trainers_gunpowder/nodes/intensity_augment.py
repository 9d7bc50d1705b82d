"""IntensityAugment: a random contrast scale and brightness shift of raw."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from ._raw_intensity_augment import RawIntensityAugment

#: The range raw must lie in, and is clipped to, with ``clip`` (gunpowder's IntensityAugment).
CLIP_RANGE = (0.0, 1.0)


class IntensityAugment(RawIntensityAugment):
    """``raw <- mean + (raw - mean) * scale + shift`` with random ``scale`` and ``shift``.

    As gunpowder's IntensityAugment (which DaCapo uses): ``mean`` is the sample's mean, and
    with ``clip`` raw must already lie in [0, 1] (a :class:`ValueError` says how to get there
    otherwise; gunpowder asserts) and the result is clipped to [0, 1]. Applied with
    probability ``p``.
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
        if self.clip:
            low, high = float(data.min()), float(data.max())
            if low < CLIP_RANGE[0] or high > CLIP_RANGE[1]:
                raise ValueError(
                    f"IntensityAugment with clip=True needs raw in [0, 1] (as gunpowder's), but "
                    f"a sample's raw spans [{low:g}, {high:g}]; normalize raw in the dataset "
                    "config (e.g. ZarrDatasetConfig.intensity_range, DaCapo's "
                    "IntensitiesArrayConfig), or set clip to false in the augment config"
                )
        scale = rng.uniform(*self.scale)
        shift = rng.uniform(*self.shift)
        mean = data.mean()
        data = (data - mean) * data.dtype.type(scale) + data.dtype.type(mean + shift)
        if self.clip:
            np.clip(data, *CLIP_RANGE, out=data)
        return data
