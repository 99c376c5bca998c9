"""Imports go one way: bridge never imports engine; only engine imports torch;
plugins import only the standard library and their host's module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST_MODULES = {"DaVinciResolveScript", "fusionscript", "reaper_python", "bmd", "bpy"}


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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Project modules imported at module level (imports inside functions are deliberate
    lazy imports and cannot form an import-time cycle)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    return found & known


def test_import_graph_has_no_cycles() -> None:
    files = {_module_name(p): p for folder in ("engine", "bridge") for p in _py(folder)}
    graph = {m: _top_level_imports(p, set(files)) - {m} for m, p in files.items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep] if dep in stack else [m, dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*stack, dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_only_commands_import_the_cli_layer() -> None:
    for path in _py("engine"):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("engine", "commands") or rel == Path("engine/cli.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            bad = [
                m
                for m in mods
                if m in ("engine.cli", "engine.commands") or m.startswith("engine.commands.")
            ]
            assert not bad, f"{rel} imports the CLI layer ({bad})"


def test_the_pipeline_never_imports_the_daemon() -> None:
    """Job kinds (engine/serve) depend on the pipeline (engine/score), never the reverse."""
    files = _py("engine/score")
    assert files
    for path in files:
        tree = ast.parse(path.read_text())
        mods = [
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in (n.names if isinstance(n, ast.Import) else [n])
            if not isinstance(n, ast.ImportFrom) or n.module
        ]
        bad = [m for m in mods if m == "engine.serve" or m.startswith("engine.serve.")]
        assert not bad, f"{path.relative_to(ROOT)} imports the daemon ({bad})"
