"""A soundtrack's next cue keeps the previous one's tempo and key without contradicting
itself: the tempo bucket follows a carried BPM, the text rounds it, and a key that was not
clearly played is not carried."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine import taxonomy
from engine.config import settings_from_dict
from engine.generate.full.stylization import attribute_text
from engine.types import Attributes, MusicDescription, Retrieval


def _spec(tmp_path: Path, continue_from: dict, knobs: dict | None = None):  # noqa: ANN202
    from engine.score.cue_spec import parse_cue_params

    settings = settings_from_dict(tmp_path, {})
    params = {"text": "night drive", "duration_s": 4.0, "continue_from": continue_from}
    if knobs:
        params["knobs"] = knobs
    return parse_cue_params(params, settings)


def _description() -> MusicDescription:
    attrs = Attributes("calm", "ambient", "slow", "low", ("piano",), key="D", mode="minor")
    return MusicDescription("A calm night drive.", attrs, "text", "full", "random")


def test_a_carried_bpm_brings_its_bucket_and_is_rounded(tmp_path: Path) -> None:
    from engine.score.cue import _continued

    spec = _spec(tmp_path, {"bpm": 143.555, "key": "A", "mode": "major"})
    attrs = _continued(_description(), spec).attributes
    assert attrs.bpm == 143.555 and attrs.key == "A"
    assert attrs.tempo_bucket == taxonomy.tempo_bucket(143.555) != "slow"
    text = attribute_text(attrs)
    assert f"tempo: {attrs.tempo_bucket} (144 BPM)" in text and "slow" not in text
    # a tempo knob wins: nothing carried, the bucket stays the knob's
    spec = _spec(tmp_path, {"bpm": 143.555}, {"tempo": "slow"})
    assert _continued(_description(), spec).attributes.tempo_bucket == "slow"


def test_a_key_not_clearly_played_is_not_carried(tmp_path: Path) -> None:
    from engine.generate.full.conditioning import MIN_KEY_STRENGTH
    from engine.score.cue import Cue
    from engine.score.soundtrack import carried_from

    def cue(strength: float) -> Cue:
        measured = {"bpm": 120.0, "key": "B minor", "key_strength": strength}
        extra = {"bpm": 120.0, "key": "B", "mode": "minor", "measured": measured}
        return Cue(tmp_path / "a.wav", None, 4.0, 4, 1, "full", "", "random", _description(),
                   Retrieval(backend="draft", weights="none"), 1, extra=extra)  # fmt: skip

    weak = carried_from(cue(MIN_KEY_STRENGTH - 0.05))
    assert weak["key"] is None and weak["mode"] is None and weak["bpm"] == 120.0
    strong = carried_from(cue(MIN_KEY_STRENGTH + 0.05))
    assert (strong["key"], strong["mode"]) == ("B", "minor")
    draft = carried_from(replace(cue(0.0), extra={"bpm": 90.0, "key": "C", "mode": "major"}))
    assert draft["key"] == "C"  # a draft cue's key is what it wrote, no measurement


def test_what_a_cue_carries_is_what_the_next_cue_accepts(tmp_path: Path) -> None:
    """continue_from's keys are Carried's fields: every one a cue passes on is taken."""
    from dataclasses import fields

    from engine.score.cue import Cue
    from engine.score.cue_spec import Carried
    from engine.score.soundtrack import carried_from

    extra = {"bpm": 96.0, "key": "D", "mode": "minor", "genre": "ambient",
             "carry": {"cycle": 2, "motifs": [[60, 62, 64]]}}  # fmt: skip
    cue = Cue(tmp_path / "a.wav", None, 4.0, 4, 1, "draft", "", "none", _description(),
              Retrieval(backend="draft", weights="none"), 1, extra=extra)  # fmt: skip
    carried = carried_from(cue)
    assert set(carried) == {f.name for f in fields(Carried)}
    assert _spec(tmp_path, carried).continue_from == carried
