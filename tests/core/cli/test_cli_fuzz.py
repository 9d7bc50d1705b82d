"""hypothesis: whatever a user feeds the command, it ends with one paragraph, never a traceback.

Attacks: malformed configs; files nested deeper than Python's stack, with mapping keys that
are not strings, with YAML alias bombs in typed list fields, with numbers of any size; zarr
containers that are missing, of the wrong kind, with garbage geometry attributes or corrupt
chunks. ``validate`` (with ``--inputs`` for data) and ``train`` run in this process.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_helpers import run_data

from dacapo_trainers._cli import main
from dacapo_trainers._plugins._registry import default_registry


@pytest.fixture(scope="module")
def tensor_on_path(tensor_site: Path) -> Iterator[None]:
    """The tiny real trainer plugin (dt-tensor) importable and discoverable in this process."""
    sys.path.insert(0, str(tensor_site))
    importlib.invalidate_caches()
    default_registry.cache_clear()  # the process-wide registry is made once: make it again
    yield
    sys.path.remove(str(tensor_site))
    importlib.invalidate_caches()
    default_registry.cache_clear()


VALID: dict[str, object] = {
    "__type__": "ZarrDatasetConfig",
    "name": "demo",
    "container": "demo.zarr",
    "raw": "raw",
    "gt": "gt",
    "weight": 1.0,
}
FIELDS = [key for key in VALID if key != "__type__"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def malformed(draw: st.DrawFn) -> object:
    """A config that is certainly invalid: one of several kinds of damage, maybe more."""
    data = dict(VALID)
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        data[key] = draw(json_value)  # maybe more damage, maybe none: the damage below stays
    damage = draw(st.sampled_from(["type", "wrong", "missing", "extra", "toplevel", "tag"]))
    if damage == "type":
        data["__type__"] = draw(
            st.text(min_size=1, max_size=30).filter(lambda t: t != "ZarrDatasetConfig")
        )
    elif damage == "wrong":
        key = draw(st.sampled_from(["name", "container", "weight"]))
        bad = st.one_of(
            st.lists(json_leaf, max_size=2),
            st.dictionaries(st.text(max_size=3), json_leaf, max_size=2),
            st.booleans(),
            st.none(),
        )
        data[key] = draw(bad)
    elif damage == "missing":
        del data[draw(st.sampled_from(["name", "container"]))]
    elif damage == "extra":
        data[draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in VALID))] = draw(
            json_value
        )
    elif damage == "tag":
        data["__type__"] = draw(st.one_of(st.integers(), st.none(), st.lists(json_leaf)))
    else:
        return draw(st.one_of(json_leaf, st.lists(json_value, max_size=3)))
    return data


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(config=malformed(), suffix=st.sampled_from([".json", ".yaml"]))
def test_malformed_configs_fail_cleanly(config: object, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"config{suffix}"
        path.write_text(json.dumps(config))  # JSON is valid YAML too
        status, err = _run(["validate", str(path)])
    assert status == 2, err
    assert err.startswith("error: invalid config")
    assert "Traceback" not in err


def _run(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, err.getvalue()


# -- files: nesting, keys, aliases, numbers ------------------------------------------------------


def _nested(depth: int, kind: str, form: str) -> str:
    """A value nested ``depth`` levels deep, written in ``form`` (YAML flow, JSON or TOML)."""
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    if form == "toml":
        return "{a = " * depth + "1" + "}" * depth
    return '{"a": ' * depth + "1" + "}" * depth


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    depth=st.one_of(st.integers(1, 150), st.integers(150, 120_000)),
    kind=st.sampled_from(["list", "mapping"]),
    form=st.sampled_from(["yaml", "json", "toml"]),
)
def test_deep_nesting_fails_cleanly(depth: int, kind: str, form: str) -> None:
    value = _nested(depth, kind, form)
    text = {
        "yaml": f"__type__: ZarrDatasetConfig\nname: demo\ncontainer: {value}\n",
        "json": f'{{"__type__": "ZarrDatasetConfig", "name": "demo", "container": {value}}}',
        "toml": f'__type__ = "ZarrDatasetConfig"\nname = "demo"\ncontainer = {value}\n',
    }[form]
    status, err = _run_file(text, f".{form}", ["validate"])
    assert status == 2, err
    assert err.startswith("error: invalid config") and "Traceback" not in err
    if depth > 100:
        assert "nesting" in err


#: Keys YAML reads as something else than a string: numbers, booleans, null, dates.
yaml_key = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.dates())


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=yaml_key, nested=st.booleans())
def test_mapping_keys_that_are_not_strings_fail_cleanly(key: object, nested: bool) -> None:
    entry = yaml.safe_dump({key: 1}, default_flow_style=True).strip()  # e.g. {1.5e-05: 1}
    text = "__type__: ZarrDatasetConfig\nname: demo\ncontainer: demo.zarr\n"
    text += f"sample_points:\n  - {entry}\n" if nested else f"{entry[1:-1]}\n"
    status, err = _run_file(text, ".yaml", ["validate"])
    assert status == 2, err
    assert "is not a string; keys of a config are field names" in err
    assert "Traceback" not in err


def _alias_bomb(levels: int, fanout: int) -> str:
    """``sample_points`` built from ``levels`` of lists, each repeating the one below."""
    lines = ["__type__: ZarrDatasetConfig", "name: demo", "container: demo.zarr"]
    lines.append("x0: &x0 [" + ", ".join(["1.5"] * fanout) + "]")
    for level in range(1, levels):
        lines.append(f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * fanout) + "]")
    lines.append(f"sample_points: [{', '.join([f'*x{levels - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(levels=st.integers(1, 9), fanout=st.integers(1, 40))
def test_yaml_aliases_inside_a_typed_list_fail_cleanly(levels: int, fanout: int) -> None:
    status, err = _run_file(_alias_bomb(levels, fanout), ".yaml", ["validate"])
    assert status == 2, err  # the helper keys x0... are unknown fields: never valid
    assert "Traceback" not in err
    if fanout ** (levels + 1) > 2_000_000:
        assert "expands to more than 1,000,000 values" in err


def test_the_reported_alias_bomb_is_refused_without_building_it() -> None:
    text = _alias_bomb(9, 10)  # ~1.3 KB standing for 10^10 numbers
    status, err = _run_file(text, ".yaml", ["validate"])
    assert status == 2
    assert "expands to more than 1,000,000 values (YAML aliases repeat what they refer to)" in err


#: Number literals of every size and kind, as YAML and JSON write them.
NUMBERS = {
    ".yaml": st.one_of(
        st.integers(-(2**80), 2**80).map(str),
        st.integers(1, 6000).map(lambda n: "9" * n),
        st.floats().map(
            lambda f: {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(str(f), str(f))
        ),
        st.sampled_from(["1e309", "-1e309", "1e-400", "0x7fffffffffffffffff", "1_000_000"]),
    ),
    ".json": st.one_of(
        st.integers(-(2**80), 2**80).map(str),
        st.integers(1, 6000).map(lambda n: "9" * n),
        st.floats().map(
            lambda f: {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(str(f), str(f))
        ),
        st.sampled_from(["1e309", "-1e309", "1e-400"]),
    ),
}
#: Where a number goes in a run file: (keys..., whether train may take it: no huge allocations
#: and no endless runs).
NUMBER_FIELDS = [
    (("seed",), True),
    (("checkpoint_interval",), True),
    (("trainer_config", "learning_rate"), True),
    (("datasets", 0, "weight"), True),
    (("num_iterations",), False),
    (("trainer_config", "batch_size"), False),
    (("architecture_config", "num_fmaps"), False),
    (("architecture_config", "input_shape", 1), False),
]
_PLACEHOLDER = "__NUMBER__"


def _run_text(data: dict[str, Any], where: tuple[object, ...], number: str, suffix: str) -> str:
    data = json.loads(json.dumps(data))
    target: Any = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = _PLACEHOLDER
    text = json.dumps(data) if suffix == ".json" else yaml.safe_dump(data)
    for written in (f"'{_PLACEHOLDER}'", f'"{_PLACEHOLDER}"', _PLACEHOLDER):
        text = text.replace(written, number)
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    field=st.sampled_from(NUMBER_FIELDS), suffix=st.sampled_from([".yaml", ".json"]), data=st.data()
)
def test_numbers_of_any_size_in_a_run_file_validate_cleanly(
    tensor_on_path: None,
    demo_zarr: Path,
    field: tuple[tuple[object, ...], bool],
    suffix: str,
    data: st.DataObject,
) -> None:
    number = data.draw(NUMBERS[suffix])
    with tempfile.TemporaryDirectory() as folder:
        run = run_data(demo_zarr, Path(folder) / "out")
        status, err = _run_file(_run_text(run, field[0], number, suffix), suffix, ["validate"])
    assert status in (0, 2), err
    assert "Traceback" not in err
    if status:
        assert err.startswith("error: invalid config") and len(err.strip().splitlines()) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    field=st.sampled_from([f for f in NUMBER_FIELDS if f[1]]),
    data=st.data(),
)
def test_numbers_of_any_size_in_a_run_file_train_cleanly(
    tensor_on_path: None,
    demo_zarr: Path,
    field: tuple[tuple[object, ...], bool],
    data: st.DataObject,
) -> None:
    number = data.draw(NUMBERS[".yaml"])
    with tempfile.TemporaryDirectory() as folder:
        run = {**run_data(demo_zarr, Path(folder) / "out"), "num_iterations": 2}
        status, err = _run_file(_run_text(run, field[0], number, ".yaml"), ".yaml", ["train"])
    assert "Traceback" not in err and "unexpected" not in err
    if status:
        assert status in (1, 2) and err.startswith("error: "), err
        assert len(err.strip().splitlines()) == 1, err


def _run_file(text: str, suffix: str, command: list[str]) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"config{suffix}"
        path.write_text(text)
        return _run([*command, str(path), *(["--quiet"] if command == ["train"] else [])])


# -- zarr containers: missing, wrong kind, garbage attributes, corrupt chunks ------------------


def _container_attack(data_zarr: Path, attack: str) -> dict[str, Any]:
    """Damage a copy of the demo container; the dataset config that then points at it."""
    dataset: dict[str, Any] = {"container": str(data_zarr)}
    if attack == "missing container":
        shutil.rmtree(data_zarr)
    elif attack == "container is a file":
        shutil.rmtree(data_zarr)
        data_zarr.write_text("not zarr")
    elif attack == "container is an empty folder":
        shutil.rmtree(data_zarr)
        data_zarr.mkdir()
    elif attack == "container is an array":
        dataset["container"] = str(data_zarr / "raw")
    elif attack == "raw missing":
        shutil.rmtree(data_zarr / "raw")
    elif attack == "gt missing":
        dataset["gt"] = "labels"
    elif attack == "gt is a group":
        import zarr

        zarr.open_group(str(data_zarr), mode="a").create_group("labels")
        dataset["gt"] = "labels"
    return dataset


def _set_attributes(array: Path, **values: object) -> None:
    """Write attributes as they are, NaN and all, in zarr 2's or zarr 3's metadata file."""
    if (array / "zarr.json").exists():  # zarr 3: attributes inside the array's metadata
        metadata = json.loads((array / "zarr.json").read_text())
        metadata.setdefault("attributes", {}).update(values)
        (array / "zarr.json").write_text(json.dumps(metadata))
        return
    attributes = json.loads((array / ".zattrs").read_text())
    attributes.update(values)
    (array / ".zattrs").write_text(json.dumps(attributes))


def _first_chunk(array: Path) -> Path:
    """The file of the array's first chunk (``0.0.0`` in zarr 2, ``c/0/0/0`` in zarr 3)."""
    metadata = {".zarray", ".zattrs", "zarr.json"}
    return min(p for p in array.rglob("*") if p.is_file() and p.name not in metadata)


