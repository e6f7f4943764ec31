"""The package's shape (issue 12): short modules and functions, no private names imported across
modules, subpackages stacked in one direction. The test walks the source and names offenders."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

PACKAGE = REPO / "solver"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# The data flow of docs/design.md, bottom to top: a module may import its own layer and the ones
# below it, never one above.
# The optimizer works on integer tables; the plan document (its schema and the verifier, which
# checks every constraint family) sits above it, and planning (solve: problem -> optimizer -> plan
# -> verify, relaxations) above both.
LAYERS = ("errors", "runtime", "inputs", "physics", "optimize", "document", "planning", "review",
          "render", "importers", "calibration", "runs", "cli", "entry")



def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "data" not in p.relative_to(PACKAGE).parts)


def _layer(module: str) -> str:
    """solver.physics.cost -> physics; solver.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def test_modules_are_at_most_400_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_are_at_most_60_lines() -> None:
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every `from solver... import ...` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("solver"):
            found.append((node.module, [a.name for a in node.names]))
    return found


def test_no_private_name_is_imported_across_modules() -> None:
    private = [f"{p.relative_to(REPO)}: {module}.{name}"
               for p in _modules() for module, names in _imports(p)
               for name in names if name.startswith("_")]
    assert not private, f"private names imported from another module: {private}"


def test_imports_run_one_way_through_the_layers() -> None:
    upward = []
    for path in _modules():
        here = _layer(_module_name(path))
        for module, _ in _imports(path):
            there = _layer(module)
            if there in LAYERS and here in LAYERS and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{path.relative_to(REPO)} ({here}) imports {module} ({there})")
    assert not upward, f"imports against the data flow: {upward}"


def test_at_least_five_subpackages() -> None:
    packages = [p.parent.name for p in PACKAGE.glob("*/__init__.py") if p.parent.name != "data"]
    assert len(packages) >= 5, packages
