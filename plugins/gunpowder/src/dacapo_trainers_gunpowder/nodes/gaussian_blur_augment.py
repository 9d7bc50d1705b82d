"""GaussianBlurAugment: a Gaussian blur of raw with a random sigma per sample."""

from __future__ import annotations

from typing import Any

import gunpowder as gp
import numpy as np

from ._raw_intensity_augment import RawIntensityAugment


class GaussianBlurAugment(RawIntensityAugment):
    """Blurs raw with ``scipy.ndimage.gaussian_filter``, sigma drawn per sample.

    ``sigma`` is drawn uniformly from ``[sigma_min, sigma_max]`` in world units (nm) and
    divided by the voxel size of each spatial axis, so anisotropic data is blurred alike in
    the world; leading non-spatial axes (channels) are not blurred. Borders are reflected
    (scipy's default), so the sample's mean is kept up to border effects. Applied with
    probability ``p``.
    """

    def __init__(
        self, array: gp.ArrayKey, sigma_min: float, sigma_max: float, p: float = 1.0
    ) -> None:
        if not 0 <= sigma_min <= sigma_max:
            raise ValueError(f"need 0 <= sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
        super().__init__(array, p)
        self.sigma = (sigma_min, sigma_max)
        self.voxel_size: tuple[int, ...] = ()

    def setup(self) -> None:
        super().setup()
        self.voxel_size = tuple(int(v) for v in self.spec[self.array].voxel_size)

    def transform(self, data: Any, rng: np.random.Generator) -> Any:
        from scipy.ndimage import gaussian_filter

        sigma = rng.uniform(*self.sigma)
        leading = data.ndim - len(self.voxel_size)
        sigmas = (0.0,) * leading + tuple(sigma / v for v in self.voxel_size)
        return gaussian_filter(data, sigma=sigmas)
