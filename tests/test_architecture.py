"""The shape of src/dip (docs/architecture.md): wings, no import cycle, readable sizes, one list per mode.

The layer contract itself is checked by import-linter (`lint-imports`, pyproject.toml) in `make test`; these tests
check what a layer contract cannot see: cycles inside a wing, counting every import (top-level, lazy,
TYPE_CHECKING), and the sizes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from conftest import ROOT

SRC = ROOT / "src"
WINGS = {"core", "engine", "data", "inpaint", "report"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "dip").rglob("*.py"):
        name = ".".join(p.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every dip module ``path`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dip":
            found |= {node.module} & modules.keys()
            found |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & modules.keys()
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that comes back to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle_counting_every_import():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_tree_is_the_architecture():
    top = {p.stem for p in (SRC / "dip").glob("*.py")}
    assert len(top) <= 8, sorted(top)
    assert {p.name for p in (SRC / "dip").iterdir() if p.is_dir() and (p / "__init__.py").exists()} == WINGS
    for wing in WINGS:  # each wing says what it owns
        assert ast.get_docstring(ast.parse((SRC / "dip" / wing / "__init__.py").read_text()))


def _sizes(tree: ast.AST, kind: type) -> list[tuple[str, int]]:
    return [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree) if isinstance(n, kind)]


def test_no_module_class_or_function_too_long_to_read_in_one_sitting():
    too_long = []
    for p in [*(SRC / "dip").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        text = p.read_text()
        tree = ast.parse(text)
        where = p.relative_to(ROOT)
        if len(text.splitlines()) > 300:
            too_long.append(f"{where}: {len(text.splitlines())} lines")
        too_long += [f"{where}: class {n} {k} lines" for n, k in _sizes(tree, ast.ClassDef) if k > 150]
        too_long += [f"{where}: {n}() {k} lines" for n, k in _sizes(tree, (ast.FunctionDef, ast.AsyncFunctionDef))
                     if k > 60]
    assert not too_long, too_long


def test_precisions_are_listed_once_and_every_schema_agrees():
    from dip.core.modes import PRECISION_CHOICES, PRECISIONS

    config_schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    auto_schema = yaml.safe_load((SRC / "dip/data/schemas/auto.schema.yaml").read_text())

    def enums(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "precision" and isinstance(value, dict) and "enum" in value:
                    yield value["enum"]
                yield from enums(value)
        elif isinstance(node, list):
            for value in node:
                yield from enums(value)

    found = [*enums(config_schema), *enums(auto_schema)]
    assert found and all(tuple(e) in (PRECISIONS, PRECISION_CHOICES) for e in found), found
    assert PRECISION_CHOICES == ("auto", *PRECISIONS)


def test_config_readme_is_made_from_the_schema():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "tools" / "config_readme.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    text = (ROOT / "config" / "README.md").read_text()
    assert "| `profiles.*.seeds` |" in text and "| `tasks.*.drop` |" in text
