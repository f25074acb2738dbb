"""The import graph of alphacut: no loop, and the layers point one way (web/ and watch never reach batch).

Read from the source with ``ast``: every import counts, at module level or inside a function
(a deferred import still ties the modules together). Importing ``alphacut.x.y`` runs the
packages above it first; those implicit edges are left out, as Python resolves them whatever
the order.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "alphacut"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The alphacut modules ``name`` imports (``from . import x`` counts x when it is a module)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                child = f"{origin}.{alias.name}"
                targets.append(child if child in modules else origin)
        out.update(t for t in targets if t in modules and t != name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return seen


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert {"alphacut.cli", "alphacut.cli.cut", "alphacut.jobs", "alphacut.session", "alphacut.web.api"} <= set(graph)
    assert "alphacut.jobs" in graph["alphacut.cli.cut"]
    assert "alphacut.session" in graph["alphacut.pipeline"]
    assert "alphacut.jobs" in graph["alphacut.batch"]


def test_no_import_loop() -> None:
    graph = _graph()
    loops = sorted(name for name in graph if name in _reachable(graph, name))
    assert not loops, f"modules that import themselves through others: {loops}"


def test_web_and_watch_never_reach_batch() -> None:
    graph = _graph()
    for name in graph:
        if name == "alphacut.watch" or name.startswith("alphacut.web"):
            assert "alphacut.batch" not in _reachable(graph, name), f"{name} reaches alphacut.batch"


def test_the_library_reaches_neither_the_cli_nor_the_web_app() -> None:
    graph = _graph()
    for name in ("alphacut", "alphacut.jobs", "alphacut.batch", "alphacut.watch", "alphacut.ray_engine"):
        reached = _reachable(graph, name)
        assert not {m for m in reached if m.startswith(("alphacut.cli", "alphacut.web"))}, name
