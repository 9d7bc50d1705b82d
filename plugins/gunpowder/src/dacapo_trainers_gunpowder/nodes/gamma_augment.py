"""GammaAugment: a random gamma correction of raw within each sample's intensity range."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from ._raw_intensity_augment import RawIntensityAugment


def sample_gamma(rng: np.random.Generator, gamma_min: float, gamma_max: float) -> float:
    """A gamma in ``[gamma_min, gamma_max]``, as likely below 1 as above it for symmetric ranges.

    As DaCapo: a gamma ``g < 1`` is mapped to ``1 - 1/g`` and ``g >= 1`` to ``g - 1``, a value
    is drawn uniformly between the mapped bounds and mapped back, so that ``[1/2, 2]`` draws
    ``1/2`` and ``2`` alike.
    """

    def forward(g: float) -> float:
        return g - 1.0 if g >= 1.0 else 1.0 - 1.0 / g

    value = rng.uniform(forward(gamma_min), forward(gamma_max))
    return float(1.0 / (1.0 - value)) if value < 0 else float(value + 1.0)


class GammaAugment(RawIntensityAugment):
    """Applies ``raw <- lo + (hi - lo) * ((raw - lo) / (hi - lo)) ** gamma`` per sample.

    ``lo`` and ``hi`` are the sample's minimum and maximum, so the intensity range is kept;
    samples with a range under 1e-3 are left alone. Applied with probability ``p``.
    """

    def __init__(self, array: gp.ArrayKey, gamma_min: float, gamma_max: float, p: float = 1.0):
        if not 0 < gamma_min <= gamma_max:
            raise ValueError(f"need 0 < gamma_min <= gamma_max, got {gamma_min}, {gamma_max}")
        super().__init__(array, p)
        self.gamma_min = gamma_min
        self.gamma_max = gamma_max

    def transform(self, data: Any, rng: np.random.Generator) -> Any:
        gamma = sample_gamma(rng, self.gamma_min, self.gamma_max)
        lo, hi = float(data.min()), float(data.max())
        if hi - lo <= 1e-3:
            return data
        return np.power((data - lo) / (hi - lo), gamma) * (hi - lo) + lo
