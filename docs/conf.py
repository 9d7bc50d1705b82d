"""Sphinx configuration: offline, quick, and strict (the build runs with -W).

The tutorial and the example plugin show their files inline (``code-block`` with a
``:caption:`` naming the file); ``tests/core/docs/test_docs_tutorial.py`` checks that the
tutorial's are what ``dacapo-trainers new-plugin my-trainer`` writes, and
``tests/core/docs/test_docs_example_plugin.py`` installs the example plugin from its page and
runs the conformance kit on it. For the doctests, the scaffold is written here into
``_build/example-plugin`` and the example plugin's files into ``_build/example-mixup``, both put
on ``sys.path``.

The docs build, warning-free, with the core alone installed (``nox -s docs-core``): parts
generated from modules that are not installed (the plugins' configs, the test kit without
pytest) are wrapped in ``.. requires-module::``, which shows a note instead.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import dacapo_trainers
from dacapo_trainers._scaffold import write_plugin

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from code_blocks import page_files, write_files  # noqa: E402  (docs/code_blocks.py)

EXAMPLE = HERE / "_build" / "example-plugin" / "my-trainer"
MIXUP = HERE / "_build" / "example-mixup" / "mixup-trainer"

for folder in (EXAMPLE, MIXUP):
    if folder.exists():
        shutil.rmtree(folder)
write_plugin("my-trainer", EXAMPLE)
write_files(page_files(HERE / "example_plugin.rst"), MIXUP)
sys.path.insert(0, str(EXAMPLE / "src"))
sys.path.insert(0, str(MIXUP / "src"))

project = "dacapo-trainers"
author = "the dacapo-trainers authors"
copyright = "the dacapo-trainers authors"
release = dacapo_trainers.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
exclude_patterns = ["_build"]
# furo: a sidebar and a content column that fit long API names (as attrs' docs); pinned in
# noxfile.py. tests/docs/test_docs_render.py checks that no page scrolls sideways at 1280 px.
html_theme = "furo"
html_title = f"dacapo-trainers {release}"
html_static_path = ["_static"]
html_css_files = ["wrap.css"]
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

doctest_global_setup = f"""
import importlib.util
import os
import tempfile
from pathlib import Path

tensorboard_missing = importlib.util.find_spec("tensorboard") is None
simple_tensor_missing = importlib.util.find_spec("dacapo_trainers_simple_tensor") is None
docs_folder = Path(r"{HERE}")
_doctest_previous_folder = os.getcwd()
_doctest_folder = tempfile.mkdtemp(prefix="dacapo-trainers-docs-")
os.chdir(_doctest_folder)
"""
doctest_global_cleanup = """
import shutil
os.chdir(_doctest_previous_folder)
shutil.rmtree(_doctest_folder, ignore_errors=True)
"""


def _importable(module: str) -> bool:
    """Whether ``module`` imports here (a plugin may be missing, or the kit's pytest)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class RequiresModule(SphinxDirective):
    """``.. requires-module:: MODULE`` (option ``:install:``, what to pip-install): its
    content where MODULE imports, else a note saying what to install to see it."""

    required_arguments = 1
    has_content = True
    option_spec: ClassVar[dict[str, object]] = {"install": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0]
        container = nodes.container()
        if _importable(module):
            self.state.nested_parse(self.content, self.content_offset, container)
            return list(container.children)
        install = self.options.get("install", module)
        note = nodes.note()
        text = (
            f"This part is generated from ``{module}``, which was not installed where these "
            f"docs were built; ``pip install {install}`` and build them again to see it."
        )
        self.state.nested_parse(StringList([text]), self.content_offset, note)
        return [note]


def _check_reference_is_complete(app, exception):  # type: ignore[no-untyped-def]
    """Warn (an error under -W) for public names the reference pages do not document."""
    if exception is not None or app.builder.name != "html":
        return
    documented = set(app.env.domaindata["py"]["objects"])
    logger = logging.getLogger(__name__)
    for name in ("dacapo_trainers", "dacapo_trainers.reference", "dacapo_trainers.testing"):
        if not _importable(name):  # the kit without pytest: its page shows a note instead
            continue
        module = importlib.import_module(name)
        for public in module.__all__:
            if public.startswith("__"):
                continue
            if f"{module.__name__}.{public}" not in documented:
                logger.warning(
                    "%s.%s is public (in __all__) but not documented in docs/reference/",
                    module.__name__,
                    public,
                )


def setup(app):  # type: ignore[no-untyped-def]
    app.add_directive("requires-module", RequiresModule)
    app.connect("build-finished", _check_reference_is_complete)
