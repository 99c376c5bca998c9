"""VMB Score update score to this cut: the earlier whole-timeline score fitted to a re-edit.

DaVinci Resolve menu script (Workspace > Scripts > Utility > VMB Score update score to this
cut): the timeline goes to the engine as OTIO with the earlier render's scored timeline (the
`conform` job); kept cues stay, moved/re-fitted/new ones are placed, removed ones are taken
off the VMB Score tracks, and the message lists every change with its reason.
"""

import os
import sys

MODE = "conform"


def _lib_dirs(here):
    """Where the library may be: installed, Fusion/vmb_score_lib (outside Fusion/Scripts,
    whose .py files Resolve lists as menu entries); in the repository, ../common and here."""
    fusion = os.path.dirname(os.path.dirname(here))
    return [
        os.path.join(fusion, "vmb_score_lib"),
        os.path.join(os.path.dirname(here), "common"),
        here,
    ]


def _script_dir():
    """This script's folder; Resolve may run menu scripts without __file__."""
    try:
        return os.path.dirname(os.path.abspath(__file__))
    except NameError:
        pass
    home = os.path.expanduser("~")
    support = "Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"
    for cand in (
        os.path.join(
            os.environ.get("APPDATA", home),
            "Blackmagic Design",
            "DaVinci Resolve",
            "Support",
            "Fusion",
            "Scripts",
            "Utility",
        ),
        os.path.join(home, "Library", "Application Support", support),
        os.path.join("/Library", "Application Support", support),
        os.path.join(home, ".local", "share", "DaVinciResolve", "Fusion", "Scripts", "Utility"),
        "/opt/resolve/Fusion/Scripts/Utility",
    ):
        if os.path.isfile(os.path.join(_lib_dirs(cand)[0], "vmb_resolve.py")):
            return cand
    return os.getcwd()


def _main(g):
    here = _script_dir()
    for folder in reversed(_lib_dirs(here)):
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        import vmb_resolve
    except Exception as exc:  # noqa: BLE001 - a message, never a traceback
        print(
            f"[VMB Score] the plugin is incomplete ({exc}); reinstall it with "
            "installer/install.sh --hosts-only"
        )
        return None
    return vmb_resolve.entry(g, MODE)


VMB_RESULT = _main(globals())
