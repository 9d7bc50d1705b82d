"""JSON Schema (draft 2020-12) for config classes, for editor completion and validation."""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path
from typing import Any

import attrs

from .._contract._config import TaggedConfig
from .._plugins._registry import Registry

_PRIMITIVES: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    Path: {"type": "string"},
    type(None): {"type": "null"},  # an optional field takes null, and only null besides
    Any: {},
}


def json_schema(cls: type, registry: Registry) -> dict[str, Any]:
    """The JSON Schema of config class ``cls``; nested tagged fields list every loaded subtype.

    Subtypes of polymorphic fields come from the registry's loaded types, so call
    :meth:`Registry.load_all` first for a complete schema.
    """
    definitions: dict[str, Any] = {}
    root = _class_schema(cls, registry, definitions)
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema["title"] = cls.__name__
    schema.update(root)
    if definitions:
        schema["$defs"] = definitions
    return schema


def _class_schema(cls: type, registry: Registry, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    if issubclass(cls, TaggedConfig):
        properties["__type__"] = {"const": cls.type_name(), "description": "The config type."}
        required.append("__type__")
    for field in attrs.fields(cls):
        prop = _type_schema(hints.get(field.name, Any), registry, definitions)
        text = field.metadata.get("help_text")
        if text:
            prop = {**prop, "description": str(text)}
        default = field.default
        if default is attrs.NOTHING:
            required.append(field.name)
        elif not isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            prop = {**prop, "default": _json_default(default)}
        elif not default.takes_self:
            prop = {**prop, "default": _json_default(default.factory())}
        properties[field.name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().split("\n\n")[0]
    return schema


def _json_default(value: Any) -> Any:
    if isinstance(value, (Path, enum.Enum)):
        return str(value.value if isinstance(value, enum.Enum) else value)
    if isinstance(value, tuple):
        return [_json_default(v) for v in value]
    if isinstance(value, list):
        return [_json_default(v) for v in value]
    if attrs.has(type(value)):
        return None
    return value


def _type_schema(tp: Any, registry: Registry, definitions: dict[str, Any]) -> dict[str, Any]:
    if tp in _PRIMITIVES:
        return dict(_PRIMITIVES[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(arg, registry, definitions) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and isinstance(origin, type) and issubclass(origin, typing.Sequence)
    ):
        if origin is tuple and args and args[-1] is not Ellipsis:
            items = [_type_schema(arg, registry, definitions) for arg in args]
            return {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        item = _type_schema(args[0], registry, definitions) if args else {}
        return {"type": "array", "items": item}
    if origin is dict:
        value = _type_schema(args[1], registry, definitions) if args else {}
        return {"type": "object", "additionalProperties": value}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if isinstance(tp, type) and issubclass(tp, TaggedConfig):
        options = []
        for sub in registry.subclasses_of(tp):
            name = sub.type_name()
            if name not in definitions:
                definitions[name] = {}  # reserve: recursive configs terminate
                definitions[name] = _class_schema(sub, registry, definitions)
            options.append({"$ref": f"#/$defs/{name}"})
        return {"oneOf": options} if options else {"type": "object", "required": ["__type__"]}
    if isinstance(tp, type) and attrs.has(tp):
        return _class_schema(tp, registry, definitions)
    return {}
