"""``dacapo-trainers show TYPE``: a config type's fields, types, defaults and docs."""

from __future__ import annotations

import argparse
import inspect
import textwrap
import types
import typing
from typing import Any

import attrs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show",
        help="describe a config type",
        description="Print a config type's distribution, documentation and fields.",
    )
    parser.add_argument("type", help="a type name, e.g. GunpowderTrainerConfig")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._plugins._registry import default_registry

    registry = default_registry()
    cls = registry.get(args.type)
    record = next((r for r in registry.records() if r.type_name == args.type), None)
    print(f"{cls.type_name()}  ({record.label if record else 'registered at run time'})")
    doc = inspect.getdoc(cls)
    if doc:
        print()
        print(doc)
    print()
    print("fields:")
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        shown = _type_name(hints.get(field.name, Any))
        default = _default(field)
        print(f"  {field.name}: {shown}{default}")
        text = field.metadata.get("help_text")
        if text:
            print(
                textwrap.fill(
                    str(text), width=96, initial_indent=" " * 6, subsequent_indent=" " * 6
                )
            )
    return 0


def _type_name(tp: Any) -> str:
    """A type as a user writes it: class names without module paths (``list[AugmentConfig]``)."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(arg) for arg in args)}]"
    if tp is type(None):
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _default(field: attrs.Attribute[Any]) -> str:
    if field.default is attrs.NOTHING:
        return "  (required)"
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return "" if default.takes_self else f" = {default.factory()!r}"
    return f" = {default!r}"
