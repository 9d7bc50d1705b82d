"""Reading config files: YAML (safe loader only), JSON and TOML, chosen by file suffix."""

from __future__ import annotations

import functools
import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from ._config import TaggedConfig
from ._converter import ConfigConverter
from ._errors import ConfigError, ConfigIssue
from ._registry import Registry

T = TypeVar("T")

SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON", ".toml": "TOML"}


def read_config_file(path: str | Path) -> Any:
    """The plain data in a YAML, JSON or TOML file.

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
        return _parse(text, SUFFIXES[suffix])
    except ConfigError as error:
        raise ConfigError(error.issues, source=str(path)) from None


def _parse(text: str, kind: str) -> Any:
    if kind == "JSON":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise _syntax(kind, error.msg, error.lineno, error.colno) from None
    if kind == "TOML":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise _syntax(kind, str(error), None, None) from None
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise _syntax(kind, str(error.problem), line, column) from None
    except yaml.YAMLError as error:
        raise _syntax(kind, str(error).splitlines()[0], None, None) from None


@functools.cache
def _yaml_loader() -> Any:
    """PyYAML's SafeLoader plus one tag: DaCapo's ``!!python/tuple``, read as a list.

    DaCapo's file config store writes its configs with ``yaml.dump``, which tags every tuple
    (coordinates, shapes, ROIs) ``!!python/tuple``. That tag builds nothing but a sequence, so
    it is safe to accept; every other ``!!python/...`` tag is still refused by the safe loader
    and nothing is ever executed.
    """
    import yaml

    class DacapoSafeLoader(yaml.SafeLoader):
        """SafeLoader that reads ``!!python/tuple`` as a plain sequence."""

    def construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        assert isinstance(node, yaml.SequenceNode)
        return loader.construct_sequence(node, deep=True)

    DacapoSafeLoader.add_constructor("tag:yaml.org,2002:python/tuple", construct_tuple)
    return DacapoSafeLoader


def _syntax(kind: str, message: str, line: int | None, column: int | None) -> ConfigError:
    where = f" at line {line}, column {column}" if line is not None else ""
    return ConfigError([ConfigIssue("$", f"{kind} syntax error{where}: {message}")])


def load_config(
    path: str | Path,
    cls: type[T] = TaggedConfig,  # type: ignore[assignment]
    *,
    registry: Registry | None = None,
) -> T:
    """Read a config file and structure it as ``cls`` (default: any tagged config).

    :raises ConfigError: for an unreadable file or malformed content.
    """
    data = read_config_file(path)
    return ConfigConverter(registry).structure(data, cls, source=str(path))
