"""The core's layout is its architecture: subpackages in layers, each importing only the layers
below it (read from the imports themselves, lazy ones included; ``TYPE_CHECKING`` blocks are
annotations, not dependencies), ``reference`` built on the public API alone, few modules left at
the top and none too long to read."""

from __future__ import annotations

import ast
from pathlib import Path

import dacapo_trainers

PACKAGE = Path(dacapo_trainers.__file__).parent
REPO = PACKAGE.parents[2]
#: Bottom to top. A module may import its own layer and those below.
LAYERS = [
    "_errors",
    "_contract",
    "_arrays",
    "_plugins",
    "_configs",
    "_batches",
    "_outputs",
    "_run",
    "_exports",
]
#: Above every layer: the command line, the scaffold, the kit and the public modules.
TOP = {"_cli", "_scaffold", "testing", "__init__", "__main__"}
#: Public modules that belong to a layer: the hook specifications are part of the contract.
PUBLIC_MODULE_LAYERS = {"hookspecs": "_contract"}
MAX_TOP_LEVEL_PRIVATE_MODULES = 8


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Every dacapo_trainers module ``path`` imports at run time, as absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "dacapo_trainers":
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dacapo_trainers"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _unit(dotted: str) -> str | None:
    """The layer unit a dotted name belongs to (its first component below the package)."""
    parts = dotted.split(".")
    return PUBLIC_MODULE_LAYERS.get(parts[1], parts[1]) if len(parts) > 1 else None


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_each_layer_imports_only_its_own_and_lower_layers() -> None:
    violations = []
    for path in _sources():
        unit = _unit(_module_name(path))
        if unit not in LAYERS:
            continue
        allowed = set(LAYERS[: LAYERS.index(unit) + 1])
        for target in _imports(path):
            used = _unit(target)
            layered = used in LAYERS or used in TOP or used == "reference"
            if used is not None and layered and used not in allowed:
                violations.append(f"{_module_name(path)} imports {target}")
    assert violations == []


def test_every_private_subpackage_has_a_layer() -> None:
    units = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert units - {"reference", "testing"} <= set(LAYERS) | TOP


def test_reference_uses_only_the_public_api() -> None:
    """``reference`` could become its own distribution by moving its folder."""

    def public(target: str) -> bool:
        parts = target.split(".")
        return parts[:2] == ["dacapo_trainers", "reference"] or (
            len(parts) <= 2 and not parts[-1].startswith("_")
        )

    outside = [
        f"{_module_name(path)} imports {target}"
        for path in sorted((PACKAGE / "reference").rglob("*.py"))
        for target in _imports(path)
        if not public(target)
    ]
    assert outside == []


def test_few_modules_stay_at_the_top() -> None:
    private = [
        p.name for p in PACKAGE.glob("_*.py") if p.name not in {"__init__.py", "__main__.py"}
    ]
    assert len(private) <= MAX_TOP_LEVEL_PRIVATE_MODULES, private


def test_the_public_surface_is_reexported_from_the_top() -> None:
    for name in dacapo_trainers.__all__:
        assert hasattr(dacapo_trainers, name), name


#: The longest a module of the core or of a plugin may be, in lines: one job per module.
MAX_MODULE_LINES = 400


def test_no_module_is_too_long_to_read() -> None:
    sources = [*_sources(), *sorted((REPO / "plugins").glob("*/src/**/*.py"))]
    too_long = {
        str(path.relative_to(REPO)): lines
        for path in sources
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"split these by job (at most {MAX_MODULE_LINES} lines): {too_long}"
