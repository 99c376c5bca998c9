"""VMB: Score whole project (REAPER Python ReaScript, registered as an action).

One cue per clip of the project: the project goes to the engine as OTIO (the soundtrack
job) and every cue lands on a "VMB Score" track at its clip's position.
Progress shows in REAPER's status line; run the action again and terminate it to cancel.
"""

import os
import sys

from reaper_python import *  # noqa: F403 - REAPER's API (RPR_* functions)

MODE = "project"


def _script_dir():
    """This script's folder (REAPER may run scripts without __file__)."""
    try:
        return os.path.dirname(os.path.abspath(__file__))
    except NameError:
        return os.path.join(RPR_GetResourcePath(), "Scripts", "VMB Score")  # noqa: F405


def _load():
    here = _script_dir()
    for folder in (os.path.join(os.path.dirname(here), "common"), here):
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        import vmb_reaper
    except Exception as exc:  # noqa: BLE001 - a message box, never a traceback
        RPR_ShowMessageBox(  # noqa: F405
            f"The VMB Score plugin is incomplete ({exc}).\n"
            "Reinstall it: installer/install.sh --hosts-only",
            "VMB Score",
            0,
        )
        return None
    return vmb_reaper


VMB = _load()


def vmb_tick():
    """Called by REAPER's defer loop (RPR_defer("vmb_tick()"), run in this namespace)."""
    VMB.tick(MODE)


def vmb_atexit():
    """Called when the script ends or is terminated: cancels an unfinished job."""
    VMB.at_exit(MODE)


# RPR_defer/RPR_atexit live in this script's namespace (REAPER puts them in __main__):
# the library gets them from globals()
VMB_RUN = VMB.main(MODE, globals()) if VMB else None
