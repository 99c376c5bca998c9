"""The house size rules hold over engine/, bridge/ and plugins/: no file over 600 lines and
no function over 60 lines (counted by ast, decorators and docstring included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "bridge", "plugins")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > MAX_FUNCTION_LINES:
                rel = path.relative_to(ROOT)
                found.append(f"{rel}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_sources_are_found() -> None:
    assert len(_sources()) > 50


def test_no_file_over_600_lines() -> None:
    long = []
    for path in _sources():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            long.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_60_lines() -> None:
    long = [entry for path in _sources() for entry in _long_functions(path)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
