"""Markers as hit points in the draft arrangement (no audio), and the text a cue without
picture is described from."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import timeline as tl
from engine.generate.draft.form import plan_time
from engine.generate.draft.generator import DraftGenerator
from engine.score import cut_only
from engine.types import Attributes, GenerationRequest, MusicDescription, Retrieval

NO_RETRIEVAL = Retrieval(backend="draft", weights="none")  # no retriever ran


def request(tmp: Path, cuts=(), markers=(), genre="ambient", energy="low") -> GenerationRequest:
    attrs = Attributes(mood="calm", genre=genre, tempo_bucket="slow", energy=energy,
                       instruments=(), bpm=90.0)  # fmt: skip
    desc = MusicDescription(text="t", attributes=attrs, source="text", backend="draft",
                            weights="none")  # fmt: skip
    return GenerationRequest(description=desc, retrieval=NO_RETRIEVAL, duration_s=20.0, seed=3,
                             out_dir=tmp, cut_times_s=cuts, marker_times_s=markers)  # fmt: skip


def test_markers_nudge_the_tempo_at_most_3_percent() -> None:
    beat = 60.0 / 120.0
    # 8 beats need 3.2 % faster to land: a cut gets it (<= 3.5 %), a marker does not (3 %)
    at = 8 * beat / 1.032
    tempo, boundaries, accents, _ = plan_time(20.0, 120.0, (at,))
    assert tempo[0].bpm == pytest.approx(120.0 * 1.032, rel=1e-3) and boundaries == [8.0]
    tempo, boundaries, accents, _ = plan_time(20.0, 120.0, (), (at,))
    assert tempo[0].bpm == pytest.approx(120.0, rel=1e-4) and boundaries != [8.0]
    # 2 % is within reach of a marker: it lands on a downbeat
    tempo, boundaries, _, _ = plan_time(20.0, 120.0, (), (8 * beat / 1.02,))
    assert tempo[0].bpm == pytest.approx(120.0 * 1.02, rel=1e-3) and boundaries == [8.0]
    # a marker on a cut is one hit; markers too close together become accents
    _, boundaries, accents, _ = plan_time(20.0, 120.0, (6.0,), (6.0, 6.4, 12.0))
    assert len(boundaries) == 2 and accents == [6.4]


def test_every_marker_gets_a_hit_at_its_time(tmp_path: Path) -> None:
    markers = (1.3, 3.05, 4.4, 6.9, 8.15, 10.6, 12.35, 13.9, 15.7, 17.45)
    arr, facts = DraftGenerator().arrange(request(tmp_path, cuts=(10.0,), markers=markers))
    hits = {round(h["time_s"], 3): h["for"] for h in facts["cuts"]}
    for m in markers:
        near = [t for t in hits if abs(t - m) <= 0.002]
        assert near and hits[near[0]] == "marker", m
    assert hits[10.0] == "cut"
    assert any(p.is_drum for p in arr.parts)  # a quiet ambient cue gets a part for the hits
    _, none = DraftGenerator().arrange(request(tmp_path, cuts=(10.0,)))
    assert [h["for"] for h in none["cuts"]] == ["cut"]


def plan_of(*shots: tuple[str, float]) -> tl.PlannedCue:
    requests, at = [], 0.0
    for name, seconds in shots:
        requests.append(tl.CueRequest(name, "V1.1", "", 0.0, seconds, at, at + seconds, 25.0,
                                      media_status="missing"))  # fmt: skip
        at += seconds
    (cue,) = tl.plan_cues(requests, tl.PlanOptions(min_length_s=60)).cues
    return cue


def test_cut_only_text_from_names_and_rhythm() -> None:
    fast = plan_of(("A001C003_car_chase.mov", 1.0), ("C0004 Car Chase", 1.5), ("V1-0004", 1.2))
    assert cut_only.text(fast) == "car chase; fast, energetic"
    assert cut_only.text(fast, "with a brass section") == (
        "with a brass section; car chase; fast, energetic"
    )
    slow = plan_of(("Harbour at dawn", 12.0), ("harbour_wide", 9.0))
    assert cut_only.text(slow) == "harbour dawn wide; slow, gentle"
    assert cut_only.note(slow).startswith("scored without picture")
    assert "2 shot(s), 10.5 s each" in cut_only.note(slow)
    assert cut_only.text(plan_of(("001", 3.0), ("002", 3.0))) == "mid-tempo"
