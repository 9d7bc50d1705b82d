"""The pytest plugin part of the kit (entry point ``pytest11``): a fixture and a header line.

pytest imports this in every session of an environment where dacapo-trainers is installed, so
it imports nothing heavy, and its header reads package metadata only and never raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="class")  # type: ignore[misc]
def conformance_data(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy data of a :class:`~dacapo_trainers.testing.TrainerConformance` class.

    Written once per test class, by the class's ``write_data`` (which a class may override).
    """
    cls = request.cls
    if cls is None or not hasattr(cls, "write_data"):
        raise pytest.UsageError(
            "conformance_data is a fixture of TrainerConformance test classes only"
        )
    written: Path = cls().write_data(tmp_path_factory.mktemp("conformance-data"))
    return written


def pytest_report_header(config: Any) -> str:
    """``dacapo-trainers 0.1.0: 5 config types installed (1 not usable: ...)``."""
    try:
        from .._plugins._discovery import PluginState, core_version, discover

        records = discover()
        bad = [r for r in records if r.state is not PluginState.OK]
        line = f"dacapo-trainers {core_version()}: {len(records)} config types installed"
        if bad:
            listed = ", ".join(f"{r.type_name} {r.state.value}" for r in bad[:3])
            more = ", ..." if len(bad) > 3 else ""
            line += f" ({len(bad)} not usable: {listed}{more}; see `dacapo-trainers plugins`)"
        return line
    except Exception as error:  # a header must never break someone's test session
        return f"dacapo-trainers: could not list plugins ({type(error).__name__}: {error})"
