"""Reads of the arrays the core opens name what failed: the dataset, the array, the chunk."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from dacapo_trainers import ChunkReadError, TrainingError, open_array, write_array
from dacapo_trainers._arrays._chunk_reads import CheckedReads, label_dataset_reads, label_reads
from dacapo_trainers.reference import ZarrDatasetConfig


def _damaged(tmp_path: Path, chunk: tuple[int, int, int]) -> tuple[Path, np.ndarray]:
    """A 3x2x3-chunk array whose chunk ``chunk`` is cut short; the data written."""
    data = np.arange(30 * 20 * 30, dtype=np.float32).reshape(30, 20, 30)
    container = write_array(tmp_path / "d.zarr", "raw", data, voxel_size=[1, 1, 1], chunks=[10] * 3)
    array = container / "raw"
    files = [p for p in array.rglob("*") if p.is_file() and p.name not in (".zarray", ".zattrs")]
    names = {".".join(str(i) for i in chunk), "/".join(["c", *map(str, chunk)])}
    [damaged] = [p for p in files if p.relative_to(array).as_posix() in names]
    damaged.write_bytes(damaged.read_bytes()[:9])
    return container, data


def test_a_damaged_chunk_is_named_with_its_voxels_and_the_cause_chained(tmp_path: Path) -> None:
    container, data = _damaged(tmp_path, (1, 0, 2))
    array = open_array(container, "raw")
    np.testing.assert_array_equal(array.data[:10], data[:10])  # the other chunks read
    with pytest.raises(ChunkReadError) as caught:
        array.data[5:25, 0:5, :]  # touches chunks 0.0.x and 1.0.x
    message = str(caught.value)
    assert message.startswith(f"{container / 'raw'} has a chunk that cannot be read: chunk 1.0.2 ")
    assert "(voxels 10:20, 0:10, 20:30): " in message
    assert message.endswith("Restore the container from a copy, or write that chunk again")
    assert caught.value.__cause__ is not None and isinstance(caught.value, TrainingError)
    with pytest.raises(ChunkReadError):
        np.asarray(array.data)


def test_a_label_names_the_dataset_and_survives_pickling(tmp_path: Path) -> None:
    container, _ = _damaged(tmp_path, (0, 1, 0))
    array = open_array(container, "raw")
    label_reads(array.data, "dataset 'cells', its raw array")
    copy = pickle.loads(pickle.dumps(array.data))  # what a spawned worker gets
    for data in (array.data, copy):
        with pytest.raises(ChunkReadError, match=r"^dataset 'cells', its raw array \("):
            data[0, 15]


def test_everything_but_a_failed_read_is_the_zarr_arrays(tmp_path: Path) -> None:
    data = np.ones((4, 6), dtype=np.uint8)
    array = open_array(write_array(tmp_path / "o.zarr", "a", data, voxel_size=[1, 1]), "a")
    assert array.data.shape == (4, 6) and array.data.dtype == np.uint8 and len(array.data) == 4
    assert tuple(array.data.chunks) == (4, 6)
    with pytest.raises(IndexError):  # the caller's mistake, not the data's
        array.data[9]


def test_the_arrays_of_a_reference_dataset_are_labelled_through_its_intensity_mapping(
    tmp_path: Path,
) -> None:
    """The reference dataset maps raw's intensities lazily: the label reaches the zarr reads
    under the mapping, and a read through the mapping names the dataset."""
    container, _ = _damaged(tmp_path, (2, 1, 0))
    write_array(container, "gt", np.ones((30, 20, 30), np.uint8), voxel_size=[1, 1, 1])
    config = ZarrDatasetConfig(
        name="cells", container=str(container), intensity_range=[0, 255], normalized_range=[0, 1]
    )
    dataset = config.build()
    label_dataset_reads(dataset, "validation dataset")
    with pytest.raises(ChunkReadError) as caught:
        dataset.raw.data[20:30, 10:20, 0:10]
    assert str(caught.value).startswith("validation dataset 'cells', its raw array (")
    assert "chunk 2.1.0 (voxels 20:30, 10:20, 0:10)" in str(caught.value)


class _TooLarge:
    """Array-like whose reads run out of memory, as a request too large for the host would."""

    shape = (4, 4)
    chunks = (2, 2)

    def __getitem__(self, key: object) -> np.ndarray:
        raise MemoryError("Unable to allocate 24.0 GiB")


def test_running_out_of_memory_is_not_called_a_damaged_chunk() -> None:
    with pytest.raises(MemoryError, match="Unable to allocate"):
        CheckedReads(_TooLarge(), "/data/big.zarr/raw")[...]
