"""Known distributions: the project's published plugins, for advice about types not installed.

The list is data (``known_distributions.toml``), not code: the registry loads what the
installed distributions' entry points declare, and consults this list only to word an error
("pip install ...") or to keep ``new-plugin`` from taking a published name.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import json
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

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


def install_command(distribution: str) -> str:
    """How to install a published ``distribution``: its folder in the source tree the core was
    installed from (``pip install /src/dacapo-trainers/plugins/gunpowder``), else its name."""
    folder = source_folder(distribution)
    return f"pip install {folder}" if folder is not None else f"pip install {distribution}"


def source_folder(distribution: str) -> Path | None:
    """The folder of ``distribution`` in the checkout the core was installed from, or None
    where the core came from an index (read from the core's PEP 610 ``direct_url.json``)."""
    try:
        text = importlib.metadata.distribution("dacapo-trainers").read_text("direct_url.json")
        url = json.loads(text or "{}").get("url", "")
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        return None
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        return None
    core = Path(urllib.request.url2pathname(parsed.path))
    folder = core.parent / "plugins" / distribution.removeprefix("dacapo-trainers-")
    return folder if (folder / "pyproject.toml").is_file() else None
