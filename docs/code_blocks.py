"""The files a docs page shows inline: every ``code-block`` with a ``:caption:`` naming a path.

A page that teaches by showing whole files (the tutorial, the example plugin) writes each as

.. code-block:: python
   :caption: src/my_trainer/plugin.py

   <the file, indented by three spaces>

:func:`page_files` reads them back, so that a test compares them with what
``dacapo-trainers new-plugin`` writes and another builds and installs the package they form;
the docs build (``conf.py``) puts the example plugin's package on ``sys.path`` for the
doctests. Plain Python: no docutils needed.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

_DIRECTIVE = re.compile(r"^\.\. code-block::")
_OPTION = re.compile(r"^\s+:(\w[\w-]*):\s*(.*)$")


def page_files(page: str | Path) -> dict[str, str]:
    """``caption -> file text`` for each captioned code block of the rst file ``page``.

    The text is the block's content dedented, with one final newline.

    :raises ValueError: two blocks name the same file.
    """
    lines = Path(page).read_text(encoding="utf-8").splitlines()
    files: dict[str, str] = {}
    index = 0
    while index < len(lines):
        if not _DIRECTIVE.match(lines[index]):
            index += 1
            continue
        index += 1
        options = {}
        while index < len(lines) and (match := _OPTION.match(lines[index])):
            options[match.group(1)] = match.group(2).strip()
            index += 1
        body = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
            body.append(lines[index])
            index += 1
        caption = options.get("caption")
        if caption is None:
            continue
        if caption in files:
            raise ValueError(f"{page}: two code blocks show {caption}")
        files[caption] = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
    return files


def write_files(files: dict[str, str], root: Path) -> list[Path]:
    """Write ``files`` (paths relative to ``root``); returns the paths written."""
    written = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
