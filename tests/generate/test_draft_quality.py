"""Issue 19's targets on a small set, measured as the draft-quality report measures them: on
each part rendered alone through FluidSynth, on the mix, and on the notes across seeds."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest

from engine import cli
from engine.describe.draft import instruments_of
from engine.eval import draft_measures as dm
from engine.eval import draft_quality as dq
from engine.generate.draft import patches as pt
from engine.generate.draft import render as draft_render
from engine.generate.draft import style as st
from engine.generate.draft.band import assign_parts
from engine.generate.draft.generator import DraftGenerator
from engine.taxonomy import INSTRUMENTS

HAVE_RENDERER = shutil.which("fluidsynth") is not None and any(
    Path(p).is_file() for p in draft_render.SOUNDFONT_CANDIDATES
)
needs_renderer = pytest.mark.skipif(not HAVE_RENDERER, reason="needs fluidsynth + a GM soundfont")

# the pop cue had the anti-phase saw lead; the epic cue was dull and missing its percussion;
# the sad classical cue had a silent cello; funk had drums 20 dB under the lead
SMALL_SET = (
    dq.CueSpec("happy", "pop", "medium", "medium"),
    dq.CueSpec("epic", "cinematic", "fast", "high"),
    dq.CueSpec("sad", "classical", "slow", "low"),
    dq.CueSpec("playful", "funk", "medium", "medium"),
)


@pytest.fixture(scope="module")
def measured() -> dict[str, dict]:
    gen = DraftGenerator()
    soundfont = draft_render.find_soundfont("")
    return {c.name: dq.measure_cue(gen, c, 3, soundfont) for c in SMALL_SET}


@needs_renderer
@pytest.mark.parametrize("cue", [c.name for c in SMALL_SET])
def test_mix_is_mono_safe(measured, cue):
    row = measured[cue]
    assert row["correlation"] >= 0.2, row["correlation"]
    assert row["mono_loss_db"] <= 3.0, row["mono_loss_db"]
    delivered = row["delivered"]  # the mastered cue.wav generate() writes
    assert delivered["correlation"] >= 0.2 and delivered["mono_loss_db"] <= 3.0, delivered
    assert abs(delivered["lufs"] - delivered["target_lufs"]) <= 1.0, delivered
    assert delivered["clipped"] == 0.0 and delivered["samples_ok"], delivered


@needs_renderer
@pytest.mark.parametrize("cue", [c.name for c in SMALL_SET])
def test_parts_are_balanced_and_audible(measured, cue):
    row = measured[cue]
    assert not row["silent"], f"silent parts: {row['silent']} in {row['parts']}"
    if row["genre"] in dq.GROOVE_GENRES:
        assert row["drums_gap_db"] <= 12.0 and row["bass_gap_db"] <= 12.0, row["parts"]
    assert row["lead_vs_band_db"] is not None and row["lead_vs_band_db"] <= 0.0
    assert not row["lead_lead_chords_same_patch"]


@needs_renderer
@pytest.mark.parametrize("cue", [c.name for c in SMALL_SET])
def test_shape_builds_and_lifts(measured, cue):
    row = measured[cue]
    if row["intro_gap_lu"] is not None:
        assert row["intro_gap_lu"] <= 10.0
    for lift in row["b_lift_lu"]:
        assert 2.0 <= lift <= 6.0, row["b_lift_lu"]
    assert not row["loudest_is_end"], row["loudest_s"]


@needs_renderer
def test_epic_has_brass_percussion_and_air(measured):
    row = measured["epic-cinematic-fast"]
    names = {p["name"] for p in row["parts"]}
    assert {"brass", "drums", "timpani"} <= names
    assert row["above_4k"] >= 0.01  # was 0.1 % of the energy
    assert row["mid_250_1k"] < 0.6


def _arrangements(cue: dq.CueSpec, seeds=(1, 2, 3, 4), duration_s: float = 30.0):
    gen = DraftGenerator()
    return [gen.arrange(dq._request(cue, s, Path("."), duration_s)) for s in seeds]


LATIN = dq.CueSpec("happy", "latin", "medium", "high")


@pytest.mark.parametrize("cue", [SMALL_SET[0], SMALL_SET[3], LATIN])
def test_seeds_change_groove_bass_and_comping(cue):
    onsets = [dq._role_onsets(arr) for arr, _ in _arrangements(cue)]
    for group in ("drums", "bass", "comp"):
        pairs = [dm.jaccard(a[group], b[group]) for a, b in itertools.combinations(onsets, 2)]
        assert np.mean(pairs) < 0.8, (group, pairs)  # was 1.00: seeds only changed the key


def _anticipated_changes(arr) -> int:
    """Chord changes the comping part plays an eighth early (on the bar's last offbeat, the
    next chord's tones only), leaving the next downbeat silent."""
    comp = next(i for i, p in enumerate(arr.parts) if p.roles[0] == "comp")
    found = 0
    for bar, nxt in itertools.pairwise(arr.bars):
        if nxt.final or nxt.section != bar.section or nxt.chord.pcs == bar.chord.pcs:
            continue
        notes = [n for n in arr.notes if n.part == comp]
        late = {n.pitch % 12 for n in notes if bar.start + 3.4 <= n.start < bar.start + 3.9}
        down = [n for n in notes if abs(n.start - nxt.start) < 0.1]
        ahead = late and late <= set(nxt.chord.pcs) and not late <= set(bar.chord.pcs)
        found += bool(ahead and not down)
    return found


def test_latin_montuno_anticipates_the_changes_on_some_seeds():
    counts = [_anticipated_changes(arr) for arr, _ in _arrangements(LATIN, range(1, 9))]
    assert 0 < sum(c > 0 for c in counts) < len(counts), counts  # was none: a fixed montuno


def _form(arr) -> tuple[tuple[str, int], ...]:
    return tuple((sec.label, len(sec.bars)) for sec in arr.sections)


def test_seeds_vary_the_form_and_a_continuing_cue_keeps_its_cycle():
    cue = dq.CueSpec("happy", "pop", "medium", "medium")
    gen = DraftGenerator()
    base = dq._request(cue, 0, Path("."), 75.0)
    forms = {_form(gen.arrange(replace(base, seed=s))[0]) for s in range(8)}
    assert len(forms) >= 3, forms  # was 1: every seed had one form
    for form in forms:  # 4/8-bar sections (the last two share what is left of the body)
        sizes = [n for label, n in form[:-3] if label not in ("intro", "end")]
        assert sizes and all(n in (4, 8) for n in sizes), form
    first = gen.arrange(replace(base, seed=3, duration_s=30.0, ending="none"))[1]
    carry = {"bpm": first["bpm"], "key": first["key"], "mode": first["mode"],
             "carry": first["carry"]}  # fmt: skip
    for seed in (4, 5, 6):
        arr, facts = gen.arrange(replace(base, seed=seed, duration_s=30.0, continue_from=carry))
        assert facts["carry"]["form_cycle"] == first["carry"]["form_cycle"]
        assert arr.sections[0].label != "intro"


def test_tempo_and_harmonic_rhythm_follow_mood_and_genre():
    # 60 s: room for the form at the drawn tempi (a 30 s ballad is fitted to its few bars)
    ballad = [
        f for _, f in _arrangements(dq.CueSpec("sad", "classical", "slow", "low"), duration_s=60.0)
    ]
    funk = [
        f
        for _, f in _arrangements(dq.CueSpec("playful", "funk", "slow", "medium"), duration_s=60.0)
    ]
    assert max(f["bpm"] for f in ballad) < min(f["bpm"] for f in funk)
    assert len({round(f["bpm"]) for f in ballad + funk}) >= 4
    slow = _arrangements(dq.CueSpec("sad", "classical", "slow", "low"))
    fast = _arrangements(dq.CueSpec("romantic", "jazz", "medium", "medium"))
    ballad_rate = np.mean([dq._midi_measures(a)["bars_per_chord"] for a, _ in slow])
    jazz_rate = np.mean([dq._midi_measures(a)["bars_per_chord"] for a, _ in fast])
    assert ballad_rate >= 1.3 * jazz_rate  # a ballad holds its chords; was 1.0 everywhere


def test_describer_bands_reach_six_and_every_part_plays():
    epic = instruments_of("cinematic", "epic", "high")
    assert 5 <= len(epic) <= 6 and {"brass", "drums"} <= set(epic)
    assert "brass" in instruments_of("funk", "playful", "medium")
    for cue in SMALL_SET:
        arr, _ = _arrangements(cue, seeds=(5,))[0]
        played = {n.part for n in arr.notes}
        assert played == set(range(len(arr.parts))), [p.name for p in arr.parts]


def test_a_bass_patch_per_genre_and_no_anti_phase_patch():
    seen = set()
    for genre, style in st.GENRES.items():
        from engine.generate.draft.arrangement import ArrangeInput

        spec = ArrangeInput(30.0, 120.0, 0, "major", genre, "happy", "medium",
                            ("piano", "bass", "synthesizer", "electric-guitar"), ())  # fmt: skip
        parts = assign_parts(spec, style, has_cuts=False)
        bass = [p for p in parts if p.roles == ("bass",)]
        assert bass and bass[0].program == pt.MONO_SAFE.get(style.bass_program,
                                                             style.bass_program)  # fmt: skip
        seen.add(bass[0].program)
        assert not any(p.program in pt.MONO_SAFE for p in parts if not p.is_drum)
    assert len(seen) >= 5


def test_a_lead_is_never_on_a_bass_patch_and_named_guitars_keep_their_genre_patch():
    from engine.generate.draft.arrangement import ArrangeInput

    for genre, style in st.GENRES.items():
        spec = ArrangeInput(30.0, 120.0, 0, "major", genre, "happy", "medium",
                            ("synthesizer", "electric-guitar", "piano"), ())  # fmt: skip
        parts = [p for p in assign_parts(spec, style, has_cuts=False) if not p.is_drum]
        bass = [p.program for p in parts if p.roles == ("bass",)]
        for p in parts:
            if "bass" not in p.roles:
                assert not 32 <= p.program <= 39 and p.program not in bass, (genre, p)
    for src, dst in pt.MONO_SAFE.items():
        if not 32 <= src <= 39:
            assert not 32 <= dst <= 39, f"GM {src} is played on a bass patch ({dst})"
    spec = ArrangeInput(30.0, 110.0, 0, "major", "funk", "playful", "medium",
                        ("electric-guitar", "bass", "drums"), ())  # fmt: skip
    guitar = [p for p in assign_parts(spec, st.GENRES["funk"], False) if p.name != "bass"][0]
    assert guitar.program == 28  # funk's muted guitar, not the taxonomy's overdriven one


def _phrase(program: int, path: Path) -> None:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("program_change", program=program))
    for note in (60, 64, 67, 72):
        track.append(mido.Message("note_on", note=note, velocity=90))
        track.append(mido.Message("note_off", note=note, velocity=0, time=360))
    mid.save(str(path))


