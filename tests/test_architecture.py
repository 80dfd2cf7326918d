"""The floor plan holds: no import cycle, each part imports only the parts beneath it, no module over 500 lines.

Imports are read from the source (`ast`), inside functions too: an import deferred into a function
is still a dependency, and a cycle hidden that way is still a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fpi"

PARTS = ("data", "simulator", "model", "scoring", "analysis", "review", "cli", "ui")
BENEATH: dict[str, set[str]] = {
    "base": {"data"},  # the shared vocabulary (errors, config, display names) reads the contract
    "data": set(),
    "simulator": {"data"},
    "model": {"data"},
    "scoring": {"data", "model"},
    "analysis": {"data"},
    "review": {"data", "model", "scoring", "analysis"},
    "cli": {"data", "simulator", "model", "scoring", "analysis", "review"},
    "ui": {"data", "simulator", "model", "scoring", "analysis", "review"},
}
"""Which parts each part may import (besides itself and the base modules at the top of `fpi/`)."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every fpi module `name` imports, at the top or inside a function."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fpi":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.split(".")[0] == "fpi"}
    return {m for m in out if m in MODULES and m != name}


def _part(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PARTS else "base"


def test_there_is_no_import_cycle() -> None:
    graph = {name: _imports(name) for name in MODULES if name != "fpi"}  # the package face only hands names on
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "fpi"))
def test_a_module_imports_only_the_parts_beneath_its_own(name: str) -> None:
    mine = _part(name)
    wrong = sorted(m for m in _imports(name)
                   if (theirs := _part(m)) not in (mine, "base") and theirs not in BENEATH[mine])
    assert not wrong, f"{name} ({mine}) imports {wrong}"


def test_no_module_is_over_500_lines_and_the_top_level_stays_small() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, f"top-level modules: {top}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(PARTS)


def test_private_names_stay_in_their_module() -> None:
    crossing = []
    for name in MODULES:
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fpi":
                crossing += [f"{name} takes {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossing, crossing
