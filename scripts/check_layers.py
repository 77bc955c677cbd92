"""What `lint-imports` cannot say about the layers of docs/architecture.md (make lint, make test).

1. Every module of remedium is placed: it, or a package above it, is listed in a layer of the
   `layers` contract in pyproject.toml. A package left out because its children sit in different
   layers is fine only when its ``__init__`` imports nothing from remedium.
2. No modules import each other in a cycle (a strongly connected component of more than one
   module), top-level and function-level imports alike. An import that a contract's
   ``ignore_imports`` lists is left out here too.

Exits 1 and says what to fix when either fails.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import grimp

ROOT = Path(__file__).resolve().parent.parent


def load_config(path: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    """The ``[tool.importlinter]`` table."""
    with path.open("rb") as file:
        config: dict[str, Any] = tomllib.load(file)["tool"]["importlinter"]
    return config


def layered_modules(config: Mapping[str, Any]) -> set[str]:
    """Every module named in a layer of the `layers` contract."""
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    named: set[str] = set()
    for layer in contract["layers"]:
        named.update(part for part in re.split(r"[\s:|]+", layer) if part)
    return named


def ignored_imports(config: Mapping[str, Any]) -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    """The ``ignore_imports`` of every contract, as (importer, imported) patterns."""
    pairs = []
    for contract in config["contracts"]:
        for line in contract.get("ignore_imports", []):
            importer, imported = (part.strip() for part in line.split("->"))
            pairs.append((_pattern(importer), _pattern(imported)))
    return pairs


def _pattern(expression: str) -> re.Pattern[str]:
    # import-linter's wildcards: `*` one name, `**` any number of names.
    parts = [
        r"[^.]+(\.[^.]+)*" if p == "**" else "[^.]+" if p == "*" else re.escape(p)
        for p in expression.split(".")
    ]
    return re.compile(r"\.".join(parts) + "$")


def unplaced(graph: grimp.ImportGraph, placed: set[str]) -> list[str]:
    """Modules not covered by any layer (see the module's docstring)."""
    found = []
    for module in sorted(graph.modules):
        if _covered(module, placed):
            continue
        # A package whose children are placed one by one: its own __init__ must stay empty.
        has_children = any(m.startswith(module + ".") for m in graph.modules)
        if has_children and not graph.find_modules_directly_imported_by(module):
            continue
        found.append(module)
    return found


def _covered(module: str, placed: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in placed for i in range(1, len(parts) + 1))


def cycles(
    graph: grimp.ImportGraph, ignored: Iterable[tuple[re.Pattern[str], re.Pattern[str]]]
) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    ignore = list(ignored)
    edges = {
        module: sorted(
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if not any(a.match(module) and b.match(imported) for a, b in ignore)
        )
        for module in graph.modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if position < len(targets):
                work.append((node, position + 1))
                target = targets[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def main() -> int:
    """Check both rules; print what breaks them."""
    sys.path.insert(0, str(ROOT / "src"))
    config = load_config()
    graph = grimp.build_graph(config["root_package"], cache_dir=None)
    failed = False
    missing = unplaced(graph, layered_modules(config))
    if missing:
        failed = True
        print(
            "Modules in no layer (add each to a layer of the `layers` contract in pyproject.toml):"
        )
        for module in missing:
            print(f"  {module}")
    found = cycles(graph, ignored_imports(config))
    for component in found:
        failed = True
        print("Modules that import each other in a cycle:")
        for importer in component:
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported in component:
                    for detail in graph.get_import_details(importer=importer, imported=imported):
                        line = detail["line_number"]
                        print(f"  {importer} -> {imported} (l.{line}: {detail['line_contents']})")
    if not failed:
        print(f"{len(graph.modules)} modules, each in a layer; no import cycle.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
