"""VMB: Adapt selected audio item to the video clip (REAPER Python ReaScript, an action).

Your own music, fitted by the VMB Score engine (the adapt job: whole bars cut or repeated)
to the video item under the selected audio item (or to the time selection over it). The
adapted file becomes the item's new active take, the original take stays (one undo step).
Progress shows in REAPER's status line; run the action again and terminate it to cancel.
"""

import os
import sys

from reaper_python import *  # noqa: F403 - REAPER's API (RPR_* functions)

MODE = "adapt"


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


def vmb_tick(run):
    """Called by REAPER's defer loop (RPR_defer("vmb_tick('<run id>')"), run in this
    namespace): the run's id is in the code string, never read from a global, so two
    actions sharing one __main__ cannot take each other's ticks."""
    VMB.tick(run)


def vmb_atexit(run):
    """Called when the script ends or is terminated: cancels the run's unfinished job."""
    VMB.at_exit(run)


# RPR_defer/RPR_atexit live in this script's namespace (REAPER puts them in __main__):
# the library gets them from globals()
VMB_RUN = VMB.main(MODE, globals()) if VMB else None
