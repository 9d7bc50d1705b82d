"""Which heavy modules selecting a type (and validating a config) imports, in a fresh interpreter.

Used by ``dacapo-trainers plugins --check`` and by the conformance kit: a plugin's entry-point
module that imports torch at top level makes ``validate`` and ``plugins`` seconds slower.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

# Run in a child interpreter: record who first imports each heavy module, then select the type
# through a fresh registry (loading its entry point) and structure the config, as
# `dacapo-trainers validate` does.
_PROBE = r"""
import importlib.abc, json, sys, traceback

heavy = set(json.loads(sys.argv[1]))
type_name = sys.argv[2]
first = {}


class _Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in heavy and top not in first:
            frames = [
                f for f in traceback.extract_stack()[:-1]
                if not f.filename.startswith("<")
                and "importlib" not in f.filename
                and "pluggy" not in f.filename
            ]
            first[top] = [f"{f.filename}:{f.lineno}: {(f.line or '').strip()}" for f in frames]
        return None


sys.meta_path.insert(0, _Spy())
from dacapo_trainers import Registry, TaggedConfig, structure_config

registry = Registry()
registry.get(type_name)
data = json.loads(sys.stdin.read())
if data is not None:
    structure_config(data, TaggedConfig, registry=registry)
print("DACAPO-PROBE " + json.dumps(first))
"""


#: Modules whose import costs seconds: selecting a type or validating a config must not import
#: them (only building and running a trainer may).
HEAVY_MODULES: tuple[str, ...] = ("torch", "gunpowder", "tensorflow", "jax")


class ProbeError(Exception):
    """The child interpreter could not select or structure the config."""


def heavy_imports(
    type_name: str, data: Any = None, heavy: Sequence[str] = HEAVY_MODULES
) -> dict[str, list[str]]:
    """Heavy modules (of ``heavy``) imported by selecting ``type_name`` and structuring ``data``.

    ``data`` None: selecting the type only (loading its plugin).

    Maps each one to the frames that imported it, outermost first (the last is the import
    statement). Runs in a fresh interpreter with this one's ``sys.path``.

    :raises ProbeError: with the child's stderr if it failed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(heavy)), type_name],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    marker = "DACAPO-PROBE "
    lines = [line for line in result.stdout.splitlines() if line.startswith(marker)]
    if result.returncode != 0 or not lines:
        raise ProbeError(result.stderr.strip() or f"exit status {result.returncode}")
    found: dict[str, list[str]] = json.loads(lines[-1][len(marker) :])
    return found
