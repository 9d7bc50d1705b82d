"""Sphinx configuration: offline, quick, and strict (the build runs with -W).

The tutorial shows the files ``dacapo-trainers new-plugin my-trainer`` writes: they are
generated here, at every build, into ``_build/example-plugin`` (so they cannot drift from the
scaffold), and put on ``sys.path`` so that the doctest builder runs the examples against them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sphinx.util import logging

import dacapo_trainers
from dacapo_trainers._scaffold import write_plugin

HERE = Path(__file__).parent
EXAMPLE = HERE / "_build" / "example-plugin" / "my-trainer"

if EXAMPLE.exists():
    shutil.rmtree(EXAMPLE)
write_plugin("my-trainer", EXAMPLE)
sys.path.insert(0, str(EXAMPLE / "src"))

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


def _check_reference_is_complete(app, exception):  # type: ignore[no-untyped-def]
    """Warn (an error under -W) for public names the reference pages do not document."""
    if exception is not None or app.builder.name != "html":
        return
    import dacapo_trainers.reference
    import dacapo_trainers.testing

    documented = set(app.env.domaindata["py"]["objects"])
    logger = logging.getLogger(__name__)
    for module in (dacapo_trainers, dacapo_trainers.reference, dacapo_trainers.testing):
        for name in module.__all__:
            if name.startswith("__"):
                continue
            if f"{module.__name__}.{name}" not in documented:
                logger.warning(
                    "%s.%s is public (in __all__) but not documented in docs/reference/",
                    module.__name__,
                    name,
                )


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("build-finished", _check_reference_is_complete)
