"""The docs' own reader of files shown inline (``docs/code_blocks.py``), for the tests.

A uniquely named helper module (not ``conftest``), as the other helpers of these tests.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_code_blocks", DOCS / "code_blocks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


code_blocks = _load()


def page_files(page: str) -> dict[str, str]:
    """``caption -> text`` of the files ``docs/<page>`` shows inline."""
    result: dict[str, str] = code_blocks.page_files(DOCS / page)
    return result
