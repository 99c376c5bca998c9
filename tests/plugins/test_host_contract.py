"""Contract tests: every host call the plugins make exists in the vendor's API listing.

Resolve: the `fusionscript-stubs` package's fusionscript.pyi (the Resolve 21.0 scripting
API). Calls absent from it must be listed here with their fallback: version-gated calls
(GetSelectedClips) and Fusion's UIManager (the stubs' Fusion class is empty).
REAPER: tests/support/reaper_api_functions.txt (signatures from reascripthelp.html):
names and argument counts. The fakes are held to the same listings, so they cannot
invent API either.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"

# Resolve calls not in fusionscript-stubs 21.0.0, each with the fallback the plugin has.
VERSION_GATED = {"Timeline.GetSelectedClips": "mark in/out, then the clip under the playhead"}
GATED_NAMES = {k.split(".")[1] for k in VERSION_GATED}
FUSION_UI = {  # Fusion UIManager / dispatcher: Studio only; without it, no panel
    "UIManager", "UIDispatcher", "AddWindow", "VGroup", "HGroup", "Label", "Button",
    "ComboBox", "LineEdit", "Timer", "RunLoop", "ExitLoop", "Show", "Hide", "GetItems",
    "AddItems", "Start", "Stop",
}  # fmt: skip
SCRIPT_APP = {"GetResolve", "scriptapp"}  # fusion `app` / bmd / DaVinciResolveScript entry


def _stub_api() -> tuple[dict[str, set[str]], set[str]]:
    spec = importlib.util.find_spec("fusionscript-stubs") or None
    candidates = [Path(p) / "fusionscript-stubs" / "fusionscript.pyi" for p in sys.path]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None and spec is not None:  # pragma: no cover - odd installs
        path = Path(spec.origin).parent / "fusionscript.pyi"
    if path is None:
        pytest.fail("fusionscript-stubs is not installed (requirements/dev.txt pins it)")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    methods: dict[str, set[str]] = {}
    constants: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = methods.setdefault(node.name, set())
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    constants.add(item.target.id)
    return methods, constants


def _resolve_calls(paths: list[Path]) -> set[str]:
    """Host names a plugin uses: call(obj, "Name"), has(obj, "Name"), getattr(x, "NAME"),
    and CapWords attribute calls/accesses (our own code is snake_case)."""
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            named = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            if named and node.func.id in ("call", "has", "getattr") and len(node.args) >= 2:
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                ours = isinstance(owner, ast.Name) and owner.id in ("vc", "vf")  # our modules
                if node.func.attr[:1].isupper() and not ours:
                    names.add(node.func.attr)
    return names


def test_resolve_calls_exist_in_the_vendor_stubs() -> None:
    methods, constants = _stub_api()
    assert len(methods["Timeline"]) > 50 and "AppendToTimeline" in methods["MediaPool"]
    known = set().union(*methods.values()) | constants
    paths = sorted((ROOT / "plugins" / "davinci").glob("*.py"))
    used = _resolve_calls(paths)
    for must in ("AppendToTimeline", "ImportMedia", "GetMarkInOut", "OpenPage", "AddTrack"):
        assert must in used, must  # the scan sees the plugin's calls
    missing = used - known - GATED_NAMES - FUSION_UI - SCRIPT_APP
    assert not missing, f"not in fusionscript.pyi and not listed as gated: {sorted(missing)}"
    for gated in VERSION_GATED:
        cls, name = gated.split(".")
        assert name not in methods[cls], f"{gated} is in the stubs now: drop it from the list"
    import vmb_resolve

    assert set(VERSION_GATED) <= set(vmb_resolve.VERSION_GATED)


def test_resolve_fake_implements_only_vendor_methods() -> None:
    from support import fake_resolve

    methods, constants = _stub_api()
    known = set().union(*methods.values()) | constants
    fake_classes = [
        fake_resolve.FakeMediaPoolItem,
        fake_resolve.FakeTimelineItem,
        fake_resolve.TimelineWithSelection,
        fake_resolve.FakeFolder,
        fake_resolve.FakeMediaPool,
        fake_resolve.FakeProject,
        fake_resolve.FakeProjectManager,
        fake_resolve.FakeResolve,
    ]
    for cls in fake_classes:
        for name, _ in inspect.getmembers(cls):
            if name[:1].isupper():
                assert name in known | GATED_NAMES, f"{cls.__name__}.{name} is invented"


# -- REAPER -------------------------------------------------------------------------------------
_SIG = re.compile(r"^(?P<ret>[\w\s\*]+?)\s*\b(?P<name>\w+)\((?P<params>[^)]*)\)\s*$")


def _reaper_api() -> dict[str, int]:
    """name -> number of arguments, from the vendored signature list."""
    api: dict[str, int] = {}
    for line in (SUPPORT / "reaper_api_functions.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SIG.match(line)
        assert m, f"unparsable signature: {line}"
        params = [p for p in m.group("params").split(",") if p.strip()]
        api[m.group("name")] = len(params)
    return api


def _rpr_calls(path: Path) -> list[tuple[str, int, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("RPR_"):
                out.append((name[4:], len(node.args), node.lineno))
    return out


def test_reaper_calls_exist_with_the_right_arity() -> None:
    api = _reaper_api()
    assert len(api) >= 40
    paths = sorted((ROOT / "plugins" / "reaper").glob("*.py"))
    calls = [(p.name, *c) for p in paths for c in _rpr_calls(p)]
    used = {c[1] for c in calls}
    for must in ("GetSet_LoopTimeRange", "InsertMedia", "GetAppVersion", "TrackFX_GetParam"):
        assert must in used, must
    # defer/atexit come from the script's namespace by name (not reaper_python), still listed
    assert {"defer", "atexit"} <= set(api)
    for file, name, nargs, line in calls:
        assert name in api, f"{file}:{line}: RPR_{name} is not in reaper_api_functions.txt"
        assert nargs == api[name], f"{file}:{line}: RPR_{name} takes {api[name]} args, got {nargs}"
    text = "\n".join(p.read_text() for p in paths)
    assert set(re.findall(r"RPR_(\w+)", text)) <= set(api)


def test_reaper_fake_matches_the_listing() -> None:
    from support.fake_reaper import FakeReaper

    api = _reaper_api()
    for name, member in inspect.getmembers(FakeReaper, inspect.isfunction):
        if not name.startswith("RPR_"):
            continue
        assert name[4:] in api, f"the fake invents RPR_{name[4:]}"
        nparams = len(inspect.signature(member).parameters) - 1  # self
        assert nparams == api[name[4:]], f"fake RPR_{name[4:]} takes {nparams} args"
    fake_names = {n[4:] for n in dir(FakeReaper) if n.startswith("RPR_")}
    assert set(api) <= fake_names, f"listed but not faked: {sorted(set(api) - fake_names)}"


# -- syntax for old host Pythons ------------------------------------------------------------------
def test_plugins_parse_as_python_3_6() -> None:
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 6))
        assert "from __future__ import annotations" not in path.read_text(), path
