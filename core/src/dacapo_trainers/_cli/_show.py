"""``dacapo-trainers show TYPE``: a config type's fields, types, defaults and docs."""

from __future__ import annotations

import argparse
import inspect
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
    from .._registry import Registry

    registry = Registry()
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
            print(f"      {text}")
    return 0


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("pathlib.", "")


def _default(field: attrs.Attribute[Any]) -> str:
    if field.default is attrs.NOTHING:
        return "  (required)"
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return "" if default.takes_self else f" = {default.factory()!r}"
    return f" = {default!r}"
