"""REAPER's track FX calls for the fake reaper_python (fake_reaper.py), with the JSFX parsed
from the real .jsfx file: enum sliders show their labels in TrackFX_GetFormattedParamValue; a
leading '-' hides a slider but it is still a parameter (hosts.md §4, reascripthelp.html).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SLIDER = re.compile(
    r"^slider(\d+):(\w+)=([-\d.]+)<([-\d.]+),([-\d.]+),([-\d.]+)(?:\{([^}]*)\})?>(.*)$"
)


@dataclass
class Param:
    name: str
    value: float
    lo: float
    hi: float
    labels: list[str] | None


@dataclass
class Fx:
    name: str
    params: list[Param]


def parse_jsfx(path: Path) -> Fx:
    """A JSFX's sliders as parameters, in slider-number order."""
    desc, params = path.stem, []
    for line in path.read_text().splitlines():
        if line.startswith("desc:"):
            desc = line[5:].strip()
        m = _SLIDER.match(line.strip())
        if m:
            _, _, default, lo, hi, _, enum, label = m.groups()
            labels = [s.strip() for s in enum.split(",")] if enum is not None else None
            params.append(
                (
                    int(m.group(1)),
                    Param(label.lstrip("-"), float(default), float(lo), float(hi), labels),
                )
            )
    return Fx(f"JS: {desc}", [p for _, p in sorted(params, key=lambda x: x[0])])


class FxApi:
    """The RPR_TrackFX_* functions over FakeReaper's tracks (mixed into FakeReaper)."""

    def RPR_TrackFX_AddByName(self, track: str, fxname: str, recFX: bool, instantiate: int) -> int:
        fxs = self.tracks[track].fx
        if not fxname.startswith("JS:"):
            return -1
        path = self.resource / "Effects" / fxname[3:].strip()
        if not path.is_file():
            return -1
        fx = parse_jsfx(path)
        existing = [i for i, f in enumerate(fxs) if f.name == fx.name]
        if existing and instantiate == -1:
            return existing[0]
        fxs.append(fx)
        return len(fxs) - 1

    def RPR_TrackFX_GetCount(self, track: str) -> int:
        return len(self.tracks[track].fx)

    def RPR_TrackFX_GetFXName(self, track: str, fx: int, bufOut: str, bufOut_sz: int) -> tuple:
        return (True, track, fx, self.tracks[track].fx[fx].name, bufOut_sz)

    def RPR_TrackFX_GetNumParams(self, track: str, fx: int) -> int:
        return len(self.tracks[track].fx[fx].params)

    def RPR_TrackFX_GetParamName(
        self, track: str, fx: int, param: int, bufOut: str, bufOut_sz: int
    ) -> tuple:
        return (True, track, fx, param, self.tracks[track].fx[fx].params[param].name, bufOut_sz)

    def RPR_TrackFX_GetParam(
        self, track: str, fx: int, param: int, minvalOut: float, maxvalOut: float
    ) -> tuple:
        p = self.tracks[track].fx[fx].params[param]
        return (p.value, track, fx, param, p.lo, p.hi)

    def RPR_TrackFX_GetFormattedParamValue(
        self, track: str, fx: int, param: int, bufOut: str, bufOut_sz: int
    ) -> tuple:
        p = self.tracks[track].fx[fx].params[param]
        text = p.labels[int(p.value)] if p.labels else f"{p.value:g}"
        return (True, track, fx, param, text, bufOut_sz)

    def RPR_TrackFX_SetParam(self, track: str, fx: int, param: int, val: float) -> bool:
        self.tracks[track].fx[fx].params[param].value = float(val)
        return True

    def RPR_TrackFX_Show(self, track: str, index: int, showFlag: int) -> None:
        self.shown_fx.append((track, index))

    # test helper over the API: set a knob by its slider label
    def set_knob(self, label: str, value: str | float) -> None:
        for t in [*self.order, self.master]:
            for fx in self.tracks[t].fx:
                for p in fx.params:
                    if p.name == label:
                        p.value = float(p.labels.index(value)) if p.labels else float(value)
                        return
        raise KeyError(label)
