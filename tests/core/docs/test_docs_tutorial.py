"""The tutorial shows the scaffold's files inline, and they are exactly what ``dacapo-trainers
new-plugin my-trainer`` writes; the scaffold's README names only files it writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_pages import code_blocks, page_files

from dacapo_trainers._scaffold import write_plugin

#: What the tutorial must show: every file a plugin author edits.
SHOWN = {
    "pyproject.toml",
    "src/my_trainer/__init__.py",
    "src/my_trainer/plugin.py",
    "src/my_trainer/config.py",
    "src/my_trainer/trainer.py",
    "tests/test_my_trainer_conformance.py",
    "tests/test_my_trainer_config.py",
}


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scaffold") / "my-trainer"
    write_plugin("my-trainer", folder)
    return folder


def test_the_tutorial_shows_every_file_an_author_edits() -> None:
    assert set(page_files("tutorial.rst")) == SHOWN


@pytest.mark.parametrize("relative", sorted(SHOWN))
def test_each_file_shown_is_what_the_scaffold_writes(scaffold: Path, relative: str) -> None:
    shown = page_files("tutorial.rst")[relative]
    written = (scaffold / relative).read_text(encoding="utf-8")
    assert shown == written, (
        f"docs/tutorial.rst shows {relative} differently from what `dacapo-trainers new-plugin "
        "my-trainer` writes; paste the scaffold's file into the code block"
    )


def test_the_readme_names_only_files_the_scaffold_writes(scaffold: Path) -> None:
    readme = (scaffold / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:src|tests)/[\w./]+\.py)`", readme))
    assert "tests/test_my_trainer_conformance.py" in named
    missing = sorted(path for path in named if not (scaffold / path).is_file())
    assert not missing, f"README.md names {missing}, which the scaffold does not write"


def test_the_reader_takes_only_captioned_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        "Text.\n\n.. code-block:: console\n\n   $ pip install x\n\n"
        ".. code-block:: python\n   :caption: src/x/a.py\n\n   def f():\n\n       return 1\n\n"
        "More text.\n"
    )
    assert code_blocks.page_files(page) == {"src/x/a.py": "def f():\n\n    return 1\n"}
    page.write_text(page.read_text() + ".. code-block:: python\n   :caption: src/x/a.py\n\n   x\n")
    with pytest.raises(ValueError, match=r"two code blocks show src/x/a\.py"):
        code_blocks.page_files(page)
