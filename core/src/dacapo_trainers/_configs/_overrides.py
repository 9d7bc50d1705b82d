"""Command-line overrides: ``--set trainer_config.learning_rate=1e-4`` on a config's plain data.

An override is ``PATH=VALUE``. ``PATH`` is a dotted path of field names from the top of the
file, with list items as ``[N]`` (``datasets[0].container``). ``VALUE`` is read by the type of
the field it sets, found by walking the config classes along the path (a tagged config's class
is the one its ``"__type__"`` names): ``int``, ``float`` (``1e-4`` too), ``bool``
(``true``/``false``), ``str`` and paths as written, ``null`` for an optional field; lists and
mappings in YAML flow syntax (``[2, 2, 2]``). Overrides apply to the data before it is
structured, so the config they make is checked as if the file said so, and a run records (in
``run_config.json`` and its checkpoints) the effective config.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .._contract._config import TaggedConfig
from .._errors import ConfigError, ConfigIssue
from .._plugins._registry import Registry

#: Where override problems are reported from (the "file" they belong to).
SOURCE = "--set"
_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\.")
_NULLS = {"null", "none", "~"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@attrs.frozen
class Override:
    """One ``PATH=VALUE`` override: the path as keys and list indices, the value's text."""

    steps: tuple[str | int, ...]
    text: str

    @property
    def path(self) -> str:
        """The path as issues name it: ``$.datasets[0].container``."""
        return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.steps)


def parse_override(argument: str) -> Override:
    """``PATH=VALUE`` as an :class:`Override`.

    :raises ConfigError: no ``=``, or a path that is not field names and ``[N]`` indices.
    """
    path, equals, text = argument.partition("=")
    path = path.strip()
    if not equals or not path:
        raise _error("$", f"{argument!r} is not PATH=VALUE (e.g. trainer_config.batch_size=4)")
    steps: list[str | int] = []
    position, after_dot = 0, False
    while position < len(path):
        match = _TOKEN.match(path, position)
        name = match.group(1) if match else None
        # a "." stands between two steps and is followed by a field name
        if match is None or (after_dot and name is None) or (match.group(0) == "." and not steps):
            raise _error("$", f"{path!r} is not a path of field names and [N] indices")
        if name is not None:
            if steps and not after_dot:
                raise _error("$", f"{path!r} is not a path of field names and [N] indices")
            steps.append(name)
        elif match.group(2) is not None:
            steps.append(int(match.group(2)))
        after_dot = match.group(0) == "."
        position = match.end()
    if after_dot:
        raise _error("$", f"{path!r} is not a path of field names and [N] indices")
    if not isinstance(steps[0], str):
        raise _error("$", f"{path!r} must start with a field name")
    return Override(tuple(steps), text.strip())


def apply_overrides(
    data: Any, overrides: Sequence[str], cls: type[Any], registry: Registry | None = None
) -> Any:
    """A copy of a config's plain ``data`` with ``overrides`` (``PATH=VALUE``) set.

    ``cls`` is the class the data will structure into (``RunConfig``, or a tagged config's
    base or class); it and the ``"__type__"`` tags along each path give the field types.

    :raises ConfigError: a malformed override, a path through a field that does not exist
        (with the closest name), an index past a list's end, or a value its field's type
        cannot take; each names the override's path.
    """
    if not overrides:
        return data
    if not isinstance(data, dict):
        raise _error("$", "overrides need a file whose top level is a mapping")
    result = copy.deepcopy(data)
    for argument in overrides:
        override = parse_override(argument)
        _set(result, override, cls, registry)
    return result


def _set(data: dict[str, Any], override: Override, cls: Any, registry: Registry | None) -> None:
    container: Any = data
    hint: Any = cls
    for depth, step in enumerate(override.steps):
        here = Override(override.steps[: depth + 1], "").path
        last = depth == len(override.steps) - 1
        if isinstance(step, int):
            hint = _item_type(hint)
            if not isinstance(container, list):
                raise _error(here, "is not a list item: the value there is not a list")
            if step >= len(container):
                raise _error(here, f"index past the end (the list has {len(container)} items)")
            if last:
                container[step] = _value(override.text, hint, here)
                return
            container = container[step]
            continue
        if isinstance(container, list):
            above = Override(override.steps[:depth], "").path
            raise _error(here, f"{above} is a list: name an item, e.g. {above[2:]}[0].{step}")
        if not isinstance(container, dict):
            raise _error(here, "the value above it is not a mapping")
        owner = _config_class(container, hint, registry)
        if owner is not None:
            fields = _field_types(owner)
            if step not in fields and step != "__type__":
                close = difflib.get_close_matches(step, list(fields), n=1)
                hint_text = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(sorted(fields))
                raise _error(here, f"no such field of {owner.__name__}{hint_text}; fields: {known}")
            hint = str if step == "__type__" else fields[step]
        else:
            hint = Any
        if last:
            container[step] = _value(override.text, hint, here)
            return
        if step not in container or container[step] is None:
            raise _error(here, "is not set in the file: set the whole value (PATH={...})")
        container = container[step]


def _config_class(data: dict[str, Any], hint: Any, registry: Registry | None) -> type | None:
    """The attrs class whose fields ``data``'s keys are: the one its tag names, else the hint."""
    declared = _unwrap_optional(hint)
    tag = data.get("__type__")
    if isinstance(declared, type) and issubclass(declared, TaggedConfig) and isinstance(tag, str):
        from .._plugins._registry import default_registry

        try:
            return (registry if registry is not None else default_registry()).get(tag)
        except Exception:  # an unknown type is reported when the data is structured
            return None
    return declared if isinstance(declared, type) and attrs.has(declared) else None


def _field_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: the values are checked when structured
        hints = {}
    return {field.name: hints.get(field.name, Any) for field in attrs.fields(cls)}


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else hint
    return hint


def _item_type(hint: Any) -> Any:
    args = typing.get_args(_unwrap_optional(hint))
    if not args:
        return Any
    return args[0]


def _value(text: str, hint: Any, path: str) -> Any:
    """``text`` read as the field's type (see the module docstring)."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint)
    )
    if optional and text.lower() in _NULLS:
        return None
    declared = _unwrap_optional(hint)
    if declared is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise _error(path, f"expects true or false, got {text!r}")
    if declared is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise _error(path, f"expects an integer, got {text!r}") from None
    if declared is float:
        try:
            return float(text)
        except ValueError:
            raise _error(path, f"expects a number (like 0.001 or 1e-4), got {text!r}") from None
    if declared in (str, Path):
        return text
    if typing.get_origin(declared) is typing.Literal:
        for choice in typing.get_args(declared):
            if str(choice) == text:
                return choice
        choices = ", ".join(str(choice) for choice in typing.get_args(declared))
        raise _error(path, f"expects one of {choices}, got {text!r}")
    return _flow_value(text, path)


def _flow_value(text: str, path: str) -> Any:
    """Lists, mappings and untyped values: YAML flow syntax, read as the file loader reads."""
    import yaml

    from ._loading import _yaml_loader, check_plain_data

    try:
        value = yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as error:
        raise _error(path, f"{text!r} is not a YAML value: {str(error).splitlines()[0]}") from None
    try:
        check_plain_data(value)
    except ConfigError as error:
        raise _error(path, str(error.issues[0].message)) from None
    return value


def _error(path: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path, message)], source=SOURCE)
