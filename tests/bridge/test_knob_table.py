"""One knob table (bridge/knobs.py KNOBS): the capabilities, the parser, the CLI options and
the plugins' request building all come from it, and request parameters go through the
config's strict loader (CueSpec, SoundtrackSpec)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pytest

from bridge import knobs as knob_table
from bridge.errors import InvalidRequest
from bridge.knobs import Knob, knob_definitions
from engine import taxonomy
from engine.backends import CHOICES
from engine.config import load_settings
from engine.score.cue_spec import WIRE_NAMES, CueSpec, parse_cue_params, parse_knobs
from engine.score.soundtrack import SoundtrackSpec, load_soundtrack_spec
from engine.types import Knobs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "common"))
import vmb_client as vc  # noqa: E402 - the plugins' stdlib client, as hosts load it

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "reaper"))
import vmb_reaper_jsfx as jsfx  # noqa: E402 - REAPER's controls, stdlib only

SWING = Knob(
    "swing", "Swing", "choice", "knobs", "how much the rhythm swings", values=("straight", "heavy")
)
LAYERS = Knob("layers", "Layers", "integer", "options", "how many layers", lo=1, hi=4)
DEPTH = Knob("depth", "Depth", "integer", "knobs", "how many voices", lo=2, hi=6)
SWELL = Knob("swell", "Swell", "boolean", "knobs", "a crescendo into the last bar")
COLOURS = Knob(
    "colours", "Colours", "multi", "knobs", "tone colours", values=("warm", "airy"), max_items=2
)


def _defs() -> dict:
    return knob_definitions(
        taxonomy.all_tags(), (taxonomy.MIN_BPM, taxonomy.MAX_BPM), backends=CHOICES
    )


def _help(command: str) -> str:
    from engine.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


@pytest.fixture
def swing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knob_table, "KNOBS", (*knob_table.KNOBS, SWING, LAYERS))


def test_a_new_row_shows_everywhere_and_is_parsed(swing: None, vmb_home: Path) -> None:
    from engine.serve import daemon

    defs = _defs()
    assert daemon.knob_definitions() == defs  # what hello and /v1/capabilities serve
    by_name = {k["name"]: k for k in defs["knobs"]}
    assert by_name["swing"]["values"] == ["auto", "straight", "heavy"]
    assert {o["name"]: o for o in defs["options"]}["layers"]["max"] == 4
    for command in ("generate", "describe", "render"):
        assert "--swing" in _help(command) and "how much the rhythm swings" in _help(command)
    knobs = parse_knobs({"swing": "Heavy", "mood": "calm"})
    assert knobs.mood == "calm" and dict(knobs.extra) == {"swing": "heavy"}
    with pytest.raises(InvalidRequest, match="knob 'swing'.*straight, heavy"):
        parse_knobs({"swing": "wobbly"})
    spec = parse_cue_params(
        {"text": "calm", "duration_s": 4, "knobs": {"swing": "straight"}}, load_settings()
    )
    params = spec.to_params()
    assert params["knobs"]["swing"] == "straight"  # carried into the job, not dropped
    assert parse_cue_params(params, load_settings()) == spec  # the stored params round-trip
    assert load_soundtrack_spec({"timeline": "t.otio", "knobs": {"swing": "heavy"}}).knobs == (
        Knobs(extra=(("swing", "heavy"),))
    )
    panel = {"mood": "calm", "swing": "heavy", "layers": "3", "seed": "0", "text": " x "}
    assert vc.split_options(panel, defs) == {
        "knobs": {"mood": "calm", "swing": "heavy"},
        "layers": 3,
        "text": "x",
    }


def test_cli_options_become_the_request(swing: None, vmb_home: Path) -> None:
    from engine.cli import build_parser
    from engine.commands.generate import cue_params

    args = build_parser().parse_args(
        ["generate", "--text", "calm", "--duration", "4", "--swing", "heavy", "--backend", "draft"]
        + ["--instruments", "piano,drums", "--seed", "7", "--out", str(vmb_home)]
    )
    params = cue_params(args)  # parsed by the engine's parser before anything starts
    assert params["knobs"] == {"swing": "heavy", "instruments": ["piano", "drums"]}
    assert params["backend"] == "draft" and params["text"] == "calm" and "seed" not in params
    assert args.seed == 7 and "--layers" in _help("generate")
    # an option row is a request field of its own: the engine's typed spec must have it
    args = build_parser().parse_args(["generate", "--text", "x", "--layers", "2", "--out", "o"])
    with pytest.raises(InvalidRequest, match="unknown cue parameter 'layers'"):
        cue_params(args)


def test_finish_options_are_table_rows(vmb_home: Path) -> None:
    """ending, loop and stems: option rows, offered by the commands whose request takes them
    and sent under the wire's keys (CueSpec / SoundtrackSpec fields)."""
    from engine.cli import build_parser
    from engine.commands.generate import _generate_params
    from engine.commands.render import soundtrack_params

    argv = ["generate", "--text", "x", "--duration", "4", "--out", "o", "--stems", "--loop"]
    params, _ = _generate_params(build_parser().parse_args(argv))
    assert params["loop"] is True and params["stems"] is True and "ending" not in params
    argv = ["generate", "--text", "x", "--duration", "4", "--out", "o", "--ending", "button"]
    params, _ = _generate_params(build_parser().parse_args(argv))
    assert params["ending"] == "button" and "loop" not in params and "stems" not in params
    spec = parse_cue_params(params, load_settings())
    assert (spec.ending, spec.loop, spec.stems) == ("button", False, False)
    with pytest.raises(SystemExit):  # not an ending: argparse's clear error
        build_parser().parse_args(["generate", "--text", "x", "--ending", "boom", "--out", "o"])
    for flag in ("--ending", "--loop", "--stems", "--text"):
        assert flag in _help("generate")
    assert "--ending" not in _help("describe") and "--stems" not in _help("describe")
    assert "--loop" not in _help("render") and "--text" not in _help("render")
    argv = ["render", "t.otio", "--out", "o", "--ending", "fade", "--stems"]
    args = build_parser().parse_args(argv)
    import opentimelineio as otio

    args.timeline = str(vmb_home / "t.otio")  # written by OTIO's adapters
    shot = otio.opentime.TimeRange(duration=otio.opentime.RationalTime(240, 24))
    track = otio.schema.Track(children=[otio.schema.Clip(name="shot", source_range=shot)])
    otio.adapters.write_to_file(otio.schema.Timeline("t", tracks=[track]), args.timeline)
    params = soundtrack_params(args)
    assert params["ending"] == "fade" and params["stems"] is True and "loop" not in params


