"""The worker keeps one built stage per (backend, stage): new settings (another model folder,
another device, another home) replace the held stage and close it, so two sets of models never
stay resident together."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_settings
from engine.score import cue
from support.media import draft_config


def test_two_settings_leave_one_cached_instance_per_stage(
    draft_home: Path, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cue, "_STAGE_CACHE", {})
    other_home = tmp_path / "other-home"
    other_home.mkdir()
    draft_config(other_home, library)
    first, second = load_settings(draft_home), load_settings(other_home)
    assert first != second

    accessors = (cue.describer_for, cue.retriever_for, cue.generator_for)
    held = [get("draft", first) for get in accessors]
    assert all(get("draft", first) is old for get, old in zip(accessors, held, strict=True))
    closed: list[object] = []
    monkeypatch.setattr(held[1], "close", lambda: closed.append(held[1]))

    again = [get("draft", second) for get in accessors]
    assert all(new is not old for new, old in zip(again, held, strict=True))
    cache = cue._STAGE_CACHE
    assert cache == {
        ("draft", "describe"): (second, again[0]),
        ("draft", "retrieve"): (second, again[1]),
        ("draft", "generate"): (second, again[2]),
    }
    assert closed == [held[1]]  # the replaced retriever was closed (its library with it)
