"""GammaAugment: a random gamma correction of raw within each sample's intensity range."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

from ._seeding import node_rng


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


class GammaAugment(gp.BatchFilter):
    """Applies ``raw <- lo + (hi - lo) * ((raw - lo) / (hi - lo)) ** gamma`` per sample.

    ``lo`` and ``hi`` are the sample's minimum and maximum, so the intensity range is kept;
    samples with a range under 1e-3 are left alone. Applied with probability ``p``.
    """

    def __init__(self, array: gp.ArrayKey, gamma_min: float, gamma_max: float, p: float = 1.0):
        if not 0 < gamma_min <= gamma_max:
            raise ValueError(f"need 0 < gamma_min <= gamma_max, got {gamma_min}, {gamma_max}")
        self.array = array
        self.gamma_min = gamma_min
        self.gamma_max = gamma_max
        self.p = p

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Randomness comes from :func:`node_rng`; leave the global generators alone."""

    def setup(self) -> None:
        self.enable_autoskip()
        self.updates(self.array, self.spec[self.array])

    def skip_node(self, request: gp.BatchRequest) -> bool:
        return bool(node_rng(request, "GammaAugment.p").random() >= self.p)

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> None:
        raw = batch.arrays[self.array]
        if raw.data.dtype.kind != "f":
            raise TypeError(f"GammaAugment needs float raw, got {raw.data.dtype}")
        gamma = sample_gamma(node_rng(request, "GammaAugment"), self.gamma_min, self.gamma_max)
        lo, hi = float(raw.data.min()), float(raw.data.max())
        if hi - lo <= 1e-3:
            return
        scaled = (raw.data - lo) / (hi - lo)
        raw.data = (np.power(scaled, gamma) * (hi - lo) + lo).astype(raw.data.dtype, copy=False)
