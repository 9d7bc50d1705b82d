"""IntensityAugment: a random contrast scale and brightness shift of raw."""

from __future__ import annotations

import gunpowder as gp
import numpy as np

from ._seeding import node_rng

#: The range normalized raw lies in (see :func:`dacapo_trainers.normalize_raw`).
RAW_RANGE = (-1.0, 1.0)


class IntensityAugment(gp.BatchFilter):
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
        self.array = array
        self.scale = (scale_min, scale_max)
        self.shift = (shift_min, shift_max)
        self.clip = clip
        self.p = p

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Randomness comes from :func:`node_rng`; leave the global generators alone."""

    def setup(self) -> None:
        self.enable_autoskip()
        self.updates(self.array, self.spec[self.array])

    def skip_node(self, request: gp.BatchRequest) -> bool:
        return bool(node_rng(request, "IntensityAugment.p").random() >= self.p)

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> None:
        raw = batch.arrays[self.array]
        if raw.data.dtype.kind != "f":
            raise TypeError(f"IntensityAugment needs float raw, got {raw.data.dtype}")
        rng = node_rng(request, "IntensityAugment")
        scale = rng.uniform(*self.scale)
        shift = rng.uniform(*self.shift)
        mean = raw.data.mean()
        data = (raw.data - mean) * raw.data.dtype.type(scale) + raw.data.dtype.type(mean + shift)
        if self.clip:
            np.clip(data, *RAW_RANGE, out=data)
        raw.data = data.astype(raw.data.dtype, copy=False)
