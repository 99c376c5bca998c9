"""VMB: Insert controls (REAPER Python ReaScript, registered as an action).

Adds the VMB Controls JSFX (the knobs: sliders that are automatable and saved with the
project) to the "VMB Score" track, creating the track if needed, and opens its window.
"""

import os
import sys

from reaper_python import *  # noqa: F403 - REAPER's API (RPR_* functions)


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
VMB_RESULT = VMB.insert_controls() if VMB else None
