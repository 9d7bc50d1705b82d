"""Where samples may be drawn: DaCapo 0.3.5's rules on an exact, seeded location sampler.

Pure numpy, built in the training process before the workers fork, so what it precomputes
is shared by every worker rather than recomputed in each.

A location is a *shift* of the whole request (world units, a multiple of the request's voxel
grid). DaCapo 0.3.5's trainer accepts a shift when

* its *centre box* holds a masked voxel: the box is one output voxel at the centre of the
  request, grown to the output voxel grid (so 1 or 2 voxels per axis); it must lie inside the
  mask's region (gt's without a mask) and some mask voxel in it must be nonzero. DaCapo does
  this with ``CopyMask`` to a one-voxel placeholder and ``gunpowder.Reject(placeholder,
  1e-6)``; its ``min_masked`` is stored but never used;
* with ``gt_min_reject`` set, the mean gt value over the output crop (zero outside gt, all
  channels) is above ``gt_min_reject`` (``gunpowder.Reject(gt, gt_min_reject)``, strict),

and draws uniformly among accepted shifts (``RandomLocation`` then rejection loops). This
plugin adds two rules, both off by default: ``min_masked_fraction`` (at least that fraction of
the output crop inside the mask) and ``min_gt_fraction`` (at least that fraction of it with
nonzero gt); parts of the crop outside an array's region count as zero.

The centre rule is met exactly and without rejection: the shifts whose centre box holds a mask
voxel are found once from the mask, counted per block, and a draw picks a block by its count
and then one of its valid shifts. The other rules are tested on candidates drawn that way, in
vectorized rounds with integral images; :class:`NoValidLocationError` says when no candidate
met them within a bounded number of rounds (DaCapo would loop forever).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from ._box_counter import BoxCounter, block_sums

#: Edge (in shift-grid steps) of the blocks valid centre shifts are counted in.
CENTRE_BLOCK = 16


class NoValidLocationError(ValueError):
    """No sample location meets the location rules for a dataset."""


def _sliding_any(array: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """``out[j] = any(array[j : j + box])`` for every ``j`` where the window fits."""
    out = array
    for axis, width in enumerate(box):
        length = out.shape[axis] - width + 1
        if length <= 0:
            return np.zeros(tuple(0 for _ in box), dtype=bool)
        window = tuple(slice(0, length) if a == axis else slice(None) for a in range(out.ndim))
        result = out[window].copy()
        for step in range(1, width):
            shifted = tuple(
                slice(step, step + length) if a == axis else slice(None) for a in range(out.ndim)
            )
            result |= out[shifted]
        out = result
    return out


@attrs.define(eq=False)
class ValidShifts:
    """Uniform draws among the ``True`` entries of a boolean array of shift-grid positions.

    Entries are counted per block of :data:`CENTRE_BLOCK` positions per axis; a draw picks a
    block by its count and then one of its entries, so every valid position is equally likely
    and nothing is rejected.
    """

    valid: np.ndarray
    counts: np.ndarray = attrs.field(init=False)
    cumulative: np.ndarray = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.counts = block_sums(self.valid, CENTRE_BLOCK, np.int64).ravel()
        self.cumulative = np.cumsum(self.counts)

    @property
    def total(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``(count, dims)`` indices into :attr:`valid`, uniformly among the valid ones."""
        picks = rng.integers(self.total, size=count)
        blocks = np.searchsorted(self.cumulative, picks, side="right")
        within = picks - (self.cumulative[blocks] - self.counts[blocks])
        grid_shape = tuple(-(-s // CENTRE_BLOCK) for s in self.valid.shape)
        out = np.empty((count, self.valid.ndim), dtype=np.int64)
        for row, (block, rank) in enumerate(zip(blocks, within, strict=True)):
            corner = np.array(np.unravel_index(block, grid_shape)) * CENTRE_BLOCK
            window = tuple(slice(c, c + CENTRE_BLOCK) for c in corner)
            local = np.flatnonzero(self.valid[window])[rank]
            out[row] = corner + np.unravel_index(local, self.valid[window].shape)
        return out


@attrs.define(eq=False)
class AllShifts:
    """Uniform draws of indices in the box ``[low, high]`` (inclusive): every position valid,
    as for a dataset without a mask."""

    low: np.ndarray
    high: np.ndarray

    @property
    def total(self) -> int:
        return int(np.prod(np.maximum(self.high - self.low + 1, 0)))

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.integers(self.low, self.high + 1, size=(count, len(self.low)))


@attrs.define(eq=False)
class LocationSampler:
    """Draws request shifts of one dataset (see the module docstring).

    :param name: the dataset's name, for error messages.
    :param voxel_size: the output voxel size: the grid of the centre box, the mask and gt.
    :param region_begin: world begin of the mask's region (gt's without a mask).
    :param region_end: its world end.
    :param mask: the mask's spatial ``nonzero`` array on ``region_begin``, or None for no
        mask (every voxel of the region masked in).
    :param gt_mean: the mean of gt values, when ``gt_min_reject`` is set.
    :param gt_min_reject: DaCapo's threshold: the mean gt over the output crop must exceed it.
    :param mask_fraction: counts mask voxels, when ``min_masked_fraction`` is set.
    :param min_masked_fraction: the smallest fraction of the output crop inside the mask.
    :param gt_fraction: counts nonzero gt voxels, when ``min_gt_fraction`` is set.
    :param min_gt_fraction: the smallest fraction of the output crop with nonzero gt.
    :param sample_points: ``(n, dims)`` world points the centre box is placed on instead of
        drawing, or None.
    :param centre_all_masked: every voxel of the centre box must be masked, not just one
        (DaCapo main's ``integral_mask`` and ``reject`` strategies).
    """

    name: str
    voxel_size: np.ndarray
    region_begin: np.ndarray
    region_end: np.ndarray
    mask: np.ndarray | None = None
    gt_mean: BoxCounter | None = None
    gt_min_reject: float | None = None
    mask_fraction: BoxCounter | None = None
    min_masked_fraction: float | None = None
    gt_fraction: BoxCounter | None = None
    min_gt_fraction: float | None = None
    sample_points: np.ndarray | None = None
    centre_all_masked: bool = False
    candidates_per_round: int = 64
    max_rounds: int = 400
    # valid centre shifts per centre-box phase and size; valid sample points per centre box
    _cache: dict[tuple[Any, ...], Any] = attrs.field(factory=dict, init=False)

    @property
    def has_crop_rules(self) -> bool:
        """Whether a drawn shift must still pass a rule on the whole output crop."""
        return (
            self.gt_min_reject is not None
            or bool(self.min_masked_fraction)
            or bool(self.min_gt_fraction)
        )

    def centre_box(self, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The centre box (world begin and size) of a request whose total ROI centre is
        ``center``: one output voxel centred there, grown to the output grid (gunpowder's
        ``Roi.snap_to_grid(voxel_size, mode="grow")`` of DaCapo's placeholder request)."""
        voxel = self.voxel_size
        begin = np.asarray(center, dtype=np.int64) - voxel // 2
        lo = np.floor_divide(begin, voxel) * voxel
        hi = -np.floor_divide(-(begin + voxel), voxel) * voxel
        return lo, hi - lo

    def draw(
        self,
        rng: np.random.Generator,
        box_begin: np.ndarray,
        box_size: np.ndarray,
        grid: np.ndarray,
        crop_begin: np.ndarray,
        crop_size: np.ndarray,
    ) -> np.ndarray:
        """A shift (world units, multiple of ``grid``) meeting every rule.

        :param box_begin: the centre box's begin in request space (see :meth:`centre_box`).
        :param box_size: its size (world units).
        :param grid: the voxel grid all arrays of the request share (lcm of their voxel sizes).
        :param crop_begin: the output crop's begin in request space.
        :param crop_size: the output crop's size (world units).
        """
        if self.sample_points is not None:
            candidates = self._point_shifts(box_begin, box_size, grid)

            def propose(count: int) -> np.ndarray:
                return candidates[rng.integers(len(candidates), size=count)]

        else:
            shifts, first = self._centre_shifts(box_begin, box_size, grid)

            def propose(count: int) -> np.ndarray:
                return (shifts.draw(rng, count) + first) * grid

        if not self.has_crop_rules:
            return np.asarray(propose(1)[0], dtype=np.int64)
        for _ in range(self.max_rounds):
            proposed = propose(self.candidates_per_round)
            ok = self._crop_rules_met(crop_begin + proposed, crop_size)
            hits = np.flatnonzero(ok)
            if len(hits):
                return np.asarray(proposed[hits[0]], dtype=np.int64)
        tried = self.max_rounds * self.candidates_per_round
        raise NoValidLocationError(
            f"dataset {self.name!r}: none of {tried} random locations with a masked centre "
            f"meets {self._crop_rules_text()} over its output crop {tuple(crop_size)}; "
            "lower these thresholds, or check that the mask and gt overlap"
        )

    # -- internals ---------------------------------------------------------------------------

    def _crop_rules_met(self, begins: np.ndarray, size: np.ndarray) -> np.ndarray:
        ok = np.ones(len(begins), dtype=bool)
        if self.gt_min_reject is not None and self.gt_mean is not None:
            ok &= self.gt_mean.means(begins, size) > self.gt_min_reject
        if self.min_masked_fraction and self.mask_fraction is not None:
            ok &= self.mask_fraction.means(begins, size) >= self.min_masked_fraction
        if self.min_gt_fraction and self.gt_fraction is not None:
            ok &= self.gt_fraction.means(begins, size) >= self.min_gt_fraction
        return ok

    def _crop_rules_text(self) -> str:
        rules = []
        if self.gt_min_reject is not None:
            rules.append(f"a mean gt value above gt_min_reject={self.gt_min_reject}")
        if self.min_masked_fraction:
            rules.append(f"min_masked_fraction={self.min_masked_fraction} inside the mask")
        if self.min_gt_fraction:
            rules.append(f"min_gt_fraction={self.min_gt_fraction} of nonzero gt")
        return " and ".join(rules)

    def _box_in_voxels(
        self, box_begin: np.ndarray, box_size: np.ndarray, grid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The centre box at shift 0 in mask voxels (begin, size) and the grid in voxels."""
        voxel = self.voxel_size
        begin = np.floor_divide(box_begin - self.region_begin, voxel)
        return begin, np.maximum(box_size // voxel, 1), np.maximum(grid // voxel, 1)

    def _centre_shifts(
        self, box_begin: np.ndarray, box_size: np.ndarray, grid: np.ndarray
    ) -> tuple[ValidShifts | AllShifts, np.ndarray]:
        """The valid centre shifts, as draws of grid indices minus the returned offset.

        The centre box at grid shift ``k`` starts at mask voxel ``q0 + k * step``. Which
        starts are valid depends only on ``q0 % step`` and the box, so requests whose
        centre moves (augments grow them unevenly) share one precomputed set.
        """
        q0, box, step = self._box_in_voxels(box_begin, box_size, grid)
        first = -np.floor_divide(q0, step)
        region = (self.region_end - self.region_begin) // self.voxel_size
        if self.mask is None:
            # box start q0 + k * step in [0, region - box]
            shifts: ValidShifts | AllShifts = AllShifts(
                np.zeros_like(q0), np.floor_divide(region - box - q0, step) - first
            )
        else:
            phase = q0 % step
            key = (tuple(phase), tuple(box), tuple(step))
            if key not in self._cache:
                window = tuple(int(b) for b in box)
                if self.centre_all_masked:  # no unmasked voxel in the box
                    centres = ~_sliding_any(~self.mask.astype(bool), window)
                else:
                    centres = _sliding_any(self.mask, window)
                slices = tuple(
                    slice(int(p), None, int(s)) for p, s in zip(phase, step, strict=True)
                )
                self._cache[key] = ValidShifts(np.ascontiguousarray(centres[slices]))
            shifts = self._cache[key]
        if shifts.total == 0:
            raise NoValidLocationError(
                f"dataset {self.name!r}: no location has a masked output centre (the "
                f"centre voxel must be nonzero in the mask, as in DaCapo); its mask has "
                f"{0 if self.mask is None else int(self.mask.sum())} nonzero voxels in a "
                f"region of {tuple(int(r) for r in region)} voxels"
            )
        return shifts, first

    def _point_shifts(
        self, box_begin: np.ndarray, box_size: np.ndarray, grid: np.ndarray
    ) -> np.ndarray:
        """Shifts placing the centre box on each sample point whose centre box is masked."""
        assert self.sample_points is not None
        key = ("points", tuple(box_begin), tuple(box_size), tuple(grid))
        if key not in self._cache:
            shifts = np.floor_divide(self.sample_points - box_begin, grid).astype(np.int64) * grid
            q0, box, _ = self._box_in_voxels(box_begin, box_size, grid)
            starts = q0 + shifts // self.voxel_size
            region = (self.region_end - self.region_begin) // self.voxel_size
            inside = np.all((starts >= 0) & (starts + box <= region), axis=1)
            keep = inside.copy()
            if self.mask is not None:
                for row in np.flatnonzero(inside):
                    window = tuple(
                        slice(int(s), int(s + b)) for s, b in zip(starts[row], box, strict=True)
                    )
                    keep[row] = bool(self.mask[window].any())
            if not keep.any():
                raise NoValidLocationError(
                    f"dataset {self.name!r}: none of its {len(shifts)} sample points has a "
                    "masked centre (the mask must be nonzero at the point, as in DaCapo, "
                    "which would wait forever for one)"
                )
            self._cache[key] = shifts[keep]
        result: np.ndarray = self._cache[key]
        return result
