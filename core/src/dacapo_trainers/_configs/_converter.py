"""The config converter: cattrs with DaCapo's ``"__type__"`` tag, strict types, readable errors.

Structuring a :class:`TaggedConfig` reads the ``"__type__"`` tag, asks the registry for the
class (loading only the plugin that declares it), checks that it is a subclass of the declared
field type, and structures the remaining keys (unknown keys are errors). Unstructuring writes
``"__type__"`` first, as DaCapo does, so DaCapo's stored configs load unchanged and ours load
in DaCapo.
"""

from __future__ import annotations

import difflib
import re
import traceback
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from .._contract._config import (
    ArchitectureConfig,
    ArrayConfig,
    DatasetConfig,
    DataSplitConfig,
    StartConfig,
    TaggedConfig,
    TaskConfig,
    TrainerConfig,
)
from .._errors import ConfigError, ConfigIssue, DacapoTrainersError, first_line
from .._plugins._registry import Registry, default_registry

T = TypeVar("T")

TAG = "__type__"
# Numbers as YAML 1.1 leaves them in strings ("1e-4"); accepted for float fields only.
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class _Problem(Exception):
    """A leaf problem raised inside structuring; becomes one :class:`ConfigIssue`."""


def _describe(value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return "a mapping" if isinstance(value, Mapping) else "a list"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _label(base: type) -> str:
    """How errors name what a field expects: "trainer config", "AugmentConfig", "config"."""
    kind = _kind_of(base)
    return kind if kind in (base.__name__, "config") else f"{kind} config"


def _kind_of(base: type) -> str:
    for kind_base, word in (
        (TrainerConfig, "trainer"),
        (ArchitectureConfig, "architecture"),
        (TaskConfig, "task"),
        (DatasetConfig, "dataset"),
        (DataSplitConfig, "datasplit"),
        (ArrayConfig, "array"),
        (StartConfig, "start"),
    ):
        if issubclass(base, kind_base):
            return word
    return "config" if base is TaggedConfig else base.__name__


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(f"expected int, got {_describe(value)}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Problem(f"expected float, got {_describe(value)}")
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range
        raise _Problem("expected float, got an integer too large for a float") from None


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise _Problem(f"expected str, got {_describe(value)}")
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise _Problem(f"expected bool (true or false), got {_describe(value)}")
    return value


def _path(value: Any, _: type) -> Path:
    if not isinstance(value, str):
        raise _Problem(f"expected a path string, got {_describe(value)}")
    return Path(value)


class ConfigConverter:
    """Structures and unstructures configs through a :class:`Registry`.

    Use :func:`structure_config`, :func:`unstructure_config` and :func:`load_config` for the
    process-wide default registry; make a ``ConfigConverter(registry)`` for another one.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        converter = cattrs.Converter(forbid_extra_keys=True)
        converter.register_structure_hook(int, _strict_int)
        converter.register_structure_hook(float, _strict_float)
        converter.register_structure_hook(str, _strict_str)
        converter.register_structure_hook(bool, _strict_bool)
        converter.register_structure_hook(Path, _path)
        converter.register_unstructure_hook(Path, str)
        # Unstructured data is JSON's: every tuple field (``tuple[float, float]``,
        # ``tuple[int, ...]``) becomes a list, so that data read back from a JSON file compares
        # equal to data unstructured in memory (resuming a run depends on it).
        converter.register_unstructure_hook_func(_is_tuple_type, self._unstructure_sequence)
        is_tagged = _is_tagged_class
        converter.register_structure_hook_func(is_tagged, self._structure_tagged)
        converter.register_unstructure_hook_func(is_tagged, self._unstructure_tagged)
        converter.register_structure_hook_func(_is_plain_attrs_class, self._structure_plain)
        self._cattrs = converter
        self._structure_fns: dict[type, Callable[[Mapping[str, Any], type], Any]] = {}
        self._unstructure_fns: dict[type, Callable[[Any], dict[str, Any]]] = {}

    # -- public ----------------------------------------------------------------------------------

    def structure(self, data: Any, cls: type[T], *, source: str | None = None) -> T:
        """Build a ``cls`` from plain data; raises :class:`ConfigError` listing every problem."""
        try:
            return self._cattrs.structure(data, cls)
        except ConfigError:
            raise
        except Exception as error:
            issues = list(_issues(error, "$"))
            raise ConfigError(issues, source=source) from None

    def unstructure(self, config: Any) -> Any:
        """Plain data (JSON-ready) for a config, with ``"__type__"`` first in tagged configs."""
        return self._cattrs.unstructure(config)

    # -- hooks -----------------------------------------------------------------------------------

    def _structure_tagged(self, data: Any, declared: type[TaggedConfig]) -> TaggedConfig:
        kind = _kind_of(declared)
        if not isinstance(data, Mapping):
            raise _Problem(
                f"expected {_label(declared)} (a mapping with {TAG!r}), got {_describe(data)}"
            )
        if TAG not in data:
            names = [c.type_name() for c in self.registry.subclasses_of(declared)]
            hint = f" (e.g. {', '.join(names[:5])})" if names else ""
            raise _Problem(
                f"missing {TAG!r}: say which {kind} type this is{hint}; "
                "`dacapo-trainers plugins` lists the installed types"
            )
        tag = data[TAG]
        if not isinstance(tag, str):
            raise _Problem(f"{TAG!r} must be a type name string, got {_describe(tag)}")
        if declared is TaggedConfig and "Trainer" in tag:  # a top-level file names its kind
            kind = "trainer"
        cls = self.registry.get(tag, kind=kind, base=declared)
        if not issubclass(cls, declared):
            raise _Problem(
                f"{tag!r} cannot be used here: {_label(declared)} (a subclass of "
                f"{declared.__name__}) is expected"
            )
        fields = {key: value for key, value in data.items() if key != TAG}
        return self._structure_plain(fields, cls)  # type: ignore[no-any-return]

    def _structure_plain(self, data: Any, cls: type) -> Any:
        if not isinstance(data, Mapping):
            raise _Problem(f"expected a mapping ({cls.__name__}), got {_describe(data)}")
        function = self._structure_fns.get(cls)
        if function is None:
            function = make_dict_structure_fn(
                cls, self._cattrs, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
            )
            self._structure_fns[cls] = function
        return function(data, cls)

    def _unstructure_sequence(self, value: Any) -> list[Any]:
        return [self._cattrs.unstructure(item) for item in value]

    def _unstructure_tagged(self, config: TaggedConfig) -> dict[str, Any]:
        cls = type(config)
        function = self._unstructure_fns.get(cls)
        if function is None:
            function = make_dict_unstructure_fn(cls, self._cattrs)
            self._unstructure_fns[cls] = function
        return {TAG: cls.type_name(), **function(config)}


def _is_tuple_type(cls: Any) -> bool:
    return cls is tuple or typing.get_origin(cls) is tuple


def _is_tagged_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, TaggedConfig)


def _is_plain_attrs_class(cls: Any) -> bool:
    return isinstance(cls, type) and attrs.has(cls) and not issubclass(cls, TaggedConfig)


def _issues(error: BaseException, path: str) -> list[ConfigIssue]:
    """Flatten a (cattrs) exception into path-qualified issues."""
    if isinstance(error, ForbiddenExtraKeysError):
        return [_unknown_key(path, key, error.cl) for key in sorted(error.extra_fields)]
    if isinstance(error, (ClassValidationError, IterableValidationError)):
        issues: list[ConfigIssue] = []
        with_notes, without = error.group_exceptions()
        for sub_error, note in with_notes:
            if isinstance(note, IterableValidationNote):
                sub_path = f"{path}[{note.index}]"
            else:
                sub_path = f"{path}.{note.name}"
            if isinstance(sub_error, KeyError) and not isinstance(error, IterableValidationError):
                issues.append(ConfigIssue(sub_path, "required field is missing"))
            else:
                issues.extend(_issues(sub_error, sub_path))
        for sub_error in without:
            if isinstance(error, ClassValidationError) and isinstance(sub_error, ValueError):
                issues.append(_validator_issue(path, sub_error, error.cl))
            else:
                issues.extend(_issues(sub_error, path))
        return issues
    if isinstance(error, ExceptionGroup):
        return [issue for sub in error.exceptions for issue in _issues(sub, path)]
    if isinstance(error, DacapoTrainersError):
        return [ConfigIssue(path, str(error), error)]
    if isinstance(error, _Problem):
        return [ConfigIssue(path, str(error))]
    if isinstance(error, (ValueError, TypeError, KeyError)):
        return [ConfigIssue(path, f"invalid value ({first_line(error, limit=None)})")]
    raise error  # not a config problem: a bug worth its traceback


def _validator_issue(path: str, error: ValueError, cls: type) -> ConfigIssue:
    """A field validator's refusal, placed on its field: the one whose name starts the
    message, else the one attrs handed the validator that raised."""
    message = first_line(error, limit=None)
    first, _, rest = message.partition(" ")
    fields = attrs.fields_dict(cls) if attrs.has(cls) else {}
    if first in fields and rest:
        return ConfigIssue(f"{path}.{first}", rest)
    field = _validated_field(error, fields)
    return ConfigIssue(f"{path}.{field}" if field else path, message)


def _validated_field(error: BaseException, fields: Mapping[str, Any]) -> str | None:
    """The field whose validator raised ``error``: attrs passes every validator the field's
    ``Attribute``; the innermost frame holding one of ``fields`` is the validator's."""
    found = None
    for frame, _ in traceback.walk_tb(error.__traceback__):
        for value in frame.f_locals.values():
            if isinstance(value, attrs.Attribute) and value.name in fields:
                found = value.name
    return found


def _unknown_key(path: str, key: str, cls: type) -> ConfigIssue:
    known = [field.name for field in attrs.fields(cls)]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigIssue(
        f"{path}.{key}",
        f"unknown key for {cls.__name__}{hint}; known keys: {', '.join(known)}",
    )


def structure_config(
    data: Any,
    cls: type[T] = TaggedConfig,  # type: ignore[assignment]
    *,
    registry: Registry | None = None,
    source: str | None = None,
) -> T:
    """Build a config of class ``cls`` (default: any tagged config) from plain data.

    :raises ConfigError: with every problem, each with its path (``$.augments[1].scale``).
    """
    return ConfigConverter(registry).structure(data, cls, source=source)


def unstructure_config(config: Any, *, registry: Registry | None = None) -> Any:
    """Plain, JSON-ready data for ``config``; ``structure_config`` of it gives an equal config."""
    return ConfigConverter(registry).unstructure(config)
