"""``dacapo-trainers show TYPE``: a config type's fields, types, defaults and docs."""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
import types
import typing
from typing import Any

import attrs

from ._options import add_set_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show",
        help="describe a config type",
        description="Print a config type's distribution, documentation and fields.",
    )
    parser.add_argument("type", help="a type name, e.g. GunpowderTrainerConfig")
    add_set_option(parser, relative_to="the type (e.g. learning_rate=1e-4)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._configs._overrides import apply_overrides
    from .._plugins._registry import default_registry

    registry = default_registry()
    cls = registry.get(args.type)
    record = next((r for r in registry.records() if r.type_name == args.type), None)
    # The values --set gives, read by each field's type (an unknown field or a bad value
    # is an error here as it is in a file).
    chosen = apply_overrides({"__type__": args.type}, args.overrides, cls, registry)
    print(f"{cls.type_name()}  ({record.label if record else 'registered at run time'})")
    doc = inspect.getdoc(cls)
    if doc:
        print()
        print(plain_text(doc))
    print()
    print("fields:")
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        shown = _type_name(hints.get(field.name, Any))
        if field.name in chosen:
            default = _default(field).removeprefix(" = ").strip(" ()")
            value = f" = {chosen[field.name]!r}  (set; default: {default})"
        else:
            value = _default(field)
        print(f"  {field.name}: {shown}{value}")
        text = field.metadata.get("help_text")
        if text:
            print(
                textwrap.fill(
                    plain_text(str(text)),
                    width=96,
                    initial_indent=" " * 6,
                    subsequent_indent=" " * 6,
                )
            )
    return 0


#: ``:role:`target``` and ``:role:`text <target>``` of Sphinx, and reST's inline literals.
_ROLE = re.compile(r":[\w:.-]+:`(?:([^`<]*?)\s*<([^`>]*)>|([^`]*))`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """reST markup as a terminal shows it: roles by their name (``:class:`~a.B``` -> ``B``,
    ``:doc:`text </runs>``` -> ``text``), inline literals without their backticks."""

    def role(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        target = match.group(3)
        if target.startswith("~"):
            return target.rsplit(".", 1)[-1]
        return target.lstrip("!")

    return _LITERAL.sub(r"\1", _ROLE.sub(role, text))


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
    """`` = default`` as a user writes it, or ``(required)``."""
    if field.default is attrs.NOTHING:
        return "  (required)"
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return "" if default.takes_self else f" = {default.factory()!r}"
    return f" = {default!r}"
