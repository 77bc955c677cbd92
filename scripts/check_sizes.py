"""Fail when a module under src/remedium is over 600 lines or a function over 80 lines.

Run by `make lint` and `make test`. A file or function may only pass the limits through the
EXEMPT table below, each with its reason (docs/architecture.md, "Size limits").
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "remedium"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# path (relative to src/remedium) or path::function -> why it may pass the limit.
# A directory entry ends with "/" and covers every file under it.
EXEMPT: dict[str, str] = {
    "db/migrations/": "an applied migration is history and is never edited",
    "importers/formats/grype.py::_records": "a parser that follows the structure of the report",
}


def _exempt(relative: str, function: str | None = None) -> bool:
    for key in EXEMPT:
        if "::" in key:
            if function is not None and key == f"{relative}::{function}":
                return True
        elif relative == key or (key.endswith("/") and relative.startswith(key)):
            return True
    return False


def problems() -> list[str]:
    """Return one line per module or function over its limit, as `file:line name length`."""
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if _exempt(relative):
            continue
        shown = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{shown}:1 <module> {lines} lines (limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and not _exempt(relative, node.name):
                found.append(
                    f"{shown}:{node.lineno} {node.name} {length} lines (limit {MAX_FUNCTION_LINES})"
                )
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} over the limits: split by cohesion, or add a reasoned EXEMPT entry")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