@needs_renderer
def test_every_patch_the_bands_use_is_mono_safe(tmp_path):
    programs = {pt.MONO_SAFE.get(p, p) for s in st.GENRES.values() for _, p, _ in s.band if p >= 0}
    programs |= {pt.MONO_SAFE.get(p, p) for _, p in INSTRUMENTS.values() if p >= 0}
    programs |= {pt.MONO_SAFE[p] for p in (26, 27, *range(80, 88))}
    leads = {pt.MONO_SAFE[p] for p in (26, 27, *range(80, 88))}
    soundfont = draft_render.find_soundfont("")
    paths = []
    for p in sorted(programs):
        paths.append(tmp_path / f"{p}.mid")
        _phrase(p, paths[-1])
    for p, path in zip(sorted(programs), paths, strict=True):
        audio = draft_render.render_midi(path, soundfont, 22050)
        # a wide piano or string section sits near 0.2; the leads' and guitars' substitutes
        # are held to issue 19's 0.2
        floor = 0.2 if p in leads else 0.0
        assert dm.stereo_correlation(audio) >= floor, f"GM {p} is out of phase"
        assert dm.mono_loss_db(audio) <= 3.0, f"GM {p} loses too much in mono"


@needs_renderer
def test_eval_draft_quality_command(tmp_path, capsys):
    out = tmp_path / "report"
    code = cli.main(["eval", "draft-quality", "--clips", "1", "--variations", "1",
                     "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cues"][0]["cue"] == dq.CUES[0].name
    assert "correlation >= 0.2 (part sum)" in data["checks"]
    assert (out / "draft_quality.md").read_text().startswith("# Draft quality")
