"""hypothesis: malformed configs through ``validate`` always give a clean error and exit 2."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dacapo_trainers._cli import main

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