def test_capabilities_are_the_table() -> None:
    defs = _defs()
    rows = {k.name: k for k in knob_table.KNOBS}
    assert [k["name"] for k in defs["knobs"]] == [k for k in rows if rows[k].group == "knobs"]
    options = [o["name"] for o in defs["options"]]
    assert options == ["backend", "seed", "text", "stems", "ending", "loop"]
    text = next(o for o in defs["options"] if o["name"] == "text")
    from engine.describe.full import parse

    assert text["max_length"] == parse.MAX_TEXT_CHARS == 1000  # the panel and the engine agree
    assert parse.MAX_TEXT_CHARS is knob_table.MAX_TEXT_CHARS  # one definition: the table's
    typed = {f.name for f in dataclasses.fields(Knobs)} - {"text", "extra"}
    assert typed <= set(rows)  # every typed knob is a row of the table
    from bridge.protocol import COMMANDS

    cue_fields = {f.name for f in dataclasses.fields(CueSpec)}
    for row in knob_table.knob_rows("options"):  # each option is a cue field or a submit field
        assert row.name in cue_fields or row.name in COMMANDS["submit"], row.name


def test_requests_use_the_strict_typed_loader(vmb_home: Path) -> None:
    settings = load_settings()
    base = {"text": "calm", "duration_s": 4.0}
    bad = [
        ({**base, "durations": 3}, "unknown cue parameter 'durations'"),
        ({**base, "variations": "2"}, "'variations' must be an integer"),
        ({**base, "duck": "yes"}, "'duck' must be true or false"),
        ({**base, "cut_times_s": [1.0, "x"]}, r"'cut_times_s\[1\]' must be a number"),
        ({**base, "continue_from": 5}, "'continue_from' must be a map"),
        ({**base, "continue_from": {"tonic": "C"}}, "unknown continue_from key"),
        ({**base, "continue_from": {"bpm": True}}, "'continue_from.bpm' must be a number"),
        ({**base, "continue_from": {"key": "C" * 65}}, "'continue_from.key' is over 64"),
        ({**base, "start_s": True}, "'start_s' must be a number"),
        ({**base, "knobs": {"swing": "x"}}, "unknown knob"),
        ({**base, "knobs": {"text": "x" * 1001}}, "knob 'text' is 1001 characters"),
        ({**base, "marker_times_s": [1.0]}, "unknown cue parameter 'marker_times_s'"),
        ({**base, "markers": [{"time_s": "x"}]}, "each marker"),
        ({**base, "position_s": -1}, "'position_s' must be >= 0"),
        ({**base, "text": "x" * 1001}, "the limit is 1000"),
    ]
    for params, message in bad:
        with pytest.raises(InvalidRequest, match=message):
            parse_cue_params(params, settings)
    spec = parse_cue_params({**base, "name": None, "cut_times_s": [1, 2]}, settings)
    assert spec.name == "cue" and spec.cut_times_s == (1.0, 2.0)
    assert set(spec.to_params()) == {
        WIRE_NAMES.get(f.name, f.name) for f in dataclasses.fields(CueSpec)
    }
    assert parse_cue_params(spec.to_params(), settings) == spec  # the stored params round-trip
    with pytest.raises(InvalidRequest, match="unknown soundtrack parameter 'pre'"):
        load_soundtrack_spec({"timeline": "t.otio", "pre": "clip"})
    with pytest.raises(InvalidRequest, match="'continuous' must be true or false"):
        load_soundtrack_spec({"timeline": "t.otio", "continuous": 1})
    assert load_soundtrack_spec({"otio_json": "{}", "per": "scene"}) == SoundtrackSpec(
        otio_json="{}", per="scene"
    )


