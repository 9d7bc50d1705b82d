"""The rules a config class follows, checked on the class itself (no instance needed).

Each rule catches a mistake that attrs accepts silently and that a user meets only later, in
a run file ("unknown key") or a traceback of ``train``:

* a class attribute without annotation is no field: a run file setting it is refused;
* ``attrs.field()`` without annotation is a field of no type: any value passes;
* a mutable default (``[]``, ``{}``) is one object shared by every instance;
* ``trainer_type`` without ``ClassVar`` becomes a field a run file can set.

The registry refuses a loaded config class that breaks the last rule (it breaks ``train``);
the conformance kit checks all of them.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs

#: Class attributes the config base classes declare on purpose.
_CLASS_LEVEL = {"trainer_type"}


def config_class_problems(cls: type) -> list[str]:
    """What is wrong with config class ``cls``, one sentence with the fix each; [] if nothing."""
    if not attrs.has(cls):
        return [
            f"{cls.__name__} is not an attrs class: declare it with @attrs.define(kw_only=True)"
        ]
    problems = []
    fields = {field.name: field for field in attrs.fields(cls)}
    if "trainer_type" in fields:
        problems.append(trainer_type_problem(cls))
    for name, field in fields.items():
        if field.type is None:
            problems.append(
                f"{cls.__name__}.{name} has no annotation, so the config layer cannot check its "
                f"type and accepts any value (a string for a number); annotate it: "
                f"`{name}: {_type_of(field.default)} = attrs.field(...)`"
            )
        if isinstance(field.default, (list, dict, set)):
            kind = type(field.default).__name__
            problems.append(
                f"{cls.__name__}.{name} has a mutable default {field.default!r}: one {kind} "
                f"shared by every instance; use `attrs.field({_factory(field.default)})`"
            )
    for name, value in _plain_class_attributes(cls).items():
        if name not in fields:
            problems.append(
                f"{cls.__name__}.{name} = {value!r} has no annotation, so it is not a config "
                f"field and a run file setting {name!r} is refused as an unknown key; annotate "
                f"it (`{name}: {_type_of(value)} = {_default_text(value)}`), or mark a "
                "constant `ClassVar`"
            )
    return problems


def _type_of(value: Any) -> str:
    """The annotation a default suggests: ``float`` for 0.1, ``list[int]`` for [8]."""
    if value is None:
        return "int | None"
    if value is attrs.NOTHING or isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        return "int"
    if isinstance(value, (list, set)) and value:
        return f"{type(value).__name__}[{_type_of(next(iter(value)))}]"
    if isinstance(value, dict) and value:
        key, item = next(iter(value.items()))
        return f"dict[{_type_of(key)}, {_type_of(item)}]"
    return type(value).__name__


def _factory(default: list[Any] | dict[Any, Any] | set[Any]) -> str:
    """The factory that makes ``default`` anew for every instance (its value kept)."""
    kind = type(default).__name__
    return f"factory={kind}" if not default else f"factory=lambda: {default!r}"


def _default_text(value: Any) -> str:
    """How a plain class attribute's value is written as a field default."""
    if isinstance(value, (list, dict, set)):
        return f"attrs.field({_factory(value)})"
    return repr(value)


def trainer_type_problem(cls: type) -> str:
    """The message for a ``trainer_type`` declared as a field instead of a ClassVar."""
    return (
        f"{cls.__name__}.trainer_type is an attrs field (annotated without ClassVar), so run "
        "files could set it and the trainer cannot be built; declare it "
        '`trainer_type: ClassVar[str] = "package.module:TrainerClass"`'
    )


def _plain_class_attributes(cls: type) -> dict[str, Any]:
    """Data attributes a config class body sets without annotation (fields were meant)."""
    annotated: set[str] = set()
    for klass in cls.__mro__:
        annotated |= set(getattr(klass, "__annotations__", {}))
    found = {}
    for klass in cls.__mro__:
        if klass is object or not attrs.has(klass):
            continue
        for name, value in vars(klass).items():
            if (
                name.startswith("_")
                or name.isupper()  # CONSTANTS are meant to be class-level
                or name in annotated
                or name in _CLASS_LEVEL
                or name in found
                or callable(value)
                or inspect.isdatadescriptor(value)
                or isinstance(value, (classmethod, staticmethod))
            ):
                continue
            found[name] = value
    return found
