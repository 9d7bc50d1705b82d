"""Checks of the opened inputs against the built model, run by ``train`` and by
``validate --inputs`` before anything is written: what no trainer can train on.

* the batch must fit in memory: a lower bound of one batch's bytes, from the model's shapes
  and float32 (input, and prediction, target and weight), against the memory available
  (``MemAvailable``; on CUDA also the device's free memory);
* raw must have at least as many spatial axes as the model's input, and as many channels;
* gt must overlap raw in world coordinates, and a mask must not be zero everywhere;
* the chunks of raw, gt and mask must be readable (every chunk of arrays up to
  :data:`CHUNK_CHECK_BYTES`, the first and last of larger ones).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._arrays._chunk_reads import describe_chunk, first_unreadable
from .._errors import ConfigIssue

_FLOAT32 = 4
#: Arrays up to this size have every chunk read before training; larger ones their first
#: and last chunks.
CHUNK_CHECK_BYTES = 512 << 20
_GIB = 1 << 30


def memory_issue(batch_size: int, model: Any, device: Any) -> ConfigIssue | None:
    """A ConfigIssue at ``$.trainer_config.batch_size`` when one batch cannot fit."""
    try:
        inputs = math.prod(int(s) for s in model.input_shape) * int(model.num_in_channels)
        outputs = math.prod(int(s) for s in model.output_shape) * int(model.num_out_channels)
    except (AttributeError, TypeError, ValueError):
        return None  # a model without the documented shapes: its trainer will say
    per_sample = _FLOAT32 * (inputs + 3 * outputs)
    needed = batch_size * per_sample
    for where, available in _available(device):
        if needed > available:
            return ConfigIssue(
                "$.trainer_config.batch_size",
                f"{batch_size} samples of {_size(per_sample)} each need at least "
                f"{_size(needed)} ({inputs} input and {outputs} output values per sample as "
                f"float32: the input, the prediction, the target and the weight), but "
                f"{where} has {_size(available)} available; lower batch_size (at most about "
                f"{max(1, available // per_sample)} samples fit)",
            )
    return None


def _available(device: Any) -> list[tuple[str, int]]:
    found = []
    host = _host_available()
    if host is not None:
        found.append(("this machine", host))
    if getattr(device, "type", None) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        found.append((f"{device}", int(free)))
    return found


def _host_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _size(count: int) -> str:
    if count >= 1 << 40:
        return f"{count / (1 << 40):,.1f} TiB"
    if count >= _GIB:
        return f"{count / _GIB:,.1f} GiB"
    return f"{count / (1 << 20):,.1f} MiB"


def data_issues(datasets: Sequence[Any], paths: Sequence[str], model: Any) -> list[ConfigIssue]:
    """What makes a dataset unusable for this model: raw with fewer spatial axes or another
    channel count than the model's input, gt that does not overlap raw, a mask that is zero
    everywhere."""
    issues = []
    input_shape = [int(s) for s in getattr(model, "input_shape", ())]
    channels_in = getattr(model, "num_in_channels", None)
    for path, dataset in zip(paths, datasets, strict=True):
        raw = getattr(dataset, "raw", None)
        if raw is None:
            continue
        shape = tuple(int(s) for s in raw.data.shape)
        spatial = len(raw.voxel_size)
        names = list(getattr(raw, "axis_names", ()))
        if input_shape and spatial < len(input_shape):
            issues.append(
                ConfigIssue(
                    path,
                    f"its raw array has {spatial} spatial axes (shape {list(shape)}), but the "
                    f"model takes {len(input_shape)}D input (input_shape {input_shape}); give "
                    "data of the model's dimensionality, or an architecture of the data's",
                )
            )
            continue
        leading = shape[: len(shape) - spatial]
        leading_names = names[: len(leading)] if len(names) == len(shape) else [""] * len(leading)
        channels = math.prod(
            size for size, name in zip(leading, leading_names, strict=True) if name != "b^"
        )
        if isinstance(channels_in, int) and channels != channels_in:
            issues.append(
                ConfigIssue(
                    path,
                    f"its raw array has {channels} channel(s) (shape {list(shape)}, axes "
                    f"{names}), but the model takes {channels_in} (num_in_channels); give "
                    "raw with that many channels, or an architecture with "
                    f"num_in_channels {channels}",
                )
            )
        unreadable = [
            f"its {role} array {problem}"
            for role in ("raw", "gt", "mask")
            if getattr(dataset, role, None) is not None
            and (problem := _unreadable_chunk(getattr(dataset, role).data)) is not None
        ]
        if unreadable:
            issues += [ConfigIssue(path, problem) for problem in unreadable]
            continue
        mask = getattr(dataset, "mask", None)
        if mask is not None and not _any_nonzero(mask.data):
            issues.append(
                ConfigIssue(
                    path,
                    f"its mask (shape {list(mask.data.shape)}) is zero everywhere: no voxel "
                    "would be trained on (the loss would be 0). Check the mask array, or "
                    "leave the mask out to train on every voxel",
                )
            )
        gt = getattr(dataset, "gt", None)
        if gt is not None and not _overlap(raw, gt):
            issues.append(
                ConfigIssue(
                    path,
                    f"its gt ({_extent(gt)}) does not overlap its raw ({_extent(raw)}) in world "
                    "coordinates: no sample has both. Check the arrays' offset and voxel_size "
                    "attributes",
                )
            )
    return issues


def _unreadable_chunk(data: Any, whole_limit: int = CHUNK_CHECK_BYTES) -> str | None:
    """Why a chunk of a zarr array cannot be read (corrupt, truncated), or None.

    Every chunk is read where the array holds at most ``whole_limit`` bytes; of a larger one
    its first and last chunks (reading all of it would take as long as a pass over the data;
    a chunk that fails later, during training, is named by :class:`ChunkReadError`).
    """
    import numpy as np

    source = data
    while getattr(source, "chunks", None) is None and getattr(source, "source", None) is not None:
        source = source.source  # a lazily mapped array (intensity scaling): check what it reads
    chunks = getattr(source, "chunks", None)
    shape = tuple(int(s) for s in getattr(source, "shape", ()))
    if not isinstance(chunks, tuple) or len(chunks) != len(shape) or not shape:
        return None
    chunks = tuple(max(1, int(c)) for c in chunks)
    every = math.prod(shape) * np.dtype(source.dtype).itemsize <= whole_limit
    counts = [-(-size // chunk) for size, chunk in zip(shape, chunks, strict=True)]
    indices = (
        itertools.product(*(range(c) for c in counts))
        if every
        else [tuple(0 for _ in counts), tuple(max(0, c - 1) for c in counts)]
    )
    found = first_unreadable(source, indices, chunks)
    if found is None:
        return None
    where = getattr(source, "location", "")
    return f"{where + ' ' if where else ''}has {describe_chunk(*found)}"


def _any_nonzero(data: Any, slab_bytes: int = 64 << 20) -> bool:
    """Whether an array (numpy or zarr) has a nonzero value; read in slabs along its first
    axis, stopping at the first slab that has one (masks are rarely zero at the start)."""
    import numpy as np

    shape = tuple(int(s) for s in data.shape)
    if not shape:
        return bool(np.asarray(data[()]))
    per_row = max(1, math.prod(shape[1:]) * np.dtype(data.dtype).itemsize)
    step = max(1, slab_bytes // per_row)
    return any(
        bool(np.any(np.asarray(data[start : start + step]))) for start in range(0, shape[0], step)
    )


def _world(array: Any) -> list[tuple[float, float]]:
    spatial = len(array.voxel_size)
    shape = array.data.shape[-spatial:]
    return [
        (float(o), float(o) + int(s) * float(v))
        for o, s, v in zip(array.offset, shape, array.voxel_size, strict=True)
    ]


def _overlap(a: Any, b: Any) -> bool:
    try:
        first, second = _world(a), _world(b)
    except (TypeError, ValueError):
        return True  # geometry problems are reported elsewhere
    if len(first) != len(second):
        return True
    return all(
        low < high
        for (a0, a1), (b0, b1) in zip(first, second, strict=True)
        for low, high in [(max(a0, b0), min(a1, b1))]
    )


def _extent(array: Any) -> str:
    try:
        return "from " + " x ".join(f"{a:g}..{b:g}" for a, b in _world(array))
    except (TypeError, ValueError):
        return "geometry unknown"