class _Sliders:
    """REAPER's TrackFX calls over one VMB Controls JSFX whose sliders hold `values` (by
    label), as its reaper_python API returns them (tuples, the value first or at [3]/[4])."""

    def __init__(self, labels: list[str], values: dict[str, float]) -> None:
        self.labels, self.values = ["-VMB Score controls id", *labels], values

    def RPR_CountTracks(self, proj):  # noqa: N802 - REAPER's names
        return 1

    def RPR_GetTrack(self, proj, i):  # noqa: N802
        return "track"

    def RPR_GetMasterTrack(self, proj):  # noqa: N802
        return "master"

    def RPR_TrackFX_GetCount(self, track):  # noqa: N802
        return 1 if track == "track" else 0

    def RPR_TrackFX_GetFXName(self, track, fx, buf, size):  # noqa: N802
        return (True, track, fx, "JS: " + jsfx.CONTROLS_NAME, size)

    def RPR_TrackFX_GetNumParams(self, track, fx):  # noqa: N802
        return len(self.labels)

    def RPR_TrackFX_GetParamName(self, track, fx, p, buf, size):  # noqa: N802
        return (True, track, fx, p, self.labels[p], size)

    def RPR_TrackFX_GetParam(self, track, fx, p, lo, hi):  # noqa: N802
        if p == 0:
            return (jsfx.CONTROLS_MARKER, track, fx, p, 0.0, 0.0)
        return (float(self.values.get(self.labels[p], 0.0)), track, fx, p, 0.0, 0.0)


