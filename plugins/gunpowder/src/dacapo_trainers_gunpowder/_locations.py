"""Where samples may be drawn: integral images of mask and gt, and a seeded location sampler.

Pure numpy, built once in the training process before the workers fork, so the integral
images are shared by every worker rather than recomputed in each.

A location is the world position of the *output crop* (the model's output box). It is drawn
uniformly among positions on the common voxel grid whose crop centre lies inside the mask's
region (inside gt's region without a mask), keeping only those where

* at least ``min_masked`` of the crop's voxels are inside the mask (and always more than 0),
* at least ``gt_min_reject`` of the crop's voxels have nonzero gt, when that is set.

Parts of the crop outside the mask's region count as masked out. Candidates are tested in
vectorized rounds with one integral-image lookup per corner, so sparse masks cost only more
rounds; :class:`NoValidLocationError` says when no candidate was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

#: Masks above this many voxels are summed in blocks before their integral image is taken.
MAX_INTEGRAL_VOXELS = 2**27


class NoValidLocationError(ValueError):
    """No sample location meets ``min_masked`` / ``gt_min_reject`` for a dataset."""


def _spatial(data: Any, dims: int) -> np.ndarray:
    array = np.asarray(data[...])
    while array.ndim > dims:  # drop channel axes: a voxel counts if any channel is nonzero
        array = array.any(axis=0)
    return array


@attrs.define(eq=False)
class BoxCounter:
    """Counts nonzero voxels of an array inside world boxes, through an integral image.

    ``begin`` and ``voxel_size`` are in world units. Arrays larger than
    :data:`MAX_INTEGRAL_VOXELS` are first summed in blocks of ``block`` voxels per axis, which
    makes counts at box borders approximate (to one block).
    """

    integral: np.ndarray
    begin: np.ndarray
    voxel_size: np.ndarray
    block: int
    shape: np.ndarray  # in voxels

    @classmethod
    def from_array(cls, data: Any, voxel_size: Sequence[int], offset: Sequence[int]) -> BoxCounter:
        dims = len(voxel_size)
        nonzero = _spatial(data, dims) != 0
        shape = np.array(nonzero.shape)
        block = 1
        while nonzero.size / block**dims > MAX_INTEGRAL_VOXELS:
            block *= 2
        counts: np.ndarray
        if block > 1:
            padded_shape = tuple(-(-s // block) * block for s in nonzero.shape)
            padded = np.zeros(padded_shape, dtype=bool)
            padded[tuple(slice(0, s) for s in nonzero.shape)] = nonzero
            reshaped = padded.reshape(tuple(v for s in padded_shape for v in (s // block, block)))
            counts = reshaped.sum(axis=tuple(range(1, 2 * dims, 2)), dtype=np.int64)
        else:
            counts = nonzero
        dtype = np.uint32 if nonzero.size < 2**32 else np.uint64
        integral = np.zeros(tuple(s + 1 for s in counts.shape), dtype=dtype)
        inner = counts.astype(dtype)
        for axis in range(dims):
            inner = np.cumsum(inner, axis=axis, dtype=dtype)
        integral[(slice(1, None),) * dims] = inner
        return cls(
            integral=integral,
            begin=np.asarray(offset, dtype=np.int64),
            voxel_size=np.asarray(voxel_size, dtype=np.int64),
            block=block,
            shape=shape,
        )

    def fractions(self, begins: np.ndarray, size: np.ndarray) -> np.ndarray:
        """Fraction of nonzero voxels in each box ``[begin, begin + size)`` (world units).

        :param begins: ``(n, dims)`` box begins.
        :param size: ``(dims,)`` box size, the same for all boxes.
        """
        unit = self.voxel_size * self.block
        upper = np.array(self.integral.shape) - 1
        lo = np.clip(np.floor((begins - self.begin) / unit).astype(np.int64), 0, upper)
        hi = np.clip(np.floor((begins + size - self.begin) / unit).astype(np.int64), 0, upper)
        dims = begins.shape[1]
        total = np.zeros(len(begins), dtype=np.float64)
        for corner in np.ndindex((2,) * dims):
            index = tuple(np.where(c, hi[:, d], lo[:, d]) for d, c in enumerate(corner))
            sign = -1.0 if (dims - sum(corner)) % 2 else 1.0
            total += sign * self.integral[index].astype(np.float64)
        volume = float(np.prod(size // self.voxel_size))
        return np.minimum(total / volume, 1.0)


@attrs.define(eq=False)
class BoxOnes:
    """A :class:`BoxCounter` for an implicit array of ones over a world region (no mask)."""

    begin: np.ndarray
    end: np.ndarray

    def fractions(self, begins: np.ndarray, size: np.ndarray) -> np.ndarray:
        overlap = np.clip(
            np.minimum(begins + size, self.end) - np.maximum(begins, self.begin), 0, None
        )
        return np.prod(overlap / size, axis=1)


@attrs.define(eq=False)
class LocationSampler:
    """Draws output-crop positions of one dataset (see the module docstring).

    :param name: the dataset's name, for error messages.
    :param region_begin: world begin of the region crop centres are drawn from (the mask's
        region, or gt's without a mask).
    :param region_end: its world end.
    :param mask: counts mask voxels (a :class:`BoxCounter` or :class:`BoxOnes`).
    :param gt: counts nonzero gt voxels, or None when ``gt_min_reject`` is unset.
    :param sample_points: ``(n, dims)`` world points crops are centred on instead, or None.
    """

    name: str
    region_begin: np.ndarray
    region_end: np.ndarray
    mask: BoxCounter | BoxOnes
    min_masked: float
    gt: BoxCounter | None = None
    gt_min_reject: float = 0.0
    sample_points: np.ndarray | None = None
    candidates_per_round: int = 512
    max_rounds: int = 400

    def draw(
        self, rng: np.random.Generator, base_begin: np.ndarray, size: np.ndarray, grid: np.ndarray
    ) -> np.ndarray:
        """A shift (world units, multiple of ``grid``) moving ``base_begin`` to a valid crop.

        :param base_begin: the output crop's begin in request space.
        :param size: the output crop's size (world units).
        :param grid: the voxel grid all arrays share (lcm of their voxel sizes).
        """
        half = size // 2
        if self.sample_points is not None and len(self.sample_points):
            point = self.sample_points[rng.integers(len(self.sample_points))]
            return np.round((point - half - base_begin) / grid).astype(np.int64) * grid
        # crop centres base_begin + half + k * grid inside [region_begin, region_end)
        k_min = np.ceil((self.region_begin - base_begin - half) / grid).astype(np.int64)
        k_max = np.ceil((self.region_end - base_begin - half) / grid).astype(np.int64) - 1
        if np.any(k_max < k_min):
            raise NoValidLocationError(
                f"dataset {self.name!r}: its mask region is smaller than one voxel grid step"
            )
        for _ in range(self.max_rounds):
            k = rng.integers(k_min, k_max + 1, size=(self.candidates_per_round, len(grid)))
            begins = base_begin + k * grid
            ok = self.mask.fractions(begins, size)
            ok = (ok >= self.min_masked) & (ok > 0)
            if self.gt is not None and self.gt_min_reject > 0:
                candidates = np.flatnonzero(ok)
                if len(candidates):
                    gt_ok = self.gt.fractions(begins[candidates], size) >= self.gt_min_reject
                    ok[candidates[~gt_ok]] = False
            hits = np.flatnonzero(ok)
            if len(hits):
                return np.asarray(k[hits[0]] * grid, dtype=np.int64)
        tried = self.max_rounds * self.candidates_per_round
        raise NoValidLocationError(
            f"dataset {self.name!r}: none of {tried} random locations has at least "
            f"min_masked={self.min_masked} of its output crop {tuple(size)} inside the mask"
            + (
                f" and gt_min_reject={self.gt_min_reject} of it nonzero in gt"
                if self.gt is not None and self.gt_min_reject > 0
                else ""
            )
            + "; lower them or use a larger mask"
        )
