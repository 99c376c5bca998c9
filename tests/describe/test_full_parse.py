"""Description parsing: golden sentences -> taxonomy attributes; knobs win; text limits."""

from __future__ import annotations

import pytest

from bridge.errors import InvalidRequest
from engine.describe.full.parse import (
    MAX_TEXT_CHARS,
    NEUTRAL,
    apply_knobs,
    describe_text,
    normalise_text,
    parse_description,
)
from engine.types import Attributes, Knobs

GOLDEN = [
    (  # the paper's example target
        "An uplifting and catchy pop track, blending bass, synthesizer, drums which is "
        "perfect for nostalgic and fun moments.",
        Attributes("uplifting", "pop", "medium", "medium", ("bass", "synthesizer", "drums")),
    ),
    (
        "A slow, dreamy ambient piece with soft piano, strings and pad in D minor.",
        Attributes(
            "dreamy", "ambient", "slow", "low", ("piano", "strings", "pad"), None, "D", "minor"
        ),
    ),  # fmt: skip
    (
        "A fast-paced rock song driven by electric guitar and bass at 150 BPM, without drums.",
        Attributes("powerful", "rock", "fast", "high", ("electric-guitar", "bass"), 150.0),
    ),
    (
        "A tense orchestral score with cellos, percussion, French horn and a choir in F# minor.",
        Attributes(
            "tense",
            "cinematic",
            "medium",
            "medium",
            ("cello", "percussion", "horn", "choir"),
            None,
            "F#",
            "minor",
        ),
    ),  # fmt: skip
    (
        "A gentle acoustic guitar ballad in a major key, perfect for a romantic sunset.",
        Attributes(
            "romantic", "cinematic", "slow", "low", ("acoustic-guitar",), None, None, "major"
        ),
    ),  # fmt: skip
    (
        "Lo-fi hip hop with electric piano and vinyl crackle, mid-tempo and mellow.",
        Attributes("calm", "lofi", "medium", "low", ("electric-piano",)),
    ),
    (
        "Nothing here says anything about music.",
        Attributes(NEUTRAL.mood("medium"), NEUTRAL.genre, NEUTRAL.tempo_bucket, NEUTRAL.energy, ()),
    ),  # fmt: skip
]


@pytest.mark.parametrize(("sentence", "expected"), GOLDEN)
def test_golden_sentences(sentence: str, expected: Attributes) -> None:
    assert parse_description(sentence) == expected


def test_longest_phrase_wins_and_negation_only_drops_its_instrument() -> None:
    attrs = parse_description("Acoustic guitars and a guitar solo, no drums or bass; with piano")
    assert attrs.instruments == ("acoustic-guitar", "guitar", "bass", "piano")


def test_words_inside_other_words_do_not_match() -> None:
    attrs = parse_description("Breakfast jazz: a fastidious, unfunny dirge")  # fast, fun inside
    assert attrs.tempo_bucket == "medium" and attrs.mood == "calm" and attrs.genre == "jazz"


def test_lowercase_a_is_not_a_key() -> None:
    assert parse_description("plays a minor role in a quiet folk song").key is None


def test_knobs_win_over_the_sentence() -> None:
    parsed = parse_description("A fast happy pop song with drums at 150 BPM")
    knobs = Knobs(mood="sad", genre="Jazz", tempo="slow", instruments=("Sax", "piano"),
                  energy="low")  # fmt: skip
    out = apply_knobs(parsed, knobs)
    assert out == Attributes("sad", "jazz", "slow", "low", ("saxophone", "piano"), None)
    assert apply_knobs(parsed, Knobs(tempo="fast")).bpm == 150.0  # same bucket: BPM kept
    assert apply_knobs(parsed, Knobs(tempo="96")).bpm == 96.0


def test_unknown_knob_names_list_the_valid_ones() -> None:
    with pytest.raises(InvalidRequest, match="valid moods"):
        apply_knobs(parse_description("music"), Knobs(mood="grumpy"))


def test_text_is_normalised_and_limited() -> None:
    assert normalise_text('  "A calm\npiece\x00 for\tpiano."  ') == "A calm piece for piano."
    with pytest.raises(InvalidRequest, match="empty"):
        normalise_text(" \n\t ")
    with pytest.raises(InvalidRequest, match=f"limit is {MAX_TEXT_CHARS}"):
        normalise_text("word " * 300)
    text, attrs = describe_text("A dark techno track.", Knobs(energy="high"))
    assert text == "A dark techno track." and attrs.genre == "electronic" and attrs.energy == "high"