def _with_dataset(demo_zarr: Path, folder: Path, dataset: dict[str, Any]) -> dict[str, Any]:
    run = {**run_data(demo_zarr, folder / "out"), "num_iterations": 2}
    run["datasets"] = [{**run["datasets"][0], **dataset}]
    return run


CONTAINER_ATTACKS = [
    "missing container",
    "container is a file",
    "container is an empty folder",
    "container is an array",
    "raw missing",
    "gt missing",
    "gt is a group",
]


@pytest.mark.parametrize("attack", CONTAINER_ATTACKS)
def test_unusable_containers_are_named_before_anything_is_written(
    tensor_on_path: None, demo_zarr: Path, tmp_path: Path, attack: str
) -> None:
    data_zarr = tmp_path / "data.zarr"
    shutil.copytree(demo_zarr, data_zarr)
    run = _with_dataset(demo_zarr, tmp_path, _container_attack(data_zarr, attack))
    for command in (["validate", "--inputs"], ["train"]):
        status, err = _run_file(yaml.safe_dump(run), ".yaml", command)
        assert status == 2, err
        assert err.startswith("error: invalid config "), err
        assert "$.datasets[0]: ZarrDatasetConfig 'demo' (dacapo-trainers 0.1.0) cannot be " in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()  # nothing written: fixing the path just works
    shutil.rmtree(data_zarr, ignore_errors=True)
    data_zarr.unlink(missing_ok=True)
    shutil.copytree(demo_zarr, data_zarr)
    run["datasets"][0] = {**run["datasets"][0], "container": str(data_zarr), "gt": "gt"}
    status, err = _run_file(yaml.safe_dump(run), ".yaml", ["train"])
    assert status == 0, err


