"""The JSON Schema editors use agrees with ``validate``: what it refuses, so does the schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dacapo_trainers import ConfigError, RunConfig, default_registry, json_schema, structure_config

jsonschema = pytest.importorskip("jsonschema")

UNET: dict[str, Any] = {
    "__type__": "UNetConfig",
    "name": "unet",
    "input_shape": [44, 44, 44],
    "downsample_factors": [[2, 2, 2]],
}


def _validator(cls: type) -> Any:
    registry = default_registry()
    registry.load_all()
    schema = json_schema(cls, registry)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_an_optional_field_takes_its_type_or_null_and_nothing_else() -> None:
    validator = _validator(type(structure_config(UNET)))
    assert validator.is_valid({**UNET, "num_fmaps_out": None})
    assert validator.is_valid({**UNET, "num_fmaps_out": 4})
    assert not validator.is_valid({**UNET, "num_fmaps_out": "often"})


def test_every_registered_type_has_a_valid_schema() -> None:
    registry = default_registry()
    for cls in registry.load_all().values():
        jsonschema.Draft202012Validator.check_schema(json_schema(cls, registry))
    jsonschema.Draft202012Validator.check_schema(json_schema(RunConfig, registry))


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
    st.lists(st.integers(1, 4), max_size=4),
)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(
        sorted(
            set(UNET) - {"__type__"}
            | {"num_fmaps", "num_fmaps_out", "fmap_inc_factor", "kernel_size", "constant_upsample"}
        )
    ),
    value=_VALUES,
)
def test_the_schema_refuses_what_validate_refuses(field: str, value: Any) -> None:
    """Editors must not accept a value of a type that ``validate`` then rejects (value rules
    such as "positive" live in validators, which a schema does not carry)."""
    data = copy.deepcopy(UNET)
    data[field] = value
    try:
        structure_config(data)
        wrong_type = False
    except ConfigError as error:
        wrong_type = any(issue.message.startswith("expected ") for issue in error.issues)
    # JSON Schema counts 2.0 as an integer; Python's config types do not (a known gap).
    whole_float = isinstance(value, float) and value.is_integer()
    if wrong_type and not whole_float:
        assert not _validator(type(structure_config(UNET))).is_valid(data), (field, value)
