"""The VMB Controls JSFX: knob sliders generated from the engine's knob definitions, and
reading them back through REAPER's API (`api` is the reaper_python module).

Standard library only, Python 3.6 syntax (see vmb_reaper.py).
"""

from typing import Any, Dict, List, Optional, Tuple

import vmb_client as vc

CONTROLS_NAME = "VMB Controls"
CONTROLS_FX = "JS:VMB Score/VMB Controls.jsfx"
CONTROLS_MARKER = 7351.0  # the hidden first slider's value: identifies the JSFX


def jsfx_layout(defs: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The sliders of the VMB Controls JSFX, in order, from the knob definitions."""
    rows = [{"var": "vmb_id", "label": "-VMB Score controls id", "marker": True}]
    knobs = list(defs.get("knobs", []))
    for knob in knobs + list(defs.get("options", [])):
        name, label, kind = knob["name"], knob.get("label", knob["name"]), knob.get("type")
        if kind == "choice":
            rows.append({"var": name, "label": label, "knob": name, "values": knob["values"]})
            if knob.get("bpm"):  # a tempo row: a BPM slider beside its names
                rows.append(
                    {
                        "var": f"{name}_bpm",
                        "label": f"{label} BPM (0 = use {label})",
                        "knob": name,
                        "bpm": True,
                        "max": int(knob["bpm"]["max"]),
                    }
                )
        elif kind == "boolean":  # an off/on switch
            rows.append(
                {"var": name, "label": label, "knob": name, "values": ["off", "on"], "flag": True}
            )
        elif kind == "multi":
            values = [knob.get("empty", "none")] + list(knob["values"])
            for i in range(int(knob.get("max", 3))):
                rows.append(
                    {
                        "var": f"{name}{i + 1}",
                        "label": f"{label} {i + 1}",
                        "knob": name,
                        "values": values,
                        "multi": True,
                    }
                )
        elif kind == "integer":
            # the row's range; one below its minimum (0 at the least) means "not set"
            hi = int(knob.get("max") or 2147483647)
            lo = max(0, int(knob.get("min") or 0))
            unset = max(0, lo - 1)
            word = "auto" if knob in knobs else "random"
            rows.append(
                {
                    "var": name,
                    "label": f"{label} ({unset} = {word})",
                    "knob": name,
                    "min": unset,
                    "lo": lo,
                    "max": hi,
                }
            )
    return rows


def render_jsfx(defs: Dict[str, Any]) -> str:
    """The VMB Controls JSFX source: sliders only (automatable, saved with the project)."""
    lines = [
        f"desc:{CONTROLS_NAME}",
        "//tags: utility VMB Score",
        "//author: VMB Score",
        "// Knobs for the VMB Score ReaScripts, which read these sliders with TrackFX_GetParam.",
        "// Generated from the engine's knob definitions (vmb_reaper.render_jsfx): do not edit.",
        "",
        "in_pin:none",
        "out_pin:none",
        "",
    ]
    for n, row in enumerate(jsfx_layout(defs), start=1):
        if row.get("marker"):
            spec = f"{CONTROLS_MARKER:g}<0,10000,1>"
        elif "values" in row:
            spec = "0<0,{},1{{{}}}>".format(len(row["values"]) - 1, ",".join(row["values"]))
        else:
            spec = "{0}<{0},{1},1>".format(row.get("min", 0), row["max"])
        lines.append(f"slider{n}:{row['var']}={spec}{row['label']}")
    lines += ["", "@slider", f"vmb_id = {CONTROLS_MARKER:g};", "", "@sample", ""]
    return "\n".join(lines)


def find_controls(api: Any) -> Optional[Tuple[Any, int]]:
    """(track, fx index) of the first VMB Controls JSFX (project tracks, then master)."""
    tracks = [api.RPR_GetTrack(0, t) for t in range(int(api.RPR_CountTracks(0)))]
    tracks.append(api.RPR_GetMasterTrack(0))
    for track in tracks:
        for fx in range(int(api.RPR_TrackFX_GetCount(track))):
            name = str(api.RPR_TrackFX_GetFXName(track, fx, "", 256)[3])
            if CONTROLS_NAME not in name or int(api.RPR_TrackFX_GetNumParams(track, fx)) < 1:
                continue
            if (
                abs(float(api.RPR_TrackFX_GetParam(track, fx, 0, 0.0, 0.0)[0]) - CONTROLS_MARKER)
                < 0.5
            ):
                return track, fx
    return None


def read_controls(api: Any, defs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Knob values from the VMB Controls sliders, by slider label (None: no JSFX)."""
    found = find_controls(api)
    if found is None:
        return None
    track, fx = found
    layout = dict((row["label"], row) for row in jsfx_layout(defs) if not row.get("marker"))
    values = {}  # type: Dict[str, Any]
    bpms = {}  # type: Dict[str, int]
    for p in range(1, int(api.RPR_TrackFX_GetNumParams(track, fx))):
        label = str(api.RPR_TrackFX_GetParamName(track, fx, p, "", 256)[4])
        row = layout.get(label)
        if row is None:
            continue
        raw = float(api.RPR_TrackFX_GetParam(track, fx, p, 0.0, 0.0)[0])
        if "values" in row:
            text = str(api.RPR_TrackFX_GetFormattedParamValue(track, fx, p, "", 256)[4])
            if text not in row["values"]:  # an older JSFX: map the index instead
                i = int(round(raw))
                text = row["values"][i] if 0 <= i < len(row["values"]) else row["values"][0]
            if row.get("multi"):
                values.setdefault(row["knob"], []).append(text)
            elif row.get("flag"):
                values[row["knob"]] = vc.is_on(text)
            else:
                values[row["knob"]] = text
        elif row.get("bpm"):
            bpms[row["knob"]] = int(round(raw))
        else:
            n = int(round(raw))
            values[row["knob"]] = n if n >= row.get("lo", 0) and n > row.get("min", 0) else None
    for name, bpm in bpms.items():
        if bpm > 0:  # a BPM wins over the row's names
            values[name] = str(bpm)
    return values
