"""RawIntensityAugment: the life cycle shared by augments that rewrite raw values in place."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from ._seeding import node_rng


class RawIntensityAugment(gp.BatchFilter):
    """Base of augments that map a float raw array to new values, applied with probability ``p``.

    Subclasses implement :meth:`transform`. Randomness comes from :func:`node_rng`, keyed by the
    subclass name (``"<Name>.p"`` for the coin flip, ``"<Name>"`` for the transform), so each
    node draws its own stream from the request and the global generators are left alone.
    """

    def __init__(self, array: gp.ArrayKey, p: float = 1.0) -> None:
        self.array = array
        self.p = p

    def transform(self, data: Any, rng: np.random.Generator) -> Any:
        """The new raw values for ``data`` (a float array of one sample's raw)."""
        raise NotImplementedError

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Randomness comes from :func:`node_rng`; leave the global generators alone."""

    def setup(self) -> None:
        self.enable_autoskip()
        self.updates(self.array, self.spec[self.array])

    def skip_node(self, request: gp.BatchRequest) -> bool:
        return bool(node_rng(request, f"{type(self).__name__}.p").random() >= self.p)

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        deps = gp.BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> None:
        raw = batch.arrays[self.array]
        dtype = raw.data.dtype
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__} needs float raw, got {dtype}")
        rng = node_rng(request, type(self).__name__)
        raw.data = self.transform(raw.data, rng).astype(dtype, copy=False)
