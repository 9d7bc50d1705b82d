"""One training batch, as a :class:`~dacapo_trainers.BatchTrainer` subclass hands it over.

A :class:`Batch` holds the tensors the step needs (raw, target, weight), the arrays only a
snapshot needs (gt, mask), and a :class:`BatchGeometry` that places every sample in the world.
Raw and the output (gt, target, weight, mask, prediction) each have their own voxel size, so
that a network may predict on a finer (or coarser) grid than its input. Nothing here imports
torch or numpy at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._arrays._axes import axis_name_tuple, default_axis_names

if TYPE_CHECKING:
    import torch


def _int_tuple(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _offsets(values: Sequence[Sequence[Any]]) -> tuple[tuple[int, ...], ...]:
    return tuple(_int_tuple(offset) for offset in values)


@attrs.frozen
class BatchGeometry:
    """Where the samples of a batch lie in the world (world units, e.g. nm).

    :param raw_voxel_size: voxel size of the raw crops (the network's input).
    :param output_voxel_size: voxel size of gt, target, weight, mask and the prediction; it may
        differ from ``raw_voxel_size`` (e.g. half of it for a network that upsamples x2).
    :param raw_offsets: per sample, the world offset of its raw crop's first voxel.
    :param output_offsets: per sample, the world offset of its output crop's first voxel.
    :param axis_names: names of the spatial axes (default ``z, y, x``, cut to their number).

    Offsets are those of the crops *before* augmentation: a flipped, transposed or deformed
    sample covers that box but is not in world orientation. Snapshots place sample 0 with them.
    """

    raw_voxel_size: tuple[int, ...] = attrs.field(converter=_int_tuple)
    output_voxel_size: tuple[int, ...] = attrs.field(converter=_int_tuple)
    raw_offsets: tuple[tuple[int, ...], ...] = attrs.field(converter=_offsets)
    output_offsets: tuple[tuple[int, ...], ...] = attrs.field(converter=_offsets)
    axis_names: tuple[str, ...] = attrs.field(
        converter=axis_name_tuple,
        default=attrs.Factory(lambda self: default_axis_names(self.dims), takes_self=True),
    )

    @property
    def dims(self) -> int:
        """The number of spatial axes."""
        return len(self.raw_voxel_size)

    @property
    def batch_size(self) -> int:
        """The number of samples placed."""
        return len(self.raw_offsets)

    def __attrs_post_init__(self) -> None:
        dims = self.dims
        sizes = {
            "output_voxel_size": len(self.output_voxel_size),
            "axis_names": len(self.axis_names),
            **{f"raw_offsets[{i}]": len(o) for i, o in enumerate(self.raw_offsets)},
            **{f"output_offsets[{i}]": len(o) for i, o in enumerate(self.output_offsets)},
        }
        wrong = [f"{name} has {size}" for name, size in sizes.items() if size != dims]
        if wrong:
            raise ValueError(
                f"BatchGeometry: raw_voxel_size has {dims} spatial axes but "
                f"{', '.join(wrong)}; give every size and offset one entry per spatial axis"
            )
        if len(self.output_offsets) != len(self.raw_offsets) or not self.raw_offsets:
            raise ValueError(
                f"BatchGeometry: {len(self.raw_offsets)} raw offsets and "
                f"{len(self.output_offsets)} output offsets; give one of each per sample"
            )


@attrs.define(eq=False)
class Batch:
    """A training batch: what the step needs, what a snapshot shows, and where it lies.

    :param raw: ``(B, C, *input_shape)`` float tensor, the network's input.
    :param target: ``(B, ..., *output_shape)`` tensor, the task's target.
    :param weight: the per-voxel loss weight, shaped like ``target`` (or broadcastable).
    :param geometry: voxel sizes and world offsets of the samples (:class:`BatchGeometry`).
    :param gt: ``(B, ..., *output_shape)`` ground truth (numpy or torch), or None; read only
        for snapshots, so a trainer may fill it only where
        :meth:`~dacapo_trainers.BatchTrainer.snapshot_due` says a snapshot is due.
    :param mask: ``(B, *output_shape)`` mask (numpy or torch), or None; as ``gt``.
    :param on_release: called once when the trainer is done with the batch (a shared-memory
        slot goes back to its producer); None when there is nothing to give back.
    :param pinned: ``raw``, ``target`` and ``weight`` lie in page-locked (pinned) host memory,
        e.g. a buffer registered with :func:`~dacapo_trainers.pin_host_memory` or made by
        ``Tensor.pin_memory()``: the trainer copies them to a CUDA device asynchronously,
        straight from that memory, and releases the batch once the copy has completed. False
        (the default) makes the trainer ask ``Tensor.is_pinned()`` instead.

    ``raw``, ``target`` and ``weight`` may live on the host or already on the training device;
    the trainer moves them (without a copy where they already are; from the host to CUDA on a
    side stream, overlapped with the previous step). Until :meth:`release`, every array stays
    valid and unchanged.
    """

    raw: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    geometry: BatchGeometry
    gt: Any = None
    mask: Any = None
    on_release: Callable[[], None] | None = None
    pinned: bool = False

    def release(self) -> None:
        """Give the batch's memory back to its producer (the first call; later ones do nothing)."""
        callback, self.on_release = self.on_release, None
        if callback is not None:
            callback()
