"""Whether the real pipeline kinds can run here (plugin e2e tests skip at run time if not)."""

from __future__ import annotations

import importlib.util


def real_cue_missing() -> str | None:
    """Why the real draft `cue` kind cannot run here yet (None when it can)."""
    for module in (
        "engine.score.cue",
        "engine.describe.draft",
        "engine.retrieve.draft.retriever",
        "engine.generate.draft.generator",
    ):
        if importlib.util.find_spec(module) is None:
            return f"the draft backend is not implemented yet ({module} missing)"
    return None


def real_soundtrack_missing() -> str | None:
    why = real_cue_missing()
    if why:
        return why
    if importlib.util.find_spec("engine.score.soundtrack") is None:
        return "engine.score.soundtrack is not implemented yet"
    return None
