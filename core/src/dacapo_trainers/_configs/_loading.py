"""Reading config files: YAML (safe loader only), JSON and TOML, chosen by file suffix.

:func:`load_config` reads any config file (a run file or a tagged config); the other public
functions here are thin aliases kept for older code (:func:`load_run_config`) or its first
half (:func:`read_config_file`: the plain data, not structured).

Whatever a file holds, reading it ends in plain data or a :class:`ConfigError`: nesting is
limited to :data:`MAX_DEPTH` levels (deeper files would exhaust Python's stack), YAML aliases
may not expand to more than :data:`MAX_VALUES` values (a few kilobytes of aliases can stand
for gigabytes once a config is built from them), every mapping key must be a string, and no
mapping may give a key twice (YAML and JSON readers would keep the last one silently).
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from .._contract._config import TaggedConfig
from .._errors import ConfigError, ConfigIssue, first_line
from .._plugins._registry import Registry
from ._converter import ConfigConverter
from ._duplicates import (
    DuplicatedKeys,
    duplicate_dataset_names,
    json_object,
    refuse_duplicate_yaml_keys,
)
from ._overrides import apply_overrides
from ._run_config import RunConfig, is_run_data

T = TypeVar("T")

SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON", ".toml": "TOML"}
#: The deepest nesting of lists and mappings a config file may have (real ones need about 10).
MAX_DEPTH = 100
#: The most values (scalars, lists, mappings) a config may expand to, aliases expanded.
MAX_VALUES = 1_000_000


def read_config_file(path: str | Path) -> Any:
    """The plain data in a YAML, JSON or TOML file: what :func:`load_config` structures.

    For code that looks at a file's data before (or instead of) building configs from it; to
    read a config, call :func:`load_config`, which reads the file through this function.

    :raises ConfigError: the file is missing, has another suffix, or does not parse (the
        message gives the line and column).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(
            [
                ConfigIssue(
                    "$",
                    f"unsupported file type {suffix or '(none)'!r}; use .yaml/.yml, .json or .toml",
                )
            ],
            source=str(path),
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue("$", "file not found")], source=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigIssue("$", f"cannot read file: {error}")], str(path)) from None
    try:
        data = _parse(text, SUFFIXES[suffix])
        check_plain_data(data)
    except ConfigError as error:
        raise ConfigError(error.issues, source=str(path)) from None
    return data


def _parse(text: str, kind: str) -> Any:
    try:
        return _parse_unlimited(text, kind)
    except RecursionError:
        deep = f"nesting too deep (a config needs {MAX_DEPTH} levels at most)"
        raise _syntax(kind, deep) from None
    except ValueError as error:
        if "digits" in str(error):  # Python's int() refuses more than 4300 digits
            raise _syntax(kind, "a number has more than 4300 digits") from None
        raise _syntax(kind, first_line(error)) from None


