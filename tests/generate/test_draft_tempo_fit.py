"""A drawn tempo is fitted to the form (form.fit_tempo): a 4-bar intro and 4/8-bar sections,
then the held end, the tempo moved 8 % at most inside its bucket; a user's BPM, cuts and
markers keep their tempo and downbeats."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine import taxonomy
from engine.eval import draft_notes as dn
from engine.eval import draft_quality as dq
from engine.generate.draft import style as st
from engine.generate.draft.form import fit_tempo, ring_hold
from engine.generate.draft.generator import DraftGenerator
from engine.types import GenerationRequest

POP = dq.CueSpec("happy", "pop", "medium", "medium")
FAST = dq.CueSpec("uplifting", "pop", "fast", "high")
SLOW = dq.CueSpec("calm", "ambient", "slow", "low")
HIPHOP = dq.CueSpec("mysterious", "hip-hop", "slow", "medium")


def _request(cue: dq.CueSpec, seed: int, duration_s: float, **kw) -> GenerationRequest:
    req = dq._request(cue, seed, Path("."), duration_s)
    if "bpm" in kw:
        attrs = replace(req.description.attributes, bpm=kw.pop("bpm"))
        kw["description"] = replace(req.description, attributes=attrs)
    return replace(req, **kw)


@pytest.mark.parametrize(("cue", "duration"), [(POP, 30.0), (FAST, 30.0), (POP, 60.0),
                                               (SLOW, 60.0), (POP, 90.0)])  # fmt: skip
def test_a_drawn_tempo_is_fitted_so_sections_are_4_or_8_bars(cue, duration):
    lo, hi = st.BUCKET_TEMPO[cue.tempo]
    for seed in (1, 2, 3, 4):
        arr, facts = DraftGenerator().arrange(_request(cue, seed, duration))
        fit = facts["tempo_fit"]
        assert abs(fit["bpm"] / fit["drawn_bpm"] - 1.0) <= st.FORM_FIT_MAX_MOVE + 1e-9
        assert lo <= facts["bpm"] <= hi and facts["bpm"] == fit["bpm"]
        assert taxonomy.tempo_bucket(facts["bpm"]) == cue.tempo
        assert "fitted" in fit["note"]
        form = dn.form(arr)
        choice = duration * fit["drawn_bpm"] / 240.0 < st.INTRO_CHOICE_BARS
        assert form[0] in ((("intro", 4), ("intro", 2)) if choice else (("intro", 4),)), form
        assert all(n in (4, 8) for label, n in form[1:] if label != "end"), form
        final = arr.bars[-1]
        assert final.final and final.beats >= ring_hold(facts["bpm"]) - 1e-6
        assert arr.time_of(arr.end_beat) == pytest.approx(duration, abs=1e-6)


def test_a_slow_short_cue_takes_the_phrase_plan_nearest_its_tempo():
    for seed in (1, 2, 3, 4):
        arr, facts = DraftGenerator().arrange(_request(HIPHOP, seed, 30.0))
        assert dn.form(arr)[:-1] in ((("intro", 2), ("A", 4)), (("intro", 2), ("A", 2)))
        assert dn.form(arr)[-1] == ("B", 4)
        fit = facts["tempo_fit"]
        assert abs(fit["bpm"] / fit["drawn_bpm"] - 1.0) <= st.SHORT_FORM_MAX_MOVE
    slow = st.BUCKET_TEMPO["slow"]
    ballad, walk = (
        fit_tempo(30.0, 71.0, "ring", slow, 0.04),
        fit_tempo(30.0, 88.0, "ring", slow, 0.04),
    )
    assert (ballad.intro, ballad.bars, ballad.bpm) == (2, 8, 71.0)  # A 2 + B 4 fits as drawn
    assert (walk.intro, walk.bars, walk.bpm) == (2, 10, 88.0)  # A 4 + B 4 fits as drawn


def test_an_explicit_bpm_is_never_changed():
    for bpm in (97.0, 123.0, 150.0):
        arr, facts = DraftGenerator().arrange(_request(POP, 1, 30.0, bpm=bpm))
        assert facts["bpm"] == bpm and "tempo_fit" not in facts
        assert all(t.bpm == pytest.approx(bpm, rel=1e-5) for t in arr.tempo)


def test_cuts_and_markers_keep_their_downbeats():
    for kw in ({"cut_times_s": (11.0,)}, {"marker_times_s": (13.0,)}):
        arr, facts = DraftGenerator().arrange(_request(POP, 2, 30.0, **kw))
        assert "tempo_fit" not in facts
        hit = (kw.get("cut_times_s") or kw.get("marker_times_s"))[0]
        assert any(abs(arr.time_of(b.start) - hit) < 1e-3 for b in arr.bars)
        assert any(abs(arr.time_of(arr.bars[s.bars[0]].start) - hit) < 1e-3
                   for s in arr.sections)  # fmt: skip


@pytest.mark.parametrize("ending", ["ring", "fade", "none", "button", "cut"])
def test_every_ending_fills_the_length_with_whole_bars(ending):
    frame = 1.0 / 25.0
    fit = fit_tempo(30.0, 121.0, ending, (105.0, 134.99), frame)
    assert fit is not None and fit.intro == 4 and (fit.bars - fit.intro) % 4 == 0
    length = 30.0 - frame if ending in ("button", "cut") else 30.0
    spare = length * fit.bpm / 60.0 - 4 * fit.bars  # beats after the last body bar
    if ending == "ring":
        extra = max(st.HOLD_EXTRA_S) * fit.bpm / 60.0
        assert ring_hold(fit.bpm) <= spare <= ring_hold(fit.bpm) + extra + 1e-6
    else:
        assert spare == pytest.approx(0.0, abs=0.01)
    assert fit_tempo(30.0, 121.0, "loop", (105.0, 134.99), frame) is None


def test_a_fitted_cue_is_exactly_its_length_with_every_ending():
    for ending in ("ring", "fade", "button"):
        arr, facts = DraftGenerator().arrange(_request(POP, 3, 30.0, ending=ending))
        assert "tempo_fit" in facts
        assert arr.time_of(arr.end_beat) == pytest.approx(30.0, abs=1e-6)
        assert all(n in (4, 8) for label, n in dn.form(arr)[1:] if label != "end")


def test_seeds_vary_a_short_medium_cue_by_its_intro():
    forms = {
        dn.form(DraftGenerator().arrange(_request(POP, seed, 30.0))[0]) for seed in range(1, 9)
    }
    assert {f[0] for f in forms} == {("intro", 2), ("intro", 4)}, forms


def test_the_cli_shows_the_tempo_source_and_fit(capsys: pytest.CaptureFixture[str]):
    """`vmb generate --json` carries the draft's tempo source and fit; the text says both."""
    from engine.commands.generate import JSON_KEYS, _print_cue, json_row

    _, facts = DraftGenerator().arrange(_request(POP, 3, 30.0))
    attrs = {"mood": "happy", "genre": "pop", "tempo": "medium", "bpm": None, "instruments": []}
    cue = {**dict.fromkeys(JSON_KEYS), "audio": "cue.wav", "duration_s": 30.0, "seed": 3,
           "description": "t", "attributes": attrs, "stems": {}, "extra": facts}  # fmt: skip
    row = json_row(cue)
    assert row["tempo_source"] == facts["tempo_source"] == "mood+genre"
    assert row["tempo_fit"] == facts["tempo_fit"] and "bpm" in row["tempo_fit"]
    _print_cue(cue)
    line = next(x for x in capsys.readouterr().out.splitlines() if "tempo: " in x)
    assert line == f"  tempo: from mood+genre; {facts['tempo_fit']['note']}"
    _, facts = DraftGenerator().arrange(_request(POP, 3, 30.0, bpm=120.0))
    row = json_row({**cue, "extra": facts})
    assert row["tempo_source"] == "attributes" and "tempo_fit" not in row


def test_a_slow_short_cue_far_from_any_form_still_gets_the_nearest():
    slow = st.BUCKET_TEMPO["slow"]
    fit = fit_tempo(30.0, 56.0, "ring", slow, 0.04)  # 22 % from the nearest phrase plan
    assert fit is not None and (fit.intro, fit.bars) == (2, 8)
    assert abs(fit.bpm / 56.0 - 1.0) <= st.FORM_FIT_FALLBACK_MOVE


def test_the_held_end_never_runs_past_its_ceiling():
    for duration, bucket in ((30.0, "slow"), (60.0, "slow"), (30.0, "medium"), (90.0, "fast")):
        lo, hi = st.BUCKET_TEMPO[bucket]
        for bpm in range(int(lo), int(hi) + 1, 3):
            fit = fit_tempo(duration, float(bpm), "ring", (lo, hi), 0.04)
            if fit is not None:
                hold_s = duration - 4 * fit.bars * 60.0 / fit.bpm
                assert hold_s <= st.HOLD_MAX_S + 0.05, (duration, bpm, fit)
