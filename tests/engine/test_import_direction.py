"""Imports go one way: bridge never imports engine; only engine imports torch;
plugins import only the standard library and their host's module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST_MODULES = {"DaVinciResolveScript", "fusionscript", "reaper_python", "bmd"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _py(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_bridge_never_imports_engine_or_torch() -> None:
    files = _py("bridge")
    assert files
    for path in files:
        bad = _imports(path) & {"engine", "torch"}
        assert not bad, f"{path} imports {bad}"


def test_only_engine_imports_torch() -> None:
    for folder in ("bridge", "plugins", "installer"):
        for path in _py(folder):
            assert "torch" not in _imports(path), path


def test_plugins_import_only_stdlib_and_host() -> None:
    allowed = set(sys.stdlib_module_names) | HOST_MODULES
    shared = {p.stem for p in (ROOT / "plugins" / "common").glob("*.py")}  # installed beside
    for path in _py("plugins"):
        local = {p.stem for p in path.parent.glob("*.py")} | shared
        bad = _imports(path) - allowed - local
        assert not bad, f"{path} imports {bad}"
