"""The render split's cost model (draft.voicecost): measured rows, note costs, the best split."""

from __future__ import annotations

import itertools

import pytest

from engine.generate.draft import style as st
from engine.generate.draft import voicecost as vc
from engine.generate.draft.arrangement import Arrangement, Note, Part, TempoSegment


def _arr(parts: list[Part], notes: list[Note], duration_s: float = 30.0) -> Arrangement:
    arr = Arrangement.__new__(Arrangement)
    arr.parts, arr.notes, arr.duration_s = parts, notes, duration_s
    arr.tempo = [TempoSegment(start_beat=0.0, start_s=0.0, us_per_beat=500000)]
    return arr


def test_every_program_and_every_kit_key_has_a_row() -> None:
    assert set(vc.PROGRAMS) == set(range(128))
    assert all((0, key) in vc.DRUMS for key in range(27, 88))
    for genre in st.GENRES.values():  # each genre's kit was measured (or is the standard kit)
        assert genre.kit in (0, 8, 16, 24, 25, 32, 40, 48)
    for row in [*vc.PROGRAMS.values(), *vc.DRUMS.values()]:
        assert len(row) in (2, 1 + len(vc.HOLDS_S)) and all(x >= 0 for x in row)


def test_ringing_sounds_cost_more_than_short_ones() -> None:
    timpani, closed_hat = vc.DRUMS[(48, 41)], vc.DRUMS[(0, 42)]
    assert vc.note_cost(timpani, 0.1, 30.0) > 3 * vc.note_cost(closed_hat, 0.1, 30.0)
    pad, bass = vc.PROGRAMS[89], vc.PROGRAMS[33]
    assert vc.note_cost(pad, 2.0, 30.0) > 3 * vc.note_cost(bass, 2.0, 30.0)
    assert vc.note_cost(bass, 4.0, 30.0) > vc.note_cost(bass, 1.0, 30.0)


def test_a_note_is_cut_at_the_cue_end() -> None:
    row = vc.PROGRAMS[48]
    whole = vc.note_cost(row, 2.0, 30.0)
    assert vc.note_cost(row, 2.0, 0.0) == 0.0
    assert 0.0 < vc.note_cost(row, 2.0, 1.0) < whole


def _parts_and_notes() -> tuple[list[Part], list[Note]]:
    parts = [
        Part("strings", 48, ("pad",), 0),
        Part("bass", 33, ("bass",), 1),
        Part("piano", 0, ("comp",), 2),
        Part("timpani", 47, ("timpani",), 3),
        Part("drums", 48, ("drums",), 9),
        Part("flute", 73, ("melody",), 4),
    ]
    notes = [Note(0, 4.0 * i, 3.9, 60, 70) for i in range(12)]
    notes += [Note(1, 1.0 * i, 0.9, 40, 90) for i in range(48)]
    notes += [Note(2, 0.5 * i, 0.4, 64, 80) for i in range(96)]
    notes += [Note(3, 8.0 * i, 1.0, 43, 90) for i in range(6)]
    notes += [Note(4, 1.0 * i, 0.1, 36 if i % 2 else 41, 90) for i in range(48)]
    notes += [Note(5, 2.0 * i, 1.5, 72, 80) for i in range(24)]
    return parts, notes


def test_the_two_way_split_is_the_best_and_deterministic() -> None:
    parts, notes = _parts_and_notes()
    arr = _arr(parts, notes)
    split = vc.split_parts(arr, 2)
    assert split == vc.split_parts(_arr(*_parts_and_notes()), 2)
    assert sorted(set().union(*split)) == list(range(len(parts))) and 0 in split[0]
    w = [round(c) for c in vc.part_costs(arr)]
    heavier = max(sum(w[i] for i in g) for g in split)
    best = min(
        max(sum(w[i] for i in a), sum(w) - sum(w[i] for i in a))
        for r in range(len(w) + 1)
        for a in itertools.combinations(range(len(w)), r)
    )
    assert heavier == best


@pytest.mark.parametrize("groups", [1, 3])
def test_other_group_counts_hold_every_part_once(groups: int) -> None:
    parts, notes = _parts_and_notes()
    split = vc.split_parts(_arr(parts, notes), groups)
    assert len(split) == groups
    assert sorted(i for g in split for i in g) == list(range(len(parts)))
