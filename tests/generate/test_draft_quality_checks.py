"""The draft-quality report's measures and checks on small synthetic arrangements and rows:
fast and deterministic, so a regression in a measure or a check fails here (the real renders
are in test_draft_quality.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from engine.eval import draft_measures as dm
from engine.eval import draft_notes as dn
from engine.eval import draft_report as dr
from engine.generate.draft.arrangement import Arrangement, Bar, Note, Part, Section, TempoSegment

BPM = 120.0
MELODY = Part("flute", 73, ("melody",), 0)
COMP = Part("piano", 0, ("comp",), 1)
BASS = Part("bass", 33, ("bass",), 2)
DRUMS = Part("drums", 0, ("drums",), 9)
C, F, G, AM = (60, 64, 67), (65, 69, 72), (67, 71, 74), (57, 60, 64)


def _arr(form, notes, parts=(MELODY, COMP, BASS, DRUMS), tonic=0) -> Arrangement:
    """4/4 bars at 120 BPM in the given (label, bars) sections."""
    bars, sections, beat = [], [], 0.0
    for si, (label, n) in enumerate(form):
        idx = []
        for _ in range(n):
            bars.append(Bar(len(bars), beat, 4.0, si))
            idx.append(len(bars) - 1)
            beat += 4.0
        sections.append(Section(si, label, 1.0, idx))
    return Arrangement(
        bpm=BPM, tonic=tonic, mode="major", key="C", genre="pop", mood="happy",
        energy="medium", duration_s=beat * 60 / BPM, parts=list(parts),
        tempo=[TempoSegment(0.0, 0.0, int(60e6 / BPM))], bars=bars, sections=sections,
        end_beat=beat, notes=sorted(notes, key=lambda n: n.start),
    )  # fmt: skip


def _chords(chords, beats_each=4.0, start=0.0, part=1) -> list[Note]:
    out = []
    for i, chord in enumerate(chords):
        out += [Note(part, start + i * beats_each, beats_each, p, 80) for p in chord]
    return out


def test_harmonic_rhythm_counts_changes_from_the_sounding_notes():
    once = _arr([("A", 4)], _chords([C, F, G, C]))
    assert dn.harmonic_rhythm(once)["chord_changes_per_bar"] == 1.0
    sevenths = _arr([("A", 4)], _chords([(67, 71, 74, 78), (64, 67, 71, 74)] * 2))  # Gmaj7 Em7
    assert dn.harmonic_rhythm(sevenths)["chord_changes_per_bar"] == 1.0
    twice = _arr([("A", 4)], _chords([C, AM, F, G] * 2, beats_each=2.0))
    assert dn.harmonic_rhythm(twice)["chord_changes_per_bar"] > 2.0
    # one held chord, an arpeggio over it and a walking bass: no change at all
    arp = [Note(1, b * 0.5, 0.5, C[b % 3], 80) for b in range(32)]
    walk = [Note(2, float(b), 1.0, 36 + (0, 2, 4, 7)[b % 4], 80) for b in range(16)]
    held = _arr([("A", 4)], _chords([C] * 4) + arp + walk)
    assert dn.harmonic_rhythm(held)["chord_changes_per_bar"] == 0.0
    # a chord anticipated on the bar's last offbeat and tied over is one change, not two
    early = _chords([C]) + [Note(1, 3.0, 5.0, p, 80) for p in F] + _chords([G, C], start=8.0)
    assert dn.harmonic_rhythm(_arr([("A", 4)], early))["chord_changes_per_bar"] == 1.0
    # two tones of the chord before the pad joins are the same chord
    sparse = [Note(1, 0.0, 2.0, p, 80) for p in (62, 64)] + _chords([(62, 64, 66, 69)], 2.0, 2.0)
    sparse += _chords([(61, 64, 69, 71)] * 3, start=4.0)
    assert dn.harmonic_rhythm(_arr([("A", 4)], sparse))["chord_changes_per_bar"] == round(1 / 3, 3)
    # the intro and the end are not counted; drums and the melody are no chords
    framed = _arr([("intro", 2), ("A", 2), ("end", 1)], _chords([C, F, C, C, G]))
    assert dn.harmonic_rhythm(framed)["chord_changes_per_bar"] == 0.0


def test_register_share_per_section():
    chords = _chords([C] * 4)
    above = [Note(0, float(b), 1.0, 72, 90) for b in range(8)]  # over the chord's top (67)
    inside = [Note(0, 8.0 + b, 1.0, 62, 90) for b in range(8)]  # under it
    arr = _arr([("A", 2), ("B", 2)], chords + above + inside)
    assert dn.register_below(arr) == {"A": 0.0, "B": 1.0}
    assert dn.register_below(_arr([("A", 2)], above)) == {}  # no chord sounding: not counted


def test_feel_measures_jitter_push_swing_and_velocity():
    rng = np.random.default_rng(0)
    shifts = rng.normal(0.02, 0.02, 32)  # beats: 10 ms late on average, 10 ms spread at 120
    notes = [Note(0, b + float(s), 0.25, 72, 60 if b % 2 else 90) for b, s in enumerate(shifts)]
    notes += [Note(1, b + 2 / 3, 0.25, 64, 70) for b in range(32)]  # swung eighths
    f = dn.feel(_arr([("A", 8)], notes))
    assert 8.0 < f["push_ms"] < 12.0 and 7.0 < f["jitter_ms"] < 13.0, f
    assert f["swing_ratio"] == 2.0
    assert 7.0 < f["velocity_sd"] < 8.0  # (15 for the 60/90 part + 0 for the flat one) / 2
    straight = dn.feel(_arr([("A", 8)], [Note(1, b + 0.5, 0.25, 64, 70) for b in range(32)]))
    assert straight["swing_ratio"] == 1.0 and straight["jitter_ms"] is None


def test_intro_layers_and_form_units():
    intro = [Note(1, 0.0, 8.0, 60, 80)] + [Note(2, 4.0, 4.0, 36, 80)]
    a_notes = [Note(p, 8.0, 4.0, 60 + p, 80) for p in range(4)]
    arr = _arr([("intro", 2), ("A", 4), ("B", 3), ("end", 1)], intro + a_notes)
    assert dn.intro_layers(arr) == {"first_half": 1, "second_half": 2, "a": 4}
    assert dn.form(arr) == (("intro", 2), ("A", 4), ("B", 3), ("end", 1))
    # 10 bars: too short for a 4-bar intro, A and B, so the 2-bar intro is the unit that fits
    assert dn.odd_units(arr) == ["B:3"]
    phrase = _arr([("intro", 2), ("A", 2), ("B", 4), ("end", 1)], a_notes)
    assert dn.odd_units(phrase) == []  # 9 bars: intro 2 + A 2 are the first 4-bar phrase
    medium = _arr([("intro", 2), ("A", 2), ("B", 8), ("end", 1)], a_notes)
    assert dn.odd_units(medium) == ["A:2"]  # 13 bars: room for A 4
    long = _arr([("intro", 2), ("A", 8), ("B", 8), ("end", 1)], a_notes)
    assert dn.odd_units(long) == ["intro:2"]  # 19 bars: room for a 4-bar intro and two forms
    chorus = _arr([("intro", 4), ("A", 12), ("end", 1)], a_notes)
    assert dn.odd_units(chorus) == ["A:12"]
    chorus.genre = "blues"  # a blues chorus is 12 bars
    assert dn.odd_units(chorus) == []
    assert dn.intro_layers(_arr([("A", 4)], a_notes)) is None


def test_seed_sets_ignore_the_key_but_not_the_voicing():
    tune = [Note(0, b, 1.0, 72 + b % 3, 90) for b in range(8)]
    in_c = _arr([("A", 2)], tune + _chords([C, F]))
    up = [Note(n.part, n.start, n.dur, n.pitch + 5, n.vel) for n in tune + _chords([C, F])]
    in_f = _arr([("A", 2)], up, tonic=5)
    assert dn.melody_onsets(in_c) == dn.melody_onsets(in_f)
    assert dn.voicing_onsets(in_c) == dn.voicing_onsets(in_f)
    spread = _arr([("A", 2)], tune + _chords([(48, 64, 79), F]))  # C spread: another voicing
    assert dm.jaccard(dn.voicing_onsets(in_c), dn.voicing_onsets(spread)) < 1.0


def test_deepest_dip_finds_a_break():
    sr = 100
    power = np.ones(60 * sr)
    power[30 * sr : 40 * sr] = 0.01  # a 10 s break 20 dB down
    cue = -0.691 + dm.db(float(power.mean()))
    dip = dm.deepest_dip(power, sr, 0.0, 60.0, cue)
    assert 19.0 < dip < 19.5, dip  # 20 dB under the steady level; the cue mean is 0.8 dB lower
    assert dm.deepest_dip(power, sr, 0.0, 3.0, cue) is None


def _row(**over) -> dict:
    """A measured row that meets every target; tests change what they check."""
    row = {
        "cue": "happy-pop-medium", "genre": "pop", "mood": "happy", "tempo": "medium",
        "energy": "medium", "seed": 1, "bpm": 120.0, "named": ["piano", "bass"],
        "instruments": ["flute", "piano", "bass", "drums"],
        "parts": [{"name": "flute"}, {"name": "piano"}, {"name": "bass"}, {"name": "drums"}],
        "correlation": 0.6, "mono_loss_db": 1.0, "clipped": 0.0,
        "delivered": {"correlation": 0.6, "mono_loss_db": 1.0, "lufs": -16.2,
                      "target_lufs": -16.0, "clipped": 0.0, "samples_ok": True},
        "drums_gap_db": 0.0, "bass_gap_db": 4.0, "lead_vs_band_db": -4.0, "silent": [],
        "lead_lead_chords_same_patch": False, "lead_program": 73, "bass_program": 33,
        "intro_gap_lu": 6.0, "intro_layers": {"first_half": 2, "second_half": 4, "a": 5},
        "b_lift_lu": [3.0], "loudest_is_climax": True, "loudest_s": 22.0,
        "deepest_dip_lu": 4.0, "above_4k": 0.05, "mid_250_1k": 0.3,
        "chord_changes_per_bar": 1.0, "bars_per_chord": 1.0,
        "melody_below_chord": {"A": 0.0, "B": 0.05}, "jitter_ms": 8.0, "push_ms": 2.0,
        "swing_ratio": 1.0, "velocity_sd": 12.0, "form_units": [["intro", 4], ["A", 8]],
        "odd_units": [], "cue_bars": 14.0, "short_rule": [], "duration_s": 30.0,
        "end_hold_s": 3.0, "dead_tail_s": 0.5, "onsets": {"drums": [], "bass": [], "comp": []},
        "melody_onsets": [], "voicing_onsets": [], "beat_regularity": 0.98,
        "key_clarity": 0.9, "repetition": 0.1, "lra_lu": 4.0,
    }  # fmt: skip
    row.update(over)
    return row


def _seeds(n=4, **over) -> list[dict]:
    """n seeds of one cue that differ in form, onsets and tempo."""
    rows = []
    for s in range(n):
        r = _row(seed=s, bpm=110.0 + s, **over)
        r["form_units"] = [["intro", 4], ["A", 8 if s % 2 else 4]]
        for key in ("melody_onsets", "voicing_onsets"):
            r[key] = [[s * 100 + i, 0] for i in range(4)]
        r["onsets"] = {g: [s * 100 + i for i in range(4)] for g in ("drums", "bass", "comp")}
        rows.append(r)
    return rows


def _check(rows, name) -> dict:
    return dr.summarise(rows)["checks"][name]


def test_good_rows_pass_every_check():
    rows = _seeds() + _seeds(cue="sad-classical-slow", genre="classical", mood="sad",
                             tempo="slow", chord_changes_per_bar=0.5)  # fmt: skip
    rows += _seeds(tempo="fast", cue="fun-electronic-fast", genre="electronic")
    for i, r in enumerate(rows):
        r["bpm"] = 80.0 + i
        r["bass_program"] = 32 + i % 6
    failing = {k: v for k, v in dr.summarise(rows)["checks"].items()
               if isinstance(v, dict) and v["pass"] != v["of"]}  # fmt: skip
    assert not failing, failing


def test_a_missing_intro_or_b_section_fails_not_passes():
    rows = _seeds()
    rows[2] = copy.deepcopy(rows[2]) | {"intro_gap_lu": None, "intro_layers": None}
    assert _check(rows, "intro present, <= 10 LU under the cue")["pass"] == 0
    assert _check(rows, "intro builds by layers")["pass"] == 0
    rows = _seeds()
    rows[1] |= {"b_lift_lu": [], "melody_below_chord": {"A": 0.0}}
    assert _check(rows, "B present, lifts 2-6 LU over A")["pass"] == 0
    assert _check(rows, "melody above the chord in B (<= 10 % of notes below its top)")["pass"] == 0


def test_tightened_targets():
    assert _check(_seeds(lead_vs_band_db=-0.5), "lead vs band -8..-1 dB")["pass"] == 0
    assert _check(_seeds(lead_vs_band_db=-9.0), "lead vs band -8..-1 dB")["pass"] == 0
    flat = {"first_half": 4, "second_half": 4, "a": 4}
    assert _check(_seeds(intro_layers=flat), "intro builds by layers")["pass"] == 0
    early = _seeds(loudest_is_climax=False)
    assert _check(early, "loudest 3 s in the back half / last B, not the end")["pass"] == 0
    assert _check(_seeds(deepest_dip_lu=18.0), "deepest 4 s dip <= 10 LU under the cue")[
        "failing"
    ] == ["happy-pop-medium (18)"]
    bass_lead = _seeds(lead_program=39)
    assert _check(bass_lead, "lead not on a bass patch (GM 32-39) nor the bass's")["pass"] == 0
    same = _seeds(lead_program=33)
    assert _check(same, "lead not on a bass patch (GM 32-39) nor the bass's")["pass"] == 0
    short = _seeds(named=["a", "b", "c", "d", "e", "f", "g"])
    assert _check(short, "every named instrument plays (up to 6)")["pass"] == 0
    deliv = _seeds()
    deliv[0]["delivered"] = deliv[0]["delivered"] | {"correlation": 0.1}
    assert _check(deliv, "delivered cue.wav correlation >= 0.2")["pass"] == 0


def test_variety_checks():
    same = _seeds()
    for r in same:
        r["form_units"] = same[0]["form_units"]
        r["melody_onsets"] = same[0]["melody_onsets"]
    assert _check(same, "seeds vary the form (>= 2 forms)")["pass"] == 0
    for r in same:  # 9 bars: one form in 4-bar phrases, the form's variety does not apply
        r["cue_bars"] = 9.0
    assert _check(same, "seeds vary the form (>= 2 forms)")["of"] == 0
    assert _check(same, "seeds vary the melody (J < 0.8)")["failing"] == ["happy-pop-medium (1)"]
    one = _seeds(n=1)  # one seed: variety does not apply
    assert _check(one, "seeds vary the voicing (J < 0.8)")["of"] == 0
    no_drums = _seeds()  # no seed has drums: their variety does not apply, the rest does
    for r in no_drums:
        r["onsets"]["drums"] = []
    assert _check(no_drums, "seeds vary drums (J < 0.8)")["of"] == 0
    assert _check(no_drums, "seeds vary bass (J < 0.8)")["of"] == 1
    slow = _seeds(n=4, tempo="slow", cue="x")
    for r in slow:
        r["bpm"] = 70.0
    bpm = _check(_seeds(n=4) + slow, "distinct BPM per bucket >= 3")
    assert bpm == {"pass": 1, "of": 2, "failing": ["slow (1)"]}
    for r in slow[:2]:  # 70.2 and 69.8 are one tempo to a listener
        r["bpm"] = 70.2 if r is slow[0] else 69.8
    assert _check(_seeds(n=4) + slow, "distinct BPM per bucket >= 3")["failing"] == ["slow (1)"]
    end = "end: held chord <= 5 s, <= 1.5 s at the end 30 LU under the cue"
    assert _check(_seeds(end_hold_s=6.5), end)["pass"] == 0
    assert _check(_seeds(dead_tail_s=2.5), end)["pass"] == 0
    assert _check(_seeds(end_hold_s=None), end)["pass"] == 1  # no held end (a fade)
    short = dr.summarise(_seeds(short_rule=["intro:2"]))["checks"]
    assert short["accepted by the short-cue rule (2-bar units)"] == "happy-pop-medium (intro:2)"
    odd = _seeds(odd_units=["A2:5", "intro:2"])
    assert _check(odd, "body sections in 4/8-bar units")["failing"] == ["happy-pop-medium (A2:5)"]
    assert _check(odd, "intro in 4/8-bar units")["failing"] == ["happy-pop-medium (intro:2)"]


def test_harmony_spectrum_and_feel_checks_by_genre():
    ballad = _seeds(cue="sad", genre="classical", mood="sad", tempo="slow",
                    chord_changes_per_bar=1.2)  # fmt: skip
    slow_pop = _seeds(chord_changes_per_bar=1.0)
    name = "harmonic rhythm >= 0.9 changes/bar, faster than ballads (funk/pop/latin)"
    assert _check(ballad + slow_pop, name) == {"pass": 0, "of": 1,
                                               "failing": ["happy-pop-medium (1)"]}  # fmt: skip
    assert _check(_seeds(chord_changes_per_bar=0.5), name)["pass"] == 0
    dull = _seeds(genre="cinematic", mood="tense", mid_250_1k=0.6)
    spec = "spectrum >4k >= 1 %, 250-1k <= 45 % (cinematic/classical/epic)"
    assert _check(dull, spec)["pass"] == 0
    assert _check(_seeds(mid_250_1k=0.6), spec)["of"] == 0  # pop: not checked
    stiff = _seeds(genre="jazz", jitter_ms=4.4, velocity_sd=6.0)
    assert _check(stiff, "timing jitter > 5 ms (expressive genres)")["pass"] == 0
    assert _check(stiff, "velocity spread > 9 (expressive genres)")["pass"] == 0
    assert _check(_seeds(genre="electronic", jitter_ms=0.0),
                  "timing jitter > 5 ms (expressive genres)")["of"] == 0  # fmt: skip


def test_markdown_lists_failures_with_figures():
    md = dr.to_markdown(dr.summarise(_seeds(lead_vs_band_db=0.5)))
    assert "| lead vs band -8..-1 dB | 0/1 | happy-pop-medium (0.5,0.5) |" in md


def test_dead_tail_end_hold_and_short_rule():
    sr = 1000
    power = np.concatenate([np.ones(8 * sr), np.full(2 * sr, 1e-4)])  # 40 dB down for 2 s
    assert dm.dead_tail_s(power, sr, -0.691, 30.0) == pytest.approx(2.0, abs=0.41)  # 400 ms
    assert dm.dead_tail_s(np.ones(10 * sr), sr, -0.691, 30.0) == pytest.approx(0.0, abs=0.11)
    arr = _arr([("intro", 2), ("A", 2), ("B", 4), ("end", 1)], [])
    arr.bars[-1].final = True
    assert dn.end_hold_s(arr) == pytest.approx(2.0)  # one bar at 120 BPM
    assert dn.short_rule(arr) == ["intro:2", "A:2"] and dn.odd_units(arr) == []
