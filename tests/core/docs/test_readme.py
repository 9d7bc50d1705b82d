"""The README's "Use it" section works as written: every type it names is provided by a
package its install line installs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _use_it_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Use it")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def _provided_types(folder: Path) -> set[str]:
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return set(project.get("entry-points", {}).get("dacapo_trainers", {}))


def test_every_type_the_section_names_is_installed_by_its_install_line() -> None:
    section = _use_it_section()
    install = next(line for line in section.splitlines() if "pip install" in line)
    folders = re.findall(r"\./(\S+)", install.split("#")[0])
    folders = [f for f in folders if (REPO / f / "pyproject.toml").exists()]
    assert "core" in folders
    provided = set().union(*(_provided_types(REPO / f) for f in folders))
    named = set(re.findall(r"\b([A-Z]\w*Config)\b", section)) - {"RunConfig"}
    # DaCapo's types the section names as prose (IntensitiesArrayConfig) are the core's too.
    assert named, "the section names no type"
    assert named <= provided, f"named but not installed by {install.strip()!r}: {named - provided}"
