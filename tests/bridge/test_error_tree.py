"""One exception tree: every code a peer may send is one class of bridge/errors.py with an
HTTP status, and the client rebuilds errors from that table, whatever the process imported."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import errors
from bridge.errors import WIRE_ERRORS, VMBError, error_from_wire, http_status

ROOT = Path(__file__).resolve().parents[2]


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def test_every_code_is_one_class_with_an_http_status() -> None:
    defined = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, VMBError)]
    assert sorted(c.__name__ for c in defined) == sorted(c.__name__ for c in WIRE_ERRORS.values())
    assert len({c.code for c in defined}) == len(defined)  # no two classes share a code
    for code, cls in WIRE_ERRORS.items():
        assert cls.code == code
        assert cls.http_status in (400, 401, 404, 405, 409, 413, 415, 422, 500, 503), cls
        assert http_status(code) == cls.http_status
        rebuilt = error_from_wire(code, "m")
        assert type(rebuilt) is cls and rebuilt.message == "m"
    assert http_status("brand_new") == 500 and error_from_wire("brand_new", "x").code == "brand_new"


def test_gateway_and_library_errors_come_from_the_tree() -> None:
    from bridge import gateway
    from engine.retrieve.full import library

    for name in ("RouteNotFound", "MethodNotAllowed", "UnsupportedMediaType", "GatewayBusy"):
        assert getattr(gateway, name) is getattr(errors, name)
    assert library.LibraryError is errors.LibraryError
    assert http_status("library") == 503  # was 500: an unusable library is not an engine bug
    assert http_status("not_found") == 404 and http_status("busy") == 503


def _base_names(node: ast.ClassDef) -> set[str]:
    return {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}


def _modules_defining_errors() -> list[str]:
    """Project modules that define a class on an error base (found by parsing, not importing)."""
    bases = {c.__name__ for c in WIRE_ERRORS.values()} | {"EmptyPartition"}
    found = []
    for path in sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "bridge").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if any(_base_names(n) & bases for n in classes):
            found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert "engine.retrieve.full.schema" in found  # EmptyPartition
    return found


def test_no_module_outside_the_tree_adds_a_code() -> None:
    """A refinement elsewhere (EmptyPartition) keeps its base's code: the peer rebuilds the
    table's class, which must be one of its bases."""
    for name in _modules_defining_errors():
        try:
            importlib.import_module(name)
        except ImportError:  # an optional dependency (torch extras) absent here
            continue
    for cls in _all_subclasses(VMBError):
        assert cls.code in WIRE_ERRORS, f"{cls.__module__}.{cls.__name__} adds code {cls.code}"
        assert issubclass(cls, WIRE_ERRORS[cls.code]), cls


@pytest.mark.parametrize("code", ["library", "not_found", "weights"])
def test_client_rebuilds_without_importing_the_raiser(code: str) -> None:
    """A bare client process (no engine imported) still raises the right class."""
    prog = (
        "from bridge.errors import error_from_wire;"
        f"e = error_from_wire({code!r}, 'x'); print(type(e).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", prog], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == WIRE_ERRORS[code].__name__
