"""Draft mix and orchestration without rendering (issue 19): part levels from the notes, the
lead under the band, the orchestra's bass and air, rubato, the lead on top, seeded bass takes."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest

from engine.eval import draft_notes as dn
from engine.eval import draft_quality as dq
from engine.eval.draft_measures import jaccard
from engine.generate.draft import levels
from engine.generate.draft import patches as pt
from engine.generate.draft import style as st
from engine.generate.draft.generator import DraftGenerator


def _arrange(cue: dq.CueSpec, seed: int = 1, duration: float = 30.0):
    with tempfile.TemporaryDirectory() as tmp:
        arr, _ = DraftGenerator().arrange(dq._request(cue, seed, Path(tmp), duration))
    return arr


def _cue(genre: str) -> dq.CueSpec:
    return next(c for c in dq.CUES if c.genre == genre)


def _estimated(arr) -> list[float]:
    """Each part's estimated loudness at its CC7 (the drum channel shares the drums')."""
    power = levels.part_powers(arr)
    return [levels.patch_db(arr, i) + levels.gated_db(power[i]) + 40 * np.log10(p.volume / 127)
            for i, p in enumerate(arr.parts)]  # fmt: skip


@pytest.mark.parametrize("genre", ["rock", "cinematic", "ambient", "funk", "classical"])
def test_the_lead_sits_just_under_the_band_by_the_estimate(genre):
    arr = _arrange(_cue(genre))
    assert all(1 <= p.volume <= 127 for p in arr.parts)
    lead = next(i for i, p in enumerate(arr.parts) if "melody" in p.roles)
    power = levels.part_powers(arr)
    gain = [
        levels.patch_db(arr, i) + 40 * np.log10(p.volume / 127) for i, p in enumerate(arr.parts)
    ]
    band = sum(power[i] * 10 ** (gain[i] / 10) for i in range(len(arr.parts)) if i != lead)
    lead_db = levels.gated_db(power[lead] * 10 ** (gain[lead] / 10))
    family = "groove" if st.GENRES[genre].groove else "open"
    # the B-lift trim (levels.shape_lifts) moves every part of a section alike: the gate moves
    # the lead against the band by a few tenths of a dB
    assert lead_db - levels.gated_db(band) == pytest.approx(-st.LEAD_UNDER_BAND_DB[family], abs=0.5)


def test_parts_sit_at_their_roles_levels_and_one_plays_at_full_volume():
    arr = _arrange(_cue("pop"))
    est = _estimated(arr)
    band = [i for i, p in enumerate(arr.parts) if "melody" not in p.roles]
    offsets = [est[i] - st.ROLE_LEVEL_DB["groove"][arr.parts[i].roles[0]] for i in band]
    assert max(offsets) - min(offsets) < 0.5  # one common offset: every part at its role level
    assert max(p.volume for p in arr.parts) == 127


def test_a_loud_kit_is_turned_down_more_than_a_soft_one():
    rock, lofi = _arrange(_cue("rock")), _arrange(_cue("lofi"))
    drums = [next(p.volume for p in a.parts if p.is_drum) for a in (rock, lofi)]
    assert drums[0] < drums[1]


def test_register_curve_the_harp_is_quieter_up_high():
    harp = pt.PATCH_CURVE[46]
    assert np.interp(86, pt.CURVE_PITCHES, harp) < np.interp(67, pt.CURVE_PITCHES, harp) - 6


@pytest.mark.parametrize("genre", ["cinematic", "classical"])
def test_the_orchestra_stands_on_its_basses_and_has_air(genre):
    arr = _arrange(_cue(genre))
    bass = [p for p in arr.parts if p.roles == ("bass",)]
    assert bass and bass[0].name == "cello" and bass[0].program == 43
    notes = [n.pitch for n in arr.notes if arr.parts[n.part] is bass[0]]
    assert np.median(notes) <= 50  # an octave under the chords
    assert any(p.is_drum and p.roles == ("perc",) for p in arr.parts)  # triangle, cymbal
    counters = [p.name for p in arr.parts if p.roles == ("counter",)]
    ranges = {st.COUNTER_RANGE.get(n) for n in counters}
    assert len(ranges) == len(counters) or len(counters) < 2


def test_classical_plays_with_rubato_and_phrase_dynamics():
    feel = [dn.feel(_arrange(_cue("classical"), seed)) for seed in (1, 2)]
    assert all(f["jitter_ms"] > 5.0 and f["velocity_sd"] > 9.0 for f in feel)


def test_the_melody_stays_over_the_chords_in_rock_b():
    shares = [dn.register_below(_arrange(_cue("rock"), seed)).get("B", 0.0) for seed in (1, 2, 3)]
    assert max(shares) <= 0.1


@pytest.mark.parametrize("genre", ["blues", "cinematic"])
def test_seeds_take_the_bass_and_comping_differently(genre):
    onsets = [dq._role_onsets(_arrange(_cue(genre), seed)) for seed in (1, 2, 3, 4)]
    for group in ("bass", "comp"):
        pairs = [jaccard(a[group], b[group]) for a, b in itertools.combinations(onsets, 2)]
        assert np.mean(pairs) < 0.8, group


def test_every_b_is_trimmed_into_a_window_that_is_not_empty():
    lo, hi = st.B_LIFT_LU
    for bias in (0.0, *st.B_LIFT_ESTIMATE_BIAS.values()):
        assert lo - bias <= max(lo, hi - 0.5) - bias <= hi - bias
    arr = _arrange(dq.CueSpec("happy", "pop", "medium", "medium"), 2, 60.0)  # A B A2 B forms
    spans = levels.section_spans(arr)
    lifts = [levels.lift(spans, i) for i, s in enumerate(spans) if s[0] == "B"]
    lifts = [x for x in lifts if x is not None]
    assert len(lifts) >= 2 and all(lo - 0.5 <= x <= hi + 0.5 for x in lifts), lifts
    assert lifts[-1] >= max(lifts[:-1]) - 0.1  # the last B is the climax
