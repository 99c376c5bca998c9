"""The tag taxonomy shared by every stage: moods, genres, instruments (five groups), tempo.

The paper shows only part of its expert label set (anchors.md §1); this is ours, chosen so
every tag maps to something the draft composer can play and CLAP can be asked about.
Names are lower-case, hyphenated; `normalise_*` turn user input into them or raise with the
list of valid names.
"""

from __future__ import annotations

from bridge.errors import InvalidRequest, quote

MOODS: tuple[str, ...] = (
    "happy", "uplifting", "fun", "playful", "calm", "dreamy", "romantic", "nostalgic",
    "sad", "melancholic", "mysterious", "tense", "dark", "epic", "powerful", "adventurous",
    "aggressive",
)  # fmt: skip
GENRES: tuple[str, ...] = (
    "ambient", "blues", "cinematic", "classical", "electronic", "folk", "funk", "hip-hop",
    "jazz", "latin", "lofi", "pop", "rock", "world",
)  # fmt: skip

# instrument -> (group, General MIDI program 0-127; percussion uses the drum channel)
INSTRUMENTS: dict[str, tuple[str, int]] = {
    "strings": ("strings", 48),
    "violin": ("strings", 40),
    "cello": ("strings", 42),
    "harp": ("strings", 46),
    "acoustic-guitar": ("strings", 25),
    "electric-guitar": ("strings", 29),
    "guitar": ("strings", 24),
    "bass": ("strings", 33),
    "piano": ("keyboards", 0),
    "electric-piano": ("keyboards", 4),
    "organ": ("keyboards", 16),
    "synthesizer": ("keyboards", 81),
    "pad": ("keyboards", 89),
    "flute": ("wind", 73),
    "clarinet": ("wind", 71),
    "saxophone": ("wind", 65),
    "trumpet": ("wind", 56),
    "horn": ("wind", 60),
    "brass": ("wind", 61),
    "drums": ("percussion", 0),
    "percussion": ("percussion", 0),
    "marimba": ("percussion", 12),
    "vibraphone": ("percussion", 11),
    "choir": ("others", 52),
    "bells": ("others", 14),
}
INSTRUMENT_GROUPS: tuple[str, ...] = ("strings", "keyboards", "wind", "percussion", "others")

# Tempo partitions (BPM bounds, lower inclusive). The paper's generated means were
# slow 93.88, medium 122.64, fast 143.55; the default BPM is what the composer plays.
TEMPO_BUCKETS: dict[str, tuple[float, float]] = {
    "slow": (40.0, 105.0),
    "medium": (105.0, 135.0),
    "fast": (135.0, 220.0),
}
TEMPO_DEFAULT_BPM: dict[str, float] = {"slow": 90.0, "medium": 120.0, "fast": 145.0}
MIN_BPM, MAX_BPM = 40.0, 220.0
ENERGIES: tuple[str, ...] = ("low", "medium", "high")

ALIASES = {
    "hiphop": "hip-hop", "hip hop": "hip-hop", "lo-fi": "lofi", "lo fi": "lofi",
    "synth": "synthesizer", "synths": "synthesizer", "keys": "piano", "drum": "drums",
    "electronica": "electronic", "edm": "electronic", "orchestral": "cinematic",
    "acoustic guitar": "acoustic-guitar", "electric guitar": "electric-guitar",
    "electric piano": "electric-piano", "sax": "saxophone", "string": "strings",
    "melancholy": "melancholic", "adventure": "adventurous", "joyful": "happy",
    "relaxed": "calm", "peaceful": "calm", "scary": "tense", "suspenseful": "tense",
}  # fmt: skip


def _clean(value: str) -> str:
    v = " ".join(str(value).strip().lower().replace("_", " ").split())
    return ALIASES.get(v, v.replace(" ", "-"))


def _pick(value: str, valid: tuple[str, ...] | list[str], what: str) -> str:
    v = _clean(value)
    if v not in valid:
        raise InvalidRequest(f"unknown {what} {quote(value)}; valid {what}s: {', '.join(valid)}")
    return v


def normalise_mood(value: str) -> str:
    return _pick(value, MOODS, "mood")


def normalise_genre(value: str) -> str:
    return _pick(value, GENRES, "genre")


def normalise_instrument(value: str) -> str:
    return _pick(value, list(INSTRUMENTS), "instrument")


def normalise_energy(value: str) -> str:
    return _pick(value, ENERGIES, "energy")


def normalise_instruments(values: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = values.split(",") if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        if item.strip():
            name = normalise_instrument(item)
            if name not in out:
                out.append(name)
    return tuple(out)


def normalise_tag(facet: str, value: str) -> str:
    """A tag of one facet in taxonomy form (a tempo becomes its bucket)."""
    if facet == "tempo":
        return normalise_tempo(value)[0]
    normalisers = {
        "mood": normalise_mood,
        "genre": normalise_genre,
        "instrument": normalise_instrument,
        "energy": normalise_energy,
    }
    if facet not in normalisers:
        raise InvalidRequest(
            f"unknown facet {quote(facet)}; facets: tempo, {', '.join(normalisers)}"
        )
    return normalisers[facet](value)


def tempo_bucket(bpm: float) -> str:
    for name, (lo, hi) in TEMPO_BUCKETS.items():
        if lo <= bpm < hi:
            return name
    return "fast" if bpm >= MAX_BPM else "slow"


def normalise_tempo(value: str | float | int) -> tuple[str, float | None]:
    """A tempo knob is a bucket name or a BPM; returns (bucket, exact BPM or None)."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in TEMPO_BUCKETS:
            return v, None
        try:
            value = float(v.removesuffix("bpm").strip())
        except ValueError:
            raise InvalidRequest(
                f"unknown tempo {quote(value)}; use {', '.join(TEMPO_BUCKETS)} or a BPM "
                f"between {MIN_BPM:g} and {MAX_BPM:g}"
            ) from None
    bpm = float(value)
    if not (MIN_BPM <= bpm <= MAX_BPM):
        raise InvalidRequest(f"tempo {bpm:g} BPM is outside {MIN_BPM:g}-{MAX_BPM:g} BPM")
    return tempo_bucket(bpm), bpm


def all_tags() -> dict[str, tuple[str, ...]]:
    """Every tag by facet (for capabilities, panels and CLAP auto-tagging)."""
    return {
        "mood": MOODS,
        "genre": GENRES,
        "instrument": tuple(INSTRUMENTS),
        "tempo": tuple(TEMPO_BUCKETS),
        "energy": ENERGIES,
    }
