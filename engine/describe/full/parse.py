"""Sentence -> Attributes by matching the tag taxonomy; knobs then win over what was parsed.

Both describers (draft and full) and the `vmb generate --text` path feed the retrieve stage
with the same `Attributes`, so a description parses the same way wherever it came from.
Matching is plain phrase lookup (longest phrase first, word boundaries, simple plurals,
"no/without X" skipped for instruments): predictable, and testable with golden sentences.
Whatever a sentence does not mention gets a neutral default (`NEUTRAL`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from bridge.errors import InvalidRequest
from bridge.knobs import MAX_TEXT_CHARS  # the knob table's `text` limit
from engine import taxonomy
from engine.types import Attributes, Knobs


@dataclass(frozen=True)
class Neutral:
    """What a description that says nothing about a facet means: middle of the road. The
    mood follows the energy so that an unnamed mood never contradicts "energetic"."""

    genre: str = "cinematic"
    tempo_bucket: str = "medium"
    energy: str = "medium"
    mood_low_or_medium: str = "calm"
    mood_high: str = "powerful"

    def mood(self, energy: str) -> str:
        return self.mood_high if energy == "high" else self.mood_low_or_medium


NEUTRAL = Neutral()

# Words a description uses beyond the taxonomy's own names and aliases.
_MOOD_WORDS = {
    "cheerful": "happy", "joyous": "happy", "hopeful": "uplifting",
    "inspiring": "uplifting", "inspirational": "uplifting", "optimistic": "uplifting",
    "catchy": "fun", "quirky": "playful", "whimsical": "playful", "lighthearted": "playful",
    "light-hearted": "playful", "serene": "calm", "tranquil": "calm", "relaxing": "calm",
    "soothing": "calm", "ethereal": "dreamy", "atmospheric": "dreamy", "tender": "romantic",
    "sentimental": "nostalgic", "wistful": "nostalgic", "somber": "sad", "sombre": "sad",
    "sorrowful": "sad", "mournful": "sad", "haunting": "mysterious", "eerie": "mysterious",
    "enigmatic": "mysterious", "suspense": "tense", "anxious": "tense", "ominous": "dark",
    "gloomy": "dark", "sinister": "dark", "heroic": "epic", "triumphant": "epic",
    "majestic": "epic", "anthemic": "epic", "mighty": "powerful",
    "bold": "powerful", "fierce": "aggressive", "angry": "aggressive", "adventure": "adventurous",
}  # fmt: skip
_GENRE_WORDS = {
    "hip hop": "hip-hop", "rap": "hip-hop", "trap": "hip-hop", "techno": "electronic",
    "dubstep": "electronic", "synthwave": "electronic",
    "synth-pop": "electronic", "chillhop": "lofi", "lo-fi": "lofi", "soundtrack": "cinematic",
    "film score": "cinematic", "score": "cinematic", "orchestral": "cinematic",
    "bossa nova": "latin", "salsa": "latin", "reggaeton": "latin", "tango": "latin",
    "disco": "funk", "soul": "funk", "r&b": "funk", "metal": "rock", "punk": "rock",
    "grunge": "rock", "country": "folk", "bluegrass": "folk", "acoustic folk": "folk",
    "swing": "jazz", "bebop": "jazz", "new age": "ambient", "drone": "ambient",
    "ethnic": "world", "tribal": "world", "baroque": "classical", "symphonic": "classical",
}  # fmt: skip
_INSTRUMENT_WORDS = {
    "string section": "strings", "orchestra": "strings", "violins": "violin",
    "fiddle": "violin", "double bass": "bass", "bass guitar": "bass", "upright bass": "bass",
    "bassline": "bass", "bass line": "bass", "guitars": "guitar", "rhodes": "electric-piano",
    "keyboard": "piano", "grand piano": "piano", "synthesizers": "synthesizer",
    "synth": "synthesizer", "synths": "synthesizer", "synth pad": "pad", "synth pads": "pad",
    "pads": "pad", "saxophones": "saxophone", "sax": "saxophone", "trumpets": "trumpet",
    "french horn": "horn", "horns": "horn", "brass section": "brass", "drum kit": "drums",
    "drum": "drums", "timpani": "percussion", "hand claps": "percussion",
    "claps": "percussion", "choral": "choir", "chimes": "bells", "glockenspiel": "bells",
    "celesta": "bells", "vibes": "vibraphone", "woodwinds": "flute",
}  # fmt: skip
_TEMPO_WORDS = {
    "fast": "fast", "fast-paced": "fast", "up-tempo": "fast", "uptempo": "fast",
    "brisk": "fast", "quick": "fast", "rapid": "fast", "high-tempo": "fast",
    "slow": "slow", "slow-paced": "slow", "slowly": "slow", "languid": "slow",
    "leisurely": "slow", "downtempo": "slow", "unhurried": "slow",
    "mid-tempo": "medium", "midtempo": "medium", "medium tempo": "medium",
    "medium-paced": "medium", "medium pace": "medium", "moderate tempo": "medium",
    "moderately paced": "medium", "moderate pace": "medium", "steady": "medium",
}  # fmt: skip
_ENERGY_WORDS = {
    "energetic": "high", "high-energy": "high", "high energy": "high", "intense": "high",
    "explosive": "high", "vigorous": "high", "lively": "high", "upbeat": "high",
    "driving": "high", "gentle": "low", "soft": "low", "quiet": "low", "low-energy": "low",
    "low energy": "low", "subdued": "low", "delicate": "low", "mellow": "low",
    "minimal": "low", "sparse": "low", "moderate energy": "medium",
    "medium energy": "medium", "balanced": "medium",
}  # fmt: skip

# tempo bucket <-> energy: a description that names one implies the other
_ENERGY_FROM_TEMPO = {"fast": "high", "medium": "medium", "slow": "low"}
_TEMPO_FROM_ENERGY = {"high": "fast", "medium": "medium", "low": "slow"}

_NEGATION = re.compile(r"\b(?:no|without|minus|lacking)\s+(?:any\s+|a\s+|an\s+)?$")
_BPM = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)\b", re.IGNORECASE)
_KEY = re.compile(r"\b([A-G])(#|♯|b|♭|\s+sharp|\s+flat)?\s+(major|minor)\b")
_MODE_ONLY = re.compile(r"\b(major|minor)\s+(?:key|tonality|mode)\b", re.IGNORECASE)


def _table(names: tuple[str, ...] | list[str], extra: dict[str, str]) -> list[tuple[str, str]]:
    """(phrase, tag) pairs, longest phrase first so "acoustic guitar" beats "guitar"."""
    pairs: dict[str, str] = {}
    for name in names:
        pairs[name] = name
        pairs[name.replace("-", " ")] = name
    for alias, name in taxonomy.ALIASES.items():  # the taxonomy's own aliases
        if name in names:
            pairs[alias] = name
    for phrase, name in extra.items():
        pairs[phrase] = name
    return sorted(pairs.items(), key=lambda kv: (-len(kv[0]), kv[0]))


_MOODS = _table(taxonomy.MOODS, _MOOD_WORDS)
_GENRES = _table(taxonomy.GENRES, _GENRE_WORDS)
_INSTRUMENTS = _table(list(taxonomy.INSTRUMENTS), _INSTRUMENT_WORDS)
_TEMPOS = sorted(_TEMPO_WORDS.items(), key=lambda kv: (-len(kv[0]), kv[0]))
_ENERGY = sorted(_ENERGY_WORDS.items(), key=lambda kv: (-len(kv[0]), kv[0]))


def _find(
    text: str, table: list[tuple[str, str]], skip_negated: bool = False
) -> list[tuple[int, str]]:
    """(position, tag) of every phrase found, each span used once (longest phrase wins)."""
    taken = [False] * len(text)
    found: list[tuple[int, str]] = []
    for phrase, tag in table:
        pattern = r"(?<![\w-])" + re.escape(phrase) + r"(?:s|es)?(?![\w-])"
        for m in re.finditer(pattern, text):
            if any(taken[m.start() : m.end()]):
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            if skip_negated and _NEGATION.search(text[: m.start()]):
                continue
            found.append((m.start(), tag))
    return sorted(found)


def _first(found: list[tuple[int, str]]) -> str | None:
    return found[0][1] if found else None


def clean_text(text: str) -> str:
    """One line, no control characters or undecodable-byte marks (U+FFFD), surrounding
    quotes removed (never raises)."""
    cleaned = "".join(
        " " if unicodedata.category(c)[0] == "C" or c == "\ufffd" else c for c in text
    )
    return " ".join(cleaned.split()).strip("\"'“”‘’").strip()


def normalise_text(text: str) -> str:
    """The sentence as the rest of the pipeline sees it (clean_text); InvalidRequest if it
    is empty or over MAX_TEXT_CHARS."""
    if not isinstance(text, str):
        raise InvalidRequest(f"description must be text, not {type(text).__name__}")
    cleaned = clean_text(text)
    if not cleaned:
        raise InvalidRequest("the description is empty")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise InvalidRequest(
            f"the description is {len(cleaned)} characters; the limit is {MAX_TEXT_CHARS} "
            "(one or two sentences about the music)"
        )
    return cleaned


def parse_description(text: str) -> Attributes:
    """Attributes mentioned in a sentence; facets it does not mention get NEUTRAL values."""
    lowered = normalise_text(text).lower()
    mood = _first(_find(lowered, _MOODS))
    genre = _first(_find(lowered, _GENRES))
    instruments: list[str] = []
    for _, tag in _find(lowered, _INSTRUMENTS, skip_negated=True):
        if tag not in instruments:
            instruments.append(tag)

    bpm: float | None = None
    tempo: str | None = None
    m = _BPM.search(lowered)
    if m and taxonomy.MIN_BPM <= float(m.group(1)) <= taxonomy.MAX_BPM:
        tempo, bpm = taxonomy.normalise_tempo(float(m.group(1)))
    if tempo is None:
        tempo = _first(_find(lowered, _TEMPOS))
    energy = _first(_find(lowered, _ENERGY))
    if energy is None and tempo is not None:
        energy = _ENERGY_FROM_TEMPO[tempo]
    if tempo is None and energy is not None:
        tempo = _TEMPO_FROM_ENERGY[energy]

    key, mode = _parse_key(normalise_text(text))
    energy = energy or NEUTRAL.energy
    return Attributes(
        mood=mood or NEUTRAL.mood(energy),
        genre=genre or NEUTRAL.genre,
        tempo_bucket=tempo or NEUTRAL.tempo_bucket,
        energy=energy,
        instruments=tuple(instruments),
        bpm=bpm,
        key=key,
        mode=mode,
    )


def _parse_key(text: str) -> tuple[str | None, str | None]:
    m = _KEY.search(text)  # case-sensitive tonic: "a minor role" is not A minor
    if m:
        accidental = (m.group(2) or "").strip().lower()
        sign = {"#": "#", "♯": "#", "sharp": "#", "b": "b", "♭": "b", "flat": "b"}.get(
            accidental, ""
        )
        return m.group(1) + sign, m.group(3)
    m = _MODE_ONLY.search(text)
    return (None, m.group(1).lower()) if m else (None, None)


def apply_knobs(attributes: Attributes, knobs: Knobs) -> Attributes:
    """Every knob the user set replaces what was parsed or inferred (names are validated)."""
    out = attributes
    if knobs.mood:
        out = replace(out, mood=taxonomy.normalise_mood(knobs.mood))
    if knobs.genre:
        out = replace(out, genre=taxonomy.normalise_genre(knobs.genre))
    if knobs.energy:
        out = replace(out, energy=taxonomy.normalise_energy(knobs.energy))
    if knobs.instruments:
        out = replace(out, instruments=taxonomy.normalise_instruments(knobs.instruments))
    if knobs.tempo:
        bucket, bpm = taxonomy.normalise_tempo(knobs.tempo)
        if bpm is None and out.bpm is not None and taxonomy.tempo_bucket(out.bpm) != bucket:
            bpm = None  # a parsed BPM outside the chosen bucket no longer holds
        elif bpm is None:
            bpm = out.bpm
        out = replace(out, tempo_bucket=bucket, bpm=bpm)
    return out


def describe_text(text: str, knobs: Knobs) -> tuple[str, Attributes]:
    """Free text as a description: normalised sentence, parsed attributes, knobs applied."""
    sentence = normalise_text(text)
    return sentence, apply_knobs(parse_description(sentence), knobs)
