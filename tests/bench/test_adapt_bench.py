"""`vmb bench adapt` on one draft cue: the figures come from the audio and the cue's MIDI."""

from __future__ import annotations

import argparse

import pytest

from engine.bench import adapt as bench_adapt


def test_adapt_bench_measures_a_draft_cue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_adapt, "QUICK_GENRES", ("funk",))
    monkeypatch.setattr(bench_adapt, "QUICK_TARGETS", (0.6,))
    monkeypatch.setattr(bench_adapt, "TEMPOS", (165,))  # fast: a 3:2 misreading is caught
    result = bench_adapt.bench_adapt(argparse.Namespace(quick=True))
    figures = {f["name"]: f for f in result["figures"]}
    assert all(f["ok"] is not False for f in result["figures"]), figures
    assert figures["length error (worst)"]["value"] == 0
    (row,) = result["rows"]
    assert row["genre"] == "funk" and row["edits"] >= 1 and row["edit_ms"] <= 20
    assert row["tempo"] == 165 and row["bar_pct"] <= 1.0, row
