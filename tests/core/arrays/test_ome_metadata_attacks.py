"""OME-NGFF metadata of any shape: an array opens, or the error is about the metadata.

hypothesis replaces one value of a valid v0.4 multiscales record (at any depth) with garbage:
a number where a list belongs (``coordinateTransformations: 5``), a string, null, a mapping.
Opening must end in the array or in a ``ValueError`` naming the OME-NGFF metadata, never in
a ``TypeError`` from deep inside the reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dacapo_trainers import open_array

_GARBAGE = st.one_of(
    st.integers(-5, 5),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.just({}),
    st.just([5]),
    st.just([{"type": "scale"}]),
)


def _record() -> dict[str, Any]:
    return {
        "version": "0.4",
        "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [
            {
                "path": "s0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [8.0, 4.0, 4.0]},
                    {"type": "translation", "translation": [0.0, 4.0, 4.0]},
                ],
            }
        ],
        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0]}],
    }


def _places(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The key paths of every value inside ``value``."""
    found = [at] if at else []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return found
    for key, item in items:
        found += _places(item, (*at, key))
    return found


def _write(folder: Path, record: dict[str, Any]) -> Path:
    container = folder / "img.zarr"
    container.mkdir()
    (container / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (container / ".zattrs").write_text(json.dumps({"multiscales": [record]}))
    array = zarr.open_array(str(container / "s0"), mode="w", shape=(4, 4, 4), dtype="uint8")
    array[...] = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)
    return container


def test_the_reported_integer_transformations_are_named_as_metadata(tmp_path: Path) -> None:
    record = _record()
    record["datasets"][0]["coordinateTransformations"] = 5
    with pytest.raises(ValueError, match="OME-NGFF multiscales metadata has coordinateTransforma"):
        open_array(_write(tmp_path, record), "")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(choice=st.data(), garbage=_GARBAGE)
def test_garbage_anywhere_in_the_metadata_is_named_never_a_type_error(
    choice: st.DataObject, garbage: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    record = _record()
    place = choice.draw(st.sampled_from(_places(record)))
    parent = record
    for key in place[:-1]:
        parent = parent[key]
    parent[place[-1]] = garbage
    container = _write(tmp_path_factory.mktemp("ome"), record)
    try:
        array = open_array(container, "")
    except ValueError as error:
        assert "metadata" in str(error) and "\n" not in str(error), error
    else:
        assert np.asarray(array.data[...]).shape == (4, 4, 4)
