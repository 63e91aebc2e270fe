"""Layers: no import cycle between the subpackages of `compiler`.

The layering reads spec <- resolve <- targets.* <- bundle <- compile/pipeline <- cli, with evaluate
beside (it reads spec and resolve, never the reverse) and serving, modelio and metrics at the
bottom. A cycle anywhere means a lower layer reached up; the message names each import on it.
Every import counts, at module level, inside a function or under TYPE_CHECKING alike.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

Edges = dict[str, dict[str, str]]  # unit -> imported unit -> where (file:line), the first seen


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` (found in `root`)."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _unit(module: str, packages: set[str], top: str) -> str:
    """The innermost subpackage holding `module`, or the module itself when it sits directly in `top`."""
    if module == top or module in packages:
        return module
    parent = module.rpartition(".")[0]
    while parent != top and parent not in packages:
        parent = parent.rpartition(".")[0]
    return module if parent == top else parent


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names an import statement loads (for `from p import x`, p.x when x is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(root: Path, package: str) -> Edges:
    """Imports between the units of `package`: its subpackages and the modules directly in it."""
    modules = _modules(root, package)
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    edges: Edges = {}
    for name, path in modules.items():
        source = _unit(name, packages, package)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, name in packages):
                if target not in modules:
                    continue
                imported = _unit(target, packages, package)
                if imported != source:
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    edges.setdefault(source, {}).setdefault(imported, where)
    return edges


def find_cycle(edges: Edges) -> str | None:
    """One import cycle, each step with the import that makes it, or None."""
    try:
        graphlib.TopologicalSorter({unit: set(targets) for unit, targets in edges.items()}).prepare()
    except graphlib.CycleError as error:
        cycle: list[str] = error.args[1]  # [a, ..., a], each importing the one before it
        steps = [f"{b} -> {a} ({edges[b][a]})" for a, b in itertools.pairwise(cycle)]
        return "\n".join(reversed(steps))
    return None


def test_no_import_cycle_between_compiler_subpackages() -> None:
    edges = import_graph(REPO, "compiler")
    assert "compiler.targets.kubernetes" in edges["compiler.bundle"]  # the walk sees the project
    cycle = find_cycle(edges)
    assert cycle is None, f"import cycle between subpackages of compiler:\n{cycle}"


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    "upward_import",
    [
        "from pkg.high import top",
        "def late() -> None:\n    from pkg.high import top\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.high.top\n",
        "from ..high import top",
        "from pkg import high",
    ],
    ids=["module-level", "function-level", "type-checking", "relative", "from-package"],
)
def test_a_cycle_is_found_however_the_import_is_written(tmp_path: Path, upward_import: str) -> None:
    _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/high/__init__.py": "",
            "pkg/high/top.py": "from pkg.low.base import thing\n",
            "pkg/low/__init__.py": "",
            "pkg/low/base.py": "thing = 1\n",
            "pkg/low/reach.py": upward_import + "\n",
        },
    )
    cycle = find_cycle(import_graph(tmp_path, "pkg"))
    assert cycle is not None
    assert "pkg.low -> pkg.high (pkg/low/reach.py:" in cycle
    assert "pkg.high -> pkg.low (pkg/high/top.py:1)" in cycle


def test_layered_imports_and_imports_inside_a_subpackage_are_no_cycle(tmp_path: Path) -> None:
    _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/tool.py": "from pkg.high import top\n",
            "pkg/high/__init__.py": "from pkg.high.top import thing\n",
            "pkg/high/top.py": "from pkg.low.base import thing\n",
            "pkg/low/__init__.py": "",
            "pkg/low/base.py": "from pkg.low import other\nthing = 1\n",
            "pkg/low/other.py": "import pkg.low.base\n",
        },
    )
    edges = import_graph(tmp_path, "pkg")
    assert edges == {
        "pkg.tool": {"pkg.high": "pkg/tool.py:1"},
        "pkg.high": {"pkg.low": "pkg/high/top.py:1"},
    }
    assert find_cycle(edges) is None
