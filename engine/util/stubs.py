"""Stand-in modules for imports that would otherwise fail here (torchaudio, torchvision) or
reach a model hub (laion_clap's package __init__). Installed only around the imports that
need them, then removed, so real modules are never shadowed afterwards."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any


def stub_module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod._vmb_stub = True  # type: ignore[attr-defined]
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


@contextlib.contextmanager
def temporary_modules(mods: dict[str, types.ModuleType]) -> Iterator[None]:
    """Install stand-ins for the duration of some imports (never over a real module)."""
    added = [name for name in mods if name not in sys.modules]
    for name in added:
        sys.modules[name] = mods[name]
    try:
        yield
    finally:
        for name in added:
            if sys.modules.get(name) is mods[name]:
                del sys.modules[name]
