"""Whether the real pipeline kinds can run here (plugin e2e tests skip at run time if not)."""

from __future__ import annotations

import importlib.util


def real_cue_missing() -> str | None:
    """Why the real draft `cue` kind cannot run here yet (None when it can)."""
    try:
        from engine.pipeline import STAGES
    except ImportError as exc:
        return f"engine.pipeline is not importable: {exc}"
    for path in STAGES["draft"].values():
        module = path.split(":")[0]
        if importlib.util.find_spec(module) is None:
            return f"the draft backend is not implemented yet ({module} missing)"
    return None


def real_soundtrack_missing() -> str | None:
    why = real_cue_missing()
    if why:
        return why
    if importlib.util.find_spec("engine.soundtrack") is None:
        return "engine.soundtrack is not implemented yet"
    return None
