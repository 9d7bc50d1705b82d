"""Round trips of configs through JSON, and hypothesis strategies of config data.

A run resumes only if its config, written to ``run_config.json`` and read back, equals the
config in memory; :func:`round_trip_problem` checks exactly that for one config, and
:func:`config_data` draws plain data for any config class so that a property test can check
it for every value a type accepts. hypothesis is imported only when :func:`config_data` is
called (it is a test dependency, not a dependency of the core).
"""

from __future__ import annotations

import collections.abc
import json
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._configs._converter import TAG, ConfigConverter
from .._contract._config import TaggedConfig
from .._plugins._registry import Registry

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy


def round_trip_problem(config: Any, converter: ConfigConverter | None = None) -> str | None:
    """What breaks when ``config`` goes through JSON and back, or None when nothing does.

    The unstructured data must be JSON's own (lists, not tuples: data read back from
    ``run_config.json`` is compared with data unstructured in memory when a run resumes),
    and structuring it again must give an equal config that unstructures to the same data.
    """
    converter = converter if converter is not None else ConfigConverter()
    name = type(config).__name__
    data = converter.unstructure(config)
    try:
        text = json.dumps(data)
    except (TypeError, ValueError) as error:
        return (
            f"the unstructured {name} is not JSON-ready ({error}); give fields plain types "
            "(int, float, str, bool, lists, Path, nested attrs configs)"
        )
    read_back = json.loads(text)
    if read_back != data:
        return (
            f"the unstructured {name} changes through JSON: in memory it is\n    {data!r}\n"
            f"and read back from JSON\n    {read_back!r}\nso a run using it could never resume "
            "(unstructure must give JSON's types: lists, not tuples or sets)"
        )
    again = converter.structure(read_back, type(config))
    if type(again) is not type(config):
        return f"structuring gave a {type(again).__qualname__}, not {type(config).__qualname__}"
    if again != config:
        return (
            f"{name} read back from JSON is not equal to the original:\n    {config!r}\n"
            f"    {again!r}\nfields must keep their values through plain data"
        )
    if converter.unstructure(again) != data:
        return (
            f"{name} does not round-trip: unstructured it is\n    {data!r}\nand after "
            f"structuring and unstructuring\n    {converter.unstructure(again)!r}\nfields must "
            "keep their values through plain data (no converters that change them, no "
            "init=False fields holding state)"
        )
    return None


def config_data(
    cls: type[TaggedConfig],
    registry: Registry,
    *,
    max_depth: int = 3,
    known: dict[str, Any] | None = None,
) -> SearchStrategy[dict[str, Any]]:
    """A hypothesis strategy of plain data (with ``"__type__"``) for config class ``cls``.

    Values follow the field annotations; fields with a default are sometimes left out, and
    sometimes given their default (a valid value next to the random ones). ``known`` gives
    valid plain values of fields (of ``cls``) whose validity depends on one another, such as a
    network's input shape and downsampling factors: each is drawn half of the time.
    Polymorphic fields (``list[AugmentConfig]``) draw among the registered subclasses of their
    type. Many drawn values are invalid for the class's validators: structure them and
    discard the refused ones (``hypothesis.reject``).
    """
    return _tagged(cls, registry, max_depth, known or {})


def _tagged(
    cls: type, registry: Registry, depth: int, known: dict[str, Any] | None = None
) -> SearchStrategy[dict[str, Any]]:
    from hypothesis import strategies as st

    hints = typing.get_type_hints(cls)
    required: dict[str, SearchStrategy[Any]] = {}
    optional: dict[str, SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        if not field.init:
            continue
        strategy = _value(hints.get(field.name, Any), registry, depth)
        if known and field.name in known:
            strategy = st.one_of(st.just(known[field.name]), strategy)
        elif _is_plain_json(field.default):
            strategy = st.one_of(st.just(field.default), strategy)
        if field.default is attrs.NOTHING:
            required[field.name] = strategy
        else:
            optional[field.name] = strategy
    fields = st.fixed_dictionaries(required, optional=optional)
    if issubclass(cls, TaggedConfig):
        return fields.map(lambda data: {TAG: cls.type_name(), **data})
    return fields


def _value(annotation: Any, registry: Registry, depth: int) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if annotation is type(None):
        return st.none()
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_value(a, registry, depth) for a in arguments))
    if origin is typing.Literal:
        return st.sampled_from(arguments)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.one_of(st.integers(0, 8), st.integers(-(2**31), 2**31))
    if annotation is float:
        return st.one_of(
            st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]),
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        )
    if annotation is str:
        return st.text("abcxyz_-0123", min_size=1, max_size=8)
    if annotation is Path:
        return st.text("abcxyz_-/.", min_size=1, max_size=12)
    if origin in (list, collections.abc.Sequence):
        (item,) = arguments or (Any,)
        return _lists(_value(item, registry, depth))
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return _lists(_value(arguments[0], registry, depth))
        return st.tuples(*(_value(a, registry, depth) for a in arguments)).map(list)
    if origin is dict:
        return st.dictionaries(st.text("abc", min_size=1, max_size=4), _json_scalars())
    if isinstance(annotation, type) and issubclass(annotation, TaggedConfig):
        if depth <= 0:
            return st.nothing()
        choices = registry.subclasses_of(annotation)  # registered (selectable) types only
        return st.one_of(*(_tagged(c, registry, depth - 1) for c in choices))
    if isinstance(annotation, type) and attrs.has(annotation):
        return _tagged(annotation, registry, depth - 1)
    return _json_scalars()


def _is_plain_json(value: Any) -> bool:
    """Whether a default can be offered as plain data as it is (not a factory or a config)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value is not None
    if isinstance(value, (list, tuple)):
        return all(_is_plain_json(item) for item in value)
    return False


def _lists(items: SearchStrategy[Any]) -> SearchStrategy[list[Any]]:
    from hypothesis import strategies as st

    # nested configs past the depth limit draw nothing: their lists are empty
    return st.just([]) if items.is_empty else st.lists(items, max_size=4)


def _json_scalars() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text("abc", max_size=4))