def test_an_integer_knob_row_end_to_end(monkeypatch: pytest.MonkeyPatch, vmb_home: Path) -> None:
    """An integer row in the "knobs" group: served with its range, parsed as an int by the
    CLI, kept by the engine's parser, and a REAPER slider that starts at its minimum."""
    from engine.cli import build_parser
    from engine.commands.generate import cue_params

    monkeypatch.setattr(knob_table, "KNOBS", (*knob_table.KNOBS, DEPTH))
    defs = _defs()
    row = {k["name"]: k for k in defs["knobs"]}["depth"]
    assert (row["type"], row["min"], row["max"]) == ("integer", 2, 6)
    args = build_parser().parse_args(
        ["generate", "--text", "x", "--duration", "4", "--depth", "3", "--out", "o"]
    )
    assert cue_params(args)["knobs"] == {"depth": 3}  # an int, as the engine's parser wants
    assert parse_knobs({"depth": 3}).extra == (("depth", 3),)
    with pytest.raises(InvalidRequest, match="knob 'depth' must be an integer 2-6"):
        parse_knobs({"depth": 1})
    with pytest.raises(SystemExit):  # not a number: argparse's clear error, no traceback
        build_parser().parse_args(["generate", "--text", "x", "--depth", "many", "--out", "o"])

    source = jsfx.render_jsfx(defs)
    assert "=1<1,6,1>Depth (1 = auto)" in source  # the row's minimum, one below it: unset
    assert "=0<0,2147483647,1>Seed (0 = random)" in source  # the seed slider as before
    labels = [r["label"] for r in jsfx.jsfx_layout(defs) if r.get("knob") == "depth"]
    assert labels == ["Depth (1 = auto)"]
    for slider, want in ((1, None), (4, 4)):
        got = jsfx.read_controls(_Sliders(labels, {"Depth (1 = auto)": slider}), defs)
        assert got["depth"] == want
        assert vc.split_options(got, defs)["knobs"].get("depth") == want


def test_boolean_and_list_knob_rows_end_to_end(
    monkeypatch: pytest.MonkeyPatch, vmb_home: Path
) -> None:
    """A boolean and a list row in the "knobs" group: served, a CLI switch / list, kept by the
    engine's parser, an off/on REAPER slider and slots, and the plugins' request."""
    from engine.cli import build_parser
    from engine.commands.generate import cue_params

    monkeypatch.setattr(knob_table, "KNOBS", (*knob_table.KNOBS, SWELL, COLOURS))
    defs = _defs()
    rows = {k["name"]: k for k in defs["knobs"]}
    assert (rows["swell"]["type"], rows["swell"]["default"]) == ("boolean", False)
    assert (rows["colours"]["values"], rows["colours"]["max"]) == (["warm", "airy"], 2)
    args = build_parser().parse_args(
        ["generate", "--text", "x", "--duration", "4", "--swell", "--colours", "airy,warm"]
        + ["--out", "o"]
    )
    assert cue_params(args)["knobs"] == {"swell": True, "colours": ["airy", "warm"]}
    args = build_parser().parse_args(["generate", "--text", "x", "--duration", "4", "--out", "o"])
    assert cue_params(args)["knobs"] == {}  # not given: left to the engine
    knobs = parse_knobs({"swell": True, "colours": ["Warm"]})
    assert dict(knobs.extra) == {"swell": True, "colours": ("warm",)}
    assert knobs.to_json()["swell"] is True and Knobs(extra=knobs.extra) == knobs
    with pytest.raises(InvalidRequest, match="knob 'swell' must be true or false"):
        parse_knobs({"swell": "yes"})
    with pytest.raises(InvalidRequest, match="knob 'colours'.*warm, airy"):
        parse_knobs({"colours": ["loud"]})

    source = jsfx.render_jsfx(defs)
    assert "swell=0<0,1,1{off,on}>Swell" in source
    assert "colours2=0<0,2,1{none,warm,airy}>Colours 2" in source
    labels = [r["label"] for r in jsfx.jsfx_layout(defs) if r.get("knob") in ("swell", "colours")]
    assert labels == ["Swell", "Colours 1", "Colours 2"]

    class _Named(_Sliders):  # a choice slider's text, as REAPER formats it from the index
        def RPR_TrackFX_GetFormattedParamValue(self, track, fx, p, buf, size):  # noqa: N802
            words = {"Swell": ["off", "on"]}.get(self.labels[p], ["none", "warm", "airy"])
            return (True, track, fx, p, words[int(self.values.get(self.labels[p], 0))], size)

    got = jsfx.read_controls(_Named(labels, {"Swell": 1, "Colours 1": 2}), defs)
    assert got["swell"] is True and got["colours"] == ["airy", "none"]
    assert jsfx.read_controls(_Named(labels, {}), defs)["swell"] is False
    req = vc.split_options({"swell": "on", "colours": ["airy"], "loop": "on"}, defs)
    assert req == {"knobs": {"swell": True, "colours": ["airy"]}, "loop": True}
    assert vc.split_options({"swell": False}, defs)["knobs"] == {"swell": False}