#: Geometry attribute values: garbage of every kind, and some that are fine.
geometry_value = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.lists(
        st.one_of(st.integers(-3, 10), st.floats(), st.text(max_size=2), st.none()), max_size=4
    ),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _certainly_unusable(voxel_size: object, offset: object) -> bool:
    """Whether no reading of these attributes gives a geometry (a missing voxel size is 1)."""

    def numbers(value: object) -> list[float] | None:
        if not isinstance(value, list):
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return None
        return [float(v) for v in value]

    start = numbers(offset)
    if start is None or not all(abs(v) < float("inf") for v in start):
        return True
    if voxel_size is None:
        return False
    size = numbers(voxel_size)
    if size is None or len(size) != len(start) or not size:
        return True
    return not all(1 <= v < float("inf") for v in size)  # read as integers: below 1 is 0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    array=st.sampled_from(["raw", "gt"]),
    voxel_size=geometry_value,
    offset=st.one_of(st.just([0, 0, 0]), geometry_value),
    command=st.sampled_from([("validate", "--inputs"), ("train",)]),
)
def test_garbage_geometry_attributes_fail_cleanly(
    tensor_on_path: None,
    demo_zarr: Path,
    array: str,
    voxel_size: object,
    offset: object,
    command: tuple[str, ...],
) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        data_zarr = folder / "data.zarr"
        shutil.copytree(demo_zarr, data_zarr)
        _set_attributes(
            data_zarr / array, voxel_size=voxel_size, resolution=voxel_size, offset=offset
        )
        run = _with_dataset(demo_zarr, folder, {"container": str(data_zarr)})
        status, err = _run_file(yaml.safe_dump(run), ".yaml", list(command))
        wrote = (folder / "out").exists()
    assert "Traceback" not in err
    assert "error: unexpected" not in err, err  # a crash of ours, not a refusal
    if status:
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    if _certainly_unusable(voxel_size, offset):
        assert status == 2, err
        assert "$.datasets[0]" in err
        assert not wrote


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    chunk=st.one_of(
        st.binary(min_size=1, max_size=15),  # shorter than a blosc header: always detected
        st.binary(min_size=16, max_size=300),
        st.integers(16, 30_000),  # the chunk cut short
    )
)
def test_corrupt_chunks_stop_the_run_cleanly(
    tensor_on_path: None, demo_zarr: Path, chunk: bytes | int
) -> None:
    results = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        data_zarr = folder / "data.zarr"
        shutil.copytree(demo_zarr, data_zarr)
        chunk_path = _first_chunk(data_zarr / "raw")
        original = chunk_path.read_bytes()
        chunk_path.write_bytes(chunk if isinstance(chunk, bytes) else original[:chunk])
        run = _with_dataset(demo_zarr, folder, {"container": str(data_zarr)})
        for command in (["validate", "--inputs"], ["train"]):
            results.append(_run_file(yaml.safe_dump(run), ".yaml", command))
            if results[-1][0]:
                assert not (folder / "out").exists(), "a refused run wrote to its folder"
    (checked, checked_err), (status, err) = results
    assert "Traceback" not in err and "Traceback" not in checked_err
    # numcodecs' blosc reads some damaged chunks without noticing (it trusts the header's
    # sizes): those runs train on what it returns. Every damage it notices stops the run
    # before anything is written, and validate --inputs notices the same.
    if isinstance(chunk, bytes) and len(chunk) < 16:  # shorter than any codec's header
        assert status == 2, err
    assert checked == status, (checked_err, err)
    if status:
        assert status == 2, err
        assert err.startswith("error: ") and "$.datasets[0]: its raw array " in err, err
        assert "has a chunk that cannot be read: chunk 0.0.0 (voxels 0:" in err, err
        assert "unexpected" not in err
