"""The package's import graph has no cycle: every import, lazy ones inside functions included, runs one way."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[2] / "gnnrisk"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package by its __init__.py)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks (annotations only: never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return skipped


def import_graph() -> nx.DiGraph:
    """Module -> the package modules it imports (at top level or inside functions), by file."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = nx.DiGraph()
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("gnnrisk") else None
                if target and target != module:
                    graph.add_edge(module, target)
    return graph


def _nested(a: str, b: str) -> bool:
    """True when one module is a package holding the other (a package importing its own parts is no cycle)."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_import_cycles():
    """Apart from a package and its own submodules, no set of modules imports itself round."""
    cycles = [c for c in nx.simple_cycles(import_graph())
              if len(c) > 1 and not any(_nested(a, b) for a in c for b in c if a != b)]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles)


def test_the_graph_sees_lazy_imports():
    """The check reads imports inside functions too (the cycles it guards against were lazy ones)."""
    graph = import_graph()
    assert graph.has_edge("gnnrisk.api", "gnnrisk.data.in_memory")  # imported inside a function only
    assert graph.has_edge("gnnrisk.audit.feedback_stage", "gnnrisk.audit.feedback_time")