def _parse_unlimited(text: str, kind: str) -> Any:
    if kind == "JSON":
        try:
            return json.loads(text, object_pairs_hook=json_object)
        except json.JSONDecodeError as error:
            raise _syntax(kind, error.msg, error.lineno, error.colno) from None
    if kind == "TOML":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise _syntax(kind, str(error)) from None
    import yaml

    loader = _yaml_loader()(text)  # a SafeLoader subclass
    try:
        node = loader.get_single_node()
        if node is None:  # an empty document
            return None
        refuse_duplicate_yaml_keys(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise _syntax(kind, str(error.problem), line, column) from None
    except yaml.YAMLError as error:
        raise _syntax(kind, str(error).splitlines()[0]) from None
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


@functools.cache
def _yaml_loader() -> Any:
    """PyYAML's SafeLoader, refusing documents nested deeper than :data:`MAX_DEPTH`, plus one
    tag: DaCapo's ``!!python/tuple``, read as a list.

    The composer builds nodes recursively, so a deep document would end in a RecursionError
    (after using the whole stack); this loader stops at the limit with the line of the node.
    DaCapo's file config store writes its configs with ``yaml.dump``, which tags every tuple
    (coordinates, shapes, ROIs) ``!!python/tuple``. That tag builds nothing but a sequence, so
    it is safe to accept; every other ``!!python/...`` tag is still refused by the safe loader
    and nothing is ever executed.
    """
    import yaml

    class LimitedSafeLoader(yaml.SafeLoader):
        """SafeLoader with a nesting limit (see :func:`_yaml_loader`)."""

        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.depth >= MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nesting deeper than {MAX_DEPTH} levels (a config needs far fewer)",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        assert isinstance(node, yaml.SequenceNode)
        return loader.construct_sequence(node, deep=True)

    LimitedSafeLoader.add_constructor("tag:yaml.org,2002:python/tuple", construct_tuple)
    return LimitedSafeLoader


def check_plain_data(data: Any) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH`, expanding (through shared or cyclic
    YAML aliases) to more than :data:`MAX_VALUES` values, or with mapping keys that are not
    strings. Shared values are measured once, so this takes time linear in the file.

    :raises ConfigError: naming the path of the problem.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id of a list/mapping -> (values, height)
    inside: set[int] = set()  # ids of the lists/mappings that hold the one measured

    def measure(value: Any, path: str, depth: int) -> tuple[int, int]:
        if not isinstance(value, (dict, list, tuple)):
            return 1, 0
        if id(value) in inside:
            raise _issue(path, "it contains itself (a YAML alias to an enclosing value)")
        if depth >= MAX_DEPTH:
            raise _issue(path, f"nesting deeper than {MAX_DEPTH} levels")
        known = sizes.get(id(value))
        if known is not None:
            if depth + known[1] > MAX_DEPTH:
                raise _issue(path, f"nesting deeper than {MAX_DEPTH} levels")
            return known
        if isinstance(value, DuplicatedKeys):
            key = value.duplicates[0]
            raise _issue(
                f"{path}.{key}",
                f"the key {key!r} is given twice in this object; JSON readers would silently "
                "keep the last one. Remove one of them",
            )
        if isinstance(value, dict):
            items = []
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _issue(
                        path,
                        f"the key {key!r} ({type(key).__name__}) is not a string; keys of a "
                        "config are field names (quote it in YAML)",
                    )
                items.append((f"{path}.{key}", item))
        else:
            items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        total, height = 1, 0
        inside.add(id(value))
        for item_path, item in items:
            values, item_height = measure(item, item_path, depth + 1)
            total += values
            height = max(height, item_height + 1)
            if total > MAX_VALUES:
                raise _issue(
                    path,
                    f"it expands to more than {MAX_VALUES:,} values (YAML aliases repeat what "
                    "they refer to); write the config without nested aliases",
                )
        inside.discard(id(value))
        sizes[id(value)] = (total, height)
        return total, height

    measure(data, "$", 0)


def _issue(path: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path, message)])


def _syntax(
    kind: str, message: str, line: int | None = None, column: int | None = None
) -> ConfigError:
    where = f" at line {line}, column {column}" if line is not None else ""
    return ConfigError([ConfigIssue("$", f"{kind} syntax error{where}: {message}")])


@overload
def load_config(
    path: str | Path,
    cls: None = None,
    *,
    registry: Registry | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig | TaggedConfig: ...


@overload
def load_config(
    path: str | Path,
    cls: type[T],
    *,
    registry: Registry | None = None,
    overrides: Sequence[str] = (),
) -> T: ...


def load_config(
    path: str | Path,
    cls: type[Any] | None = None,
    *,
    registry: Registry | None = None,
    overrides: Sequence[str] = (),
) -> Any:
    """Read any config file (YAML, JSON or TOML): a run file or a tagged config.

    This is the one function that reads config files: the CLI, :func:`~dacapo_trainers.train`
    and the test kit all read through it.

    :param path: a ``.yaml``/``.yml``, ``.json`` or ``.toml`` file.
    :param cls: what the file must hold. None (the default): what the file holds decides,
        a :class:`~dacapo_trainers.RunConfig` for a run file (a mapping with
        ``trainer_config`` and no ``"__type__"``), else the config its ``"__type__"`` names
        (any :class:`~dacapo_trainers.TaggedConfig`). A class (``RunConfig``,
        ``TrainerConfig``, a plugin's config class, ...): the file must hold one of those.
    :param registry: where ``"__type__"`` names are looked up; default
        :func:`~dacapo_trainers.default_registry`.
    :param overrides: ``PATH=VALUE`` settings applied to the file's data before it is
        structured, as ``--set`` gives them on the command line
        (``trainer_config.learning_rate=1e-4``; see :doc:`/configure`).
    :raises ConfigError: the file is missing, unreadable or malformed, an override does not
        fit it, or its content is not a valid ``cls``; every problem is reported with its path
        (``$.datasets[0].container``) and the file's name.
    """
    data = read_config_file(path)
    if cls is None:
        cls = RunConfig if is_run_data(data) else TaggedConfig
    problem = _kind_problem(data, cls)
    if problem is not None:
        raise ConfigError([ConfigIssue("$", problem)], source=str(path))
    data = apply_overrides(data, overrides, cls, registry)
    source = f"{path} (with --set)" if overrides else str(path)
    config = ConfigConverter(registry).structure(data, cls, source=source)
    if isinstance(config, RunConfig):
        issues = duplicate_dataset_names(config)
        if issues:
            raise ConfigError(issues, source=source)
    return config


def _kind_problem(data: Any, cls: type[Any]) -> str | None:
    """Why ``data`` is the other kind of file than ``cls`` asks for (run vs. tagged), or None:
    one sentence instead of an issue for every key that does not fit."""
    if cls is RunConfig and isinstance(data, dict) and isinstance(data.get("__type__"), str):
        return (
            f"this file holds a {data['__type__']} config, not a run; a run file has "
            "trainer_config, architecture_config, task_config, datasets and num_iterations "
            "(and no '__type__')"
        )
    if isinstance(cls, type) and issubclass(cls, TaggedConfig) and is_run_data(data):
        return f"this file holds a run (it has trainer_config), not a {cls.__name__}"
    return None


def load_run_config(path: str | Path, registry: Registry | None = None) -> RunConfig:
    """Read a run file: ``load_config(path, RunConfig, registry=registry)``.

    Kept for code written before :func:`load_config` read run files; prefer
    :func:`load_config`.
    """
    return load_config(path, RunConfig, registry=registry)
