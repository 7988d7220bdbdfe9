"""The import graph of ``passport`` (what ``make lint``'s contracts judge): no cycle anywhere, imports
inside functions included, and the function-import contract catches what it should."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

from architecture.contracts import function_imports

SRC = Path(__file__).resolve().parents[2] / "src" / "passport"


def _graph() -> dict[str, set[str]]:
    """Module → the passport modules it imports, from the source text (every import statement,
    top-level or inside a function), resolved to the longest module prefix that exists."""
    modules = {}
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = ["passport", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges[module].add(name)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle, as the path of modules that closes it, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(edges) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_grimp_sees_the_same_modules_as_the_source_walk():
    graph = grimp.build_graph("passport", cache_dir=None)
    walked = set(_graph())
    assert walked <= graph.modules
    # grimp counts imports inside functions too: its graph has no cycle between these modules either.
    for module in walked:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in walked:
                assert not graph.chain_exists(imported, module, as_packages=False) or imported == module, \
                    f"{module} and {imported} import each other"


def test_function_imports_are_found_and_top_level_ones_are_not():
    source = (
        "import os\n"
        "from passport import errors\n"
        "def f():\n"
        "    from passport.accounts import service  # deferred: the reason\n"
        "    import json\n"
        "async def g():\n"
        "    def inner():\n"
        "        from . import sibling\n"
    )
    assert function_imports(source) == [(4, "passport.accounts"), (5, "json"), (8, ".")]
