"""ElasticAugment: elastic deformation and rotation, as DaCapo's ``elastic_augment_fuse``."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import gunpowder as gp
import numpy as np
from scipy import ndimage

from ._seeding import node_rng


class ElasticAugment(gp.BatchFilter):
    """Deforms and rotates every spatial array of a request with one shared transformation.

    The transformation maps each requested voxel to the world position it is read from:
    ``R (p - c) + c + jitter(p)``, where ``R`` is a rotation about the centre ``c`` of the
    request and ``jitter`` is a smooth random displacement (normal control-point offsets with
    standard deviation ``control_point_displacement_sigma`` in world units, every
    ``control_point_spacing`` voxels, cubic-interpolated). ``R`` is uniform on the 3D sphere
    with ``uniform_3d_rotation``, else an angle from ``rotation_interval`` in the plane of the
    last two axes. The upstream request grows to the transformed region; the arrays of
    ``linear_keys`` are resampled linearly, the others by nearest neighbour (each deformed
    voxel keeps a value of its source), and voxels from outside the data read as 0. Applied
    with probability ``p``.

    :param subsample: compute the transformation on a grid this many times coarser and
        interpolate it linearly (faster, smoother).
    :param linear_keys: the arrays to resample linearly; None: those whose spec is
        ``interpolatable`` (gunpowder's rule).
    """

    def __init__(
        self,
        control_point_spacing: Sequence[int],
        control_point_displacement_sigma: Sequence[float],
        rotation_interval: Sequence[float],
        subsample: int = 1,
        uniform_3d_rotation: bool = False,
        p: float = 1.0,
        linear_keys: Collection[gp.ArrayKey] | None = None,
    ) -> None:
        self.control_point_spacing = np.asarray(control_point_spacing, dtype=np.float64)
        self.sigma = np.asarray(control_point_displacement_sigma, dtype=np.float64)
        self.rotation_start = float(rotation_interval[0])
        self.rotation_amount = float(rotation_interval[1]) - float(rotation_interval[0])
        self.subsample = int(subsample)
        self.uniform_3d_rotation = uniform_3d_rotation
        self.p = p
        self.linear_keys = None if linear_keys is None else frozenset(linear_keys)
        self.voxel_size: gp.Coordinate | None = None
        # Set by prepare() for the following process() of the same request.
        self._sample_positions: dict[gp.ArrayKey, np.ndarray] = {}

    def set_seeds(self, request: gp.BatchRequest) -> None:
        """Randomness comes from :func:`node_rng`; leave the global generators alone."""

    def setup(self) -> None:
        voxel_sizes = [
            spec.voxel_size
            for spec in self.spec.array_specs.values()
            if not spec.nonspatial and spec.voxel_size is not None
        ]
        if not voxel_sizes:
            raise ValueError("ElasticAugment: upstream provides no spatial arrays")
        self.voxel_size = gp.Coordinate(min(axis) for axis in zip(*voxel_sizes, strict=True))
        for key, spec in self.spec.array_specs.items():
            if not spec.nonspatial:
                self.updates(key, spec)
        dims = self.voxel_size.dims
        for name, value in (
            ("control_point_spacing", self.control_point_spacing),
            ("control_point_displacement_sigma", self.sigma),
        ):
            if len(value) != dims:
                raise ValueError(f"ElasticAugment: {name} needs {dims} entries, got {len(value)}")

    def skip_node(self, request: gp.BatchRequest) -> bool:
        return bool(node_rng(request, "ElasticAugment.p").random() >= self.p)

    def prepare(self, request: gp.BatchRequest) -> gp.BatchRequest:
        assert self.voxel_size is not None
        rng = node_rng(request, "ElasticAugment")
        master_voxel = np.asarray(self.voxel_size, dtype=np.float64)
        master = request.get_total_roi().snap_to_grid(self.voxel_size, mode="grow")
        master_begin = np.asarray(master.offset, dtype=np.float64)
        master_shape = tuple(int(s) for s in master.shape / self.voxel_size)
        # world positions (master-relative) on a grid coarser by `subsample`; `coarse_step`
        # master voxels apart
        coarse, coarse_step = self._transformation(master_shape, master_voxel, rng)

        self._sample_positions = {}
        deps = gp.BatchRequest()
        sampled: dict[tuple[Any, ...], np.ndarray] = {}
        for key, spec in request.array_specs.items():
            if spec.nonspatial or spec.roi is None:
                continue
            voxel_size = np.asarray(self.spec[key].voxel_size, dtype=np.float64)
            target = spec.roi
            dims = len(voxel_size)
            target_shape = tuple(int(s) for s in target.shape / self.spec[key].voxel_size)
            cache_key = (tuple(target.offset), target_shape, tuple(voxel_size))
            if cache_key not in sampled:  # gt and mask usually share ROI and voxel size
                start = (np.asarray(target.offset) - master_begin) / master_voxel
                step = voxel_size / master_voxel
                axes = [
                    (start[d] + step[d] * np.arange(target_shape[d])) / coarse_step[d]
                    for d in range(dims)
                ]
                sampled[cache_key] = _interpolate_separable(coarse, axes)
            relative = sampled[cache_key]  # world positions minus master_begin, float32
            flat = relative.reshape(dims, -1)
            low = np.floor((flat.min(axis=1) + master_begin) / voxel_size)
            high = np.floor((flat.max(axis=1) + master_begin) / voxel_size) + 2
            source_begin = low * voxel_size
            source = gp.Roi(
                gp.Coordinate(int(v) for v in source_begin),
                gp.Coordinate(int(v) for v in (high - low) * voxel_size),
            )
            shape = (-1,) + (1,) * dims
            positions = relative - (source_begin - master_begin).astype(np.float32).reshape(shape)
            positions /= voxel_size.astype(np.float32).reshape(shape)
            self._sample_positions[key] = positions
            deps[key] = gp.ArraySpec(roi=source)
        return deps

    def process(self, batch: gp.Batch, request: gp.BatchRequest) -> gp.Batch:
        out = gp.Batch()
        for key, positions in self._sample_positions.items():
            array = batch.arrays[key]
            dims = positions.shape[0]
            data = array.data
            channels = data.shape[: data.ndim - dims]
            flat = data.reshape((-1, *data.shape[-dims:]))
            linear = (
                array.spec.interpolatable if self.linear_keys is None else key in self.linear_keys
            )
            order = 1 if linear else 0
            result = np.empty((flat.shape[0], *positions.shape[1:]), dtype=data.dtype)
            for c in range(flat.shape[0]):
                ndimage.map_coordinates(
                    flat[c], positions, output=result[c], order=order, mode="constant", cval=0
                )
            spec = array.spec.copy()
            spec.roi = request[key].roi
            out[key] = gp.Array(result.reshape(channels + positions.shape[1:]), spec)
        return out

    # -- the transformation ---------------------------------------------------------------

    def _transformation(
        self, shape: tuple[int, ...], voxel_size: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """World positions (master-relative) to read from, on a grid ``subsample`` coarser.

        Returns the positions ``(dims, *coarse)`` and the coarse grid step in master voxels.
        Linear interpolation of this grid is exact for the rotation (affine) and smooth for
        the jitter, as DaCapo's upscaled transformation.
        """
        dims = len(shape)
        coarse = tuple(max(2, s // self.subsample) if s > 1 else 1 for s in shape)
        step = np.array(
            [(s - 1) / (c - 1) if c > 1 else 1.0 for s, c in zip(shape, coarse, strict=True)]
        )
        axes = [
            np.arange(c, dtype=np.float64) * step[d] * voxel_size[d] for d, c in enumerate(coarse)
        ]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"))  # (dims, *coarse), world
        center = (np.asarray(shape, dtype=np.float64) - 1) * voxel_size / 2
        rotation = self._rotation(dims, rng)
        offsets = (grid - center.reshape((-1,) + (1,) * dims)).reshape(dims, -1)
        positions = (rotation @ offsets).reshape(grid.shape) + center.reshape((-1,) + (1,) * dims)
        if np.any(self.sigma > 0):
            positions += self._jitter(shape, coarse, rng)
        return positions, step

    def _rotation(self, dims: int, rng: np.random.Generator) -> np.ndarray:
        matrix = np.eye(dims)
        if self.uniform_3d_rotation and dims >= 3:
            from scipy.spatial.transform import Rotation

            matrix[-3:, -3:] = Rotation.random(random_state=rng).as_matrix()
            return matrix
        angle = self.rotation_start + rng.random() * self.rotation_amount
        if dims >= 2 and angle != 0:
            cos, sin = math.cos(angle), math.sin(angle)
            matrix[-2:, -2:] = [[cos, sin], [-sin, cos]]
        return matrix

    def _jitter(
        self, shape: tuple[int, ...], coarse: tuple[int, ...], rng: np.random.Generator
    ) -> np.ndarray:
        dims = len(shape)
        points = tuple(
            max(1, round(s / sp)) for s, sp in zip(shape, self.control_point_spacing, strict=True)
        )
        jitter = np.stack([rng.normal(0.0, self.sigma[d], size=points) for d in range(dims)])
        zoom = [c / p for c, p in zip(coarse, points, strict=True)]
        return np.stack(
            [
                _fit(ndimage.zoom(jitter[d], zoom, order=3, mode="nearest"), coarse)
                for d in range(dims)
            ]
        )


def _interpolation_matrix(coordinates: np.ndarray, size: int) -> np.ndarray:
    """``(len(coordinates), size)`` weights of linear interpolation, clamped at the edges."""
    coordinates = np.clip(coordinates, 0, size - 1)
    low = np.minimum(np.floor(coordinates).astype(np.int64), max(size - 2, 0))
    fraction = coordinates - low
    matrix = np.zeros((len(coordinates), size))
    rows = np.arange(len(coordinates))
    matrix[rows, low] = 1.0 - fraction
    if size > 1:
        matrix[rows, low + 1] += fraction
    return matrix


def _interpolate_separable(grid: np.ndarray, axes: Sequence[np.ndarray]) -> np.ndarray:
    """``grid`` (``(channels, *shape)``) linearly interpolated at the outer product of ``axes``.

    ``axes[d]`` are coordinates along axis ``d`` in grid index units. Linear interpolation is
    separable, so this is one small matrix product per axis: far cheaper than interpolating
    every output voxel in all dimensions at once.
    """
    result = np.ascontiguousarray(grid, dtype=np.float32)
    channels = result.shape[0]
    for d in reversed(range(len(axes))):
        matrix = _interpolation_matrix(axes[d], grid.shape[d + 1]).astype(np.float32)
        shape = result.shape
        before = channels * int(np.prod(shape[1 : d + 1]))
        after = int(np.prod(shape[d + 2 :]))
        # (m, c) @ (before, c, after) -> (before, m, after): contiguous, no transposes
        result = np.matmul(matrix, result.reshape(before, shape[d + 1], after)).reshape(
            (*shape[: d + 1], len(axes[d]), *shape[d + 2 :])
        )
    return result


def _fit(array: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` cropped or edge-padded to ``shape`` (zoom may be off by one voxel)."""
    array = np.asarray(array)
    spatial = array.shape[array.ndim - len(shape) :]
    if spatial == shape:
        return array
    lead = array.ndim - len(shape)
    array = array[(slice(None),) * lead + tuple(slice(0, s) for s in shape)]
    pad = [(0, 0)] * lead + [(0, s - a) for s, a in zip(shape, array.shape[lead:], strict=True)]
    return np.pad(array, pad, mode="edge")
