"""Known distributions: the project's published plugins, for advice about types not installed.

The list is data (``known_distributions.toml``), not code: the registry loads what the
installed distributions' entry points declare, and consults this list only to word an error
("pip install ...") or to keep ``new-plugin`` from taking a published name.
"""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from collections.abc import Mapping

_DATA = "known_distributions.toml"


@functools.cache
def known_distributions() -> Mapping[str, tuple[str, ...]]:
    """Each published distribution and the type names it declares."""
    text = (importlib.resources.files(__package__) / _DATA).read_text(encoding="utf-8")
    return {name: tuple(table["types"]) for name, table in tomllib.loads(text).items()}


def known_types() -> set[str]:
    """Every type name a published distribution declares."""
    return {name for names in known_distributions().values() for name in names}


def distribution_of(type_name: str) -> str | None:
    """The published distribution that declares ``type_name``, or None."""
    return next((d for d, names in known_distributions().items() if type_name in names), None)
