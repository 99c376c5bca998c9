"""Every job kind the daemon serves: the built-in kind modules are imported here (they
register at import); extra modules named in the config (`jobs.kind_modules`) by name.

The job kinds depend on the pipeline (`engine.score`), never the reverse.
"""

from __future__ import annotations

import importlib

from engine.serve import (  # noqa: F401  (they register at import)
    builtin_kinds,
    conform_kinds,
    score_kinds,
)
from engine.serve.kinds import JobKind, registered


def load_kinds(extra_modules: tuple[str, ...] | list[str] = ()) -> dict[str, JobKind]:
    for module in extra_modules:
        importlib.import_module(module)
    return registered()
