"""Keys, scales, chords from roman numerals, and close-position voice leading.

Pitch classes are ints 0-11 (C=0); pitches are MIDI note numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NOTE_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
NOTE_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# conventional spelling of each tonic (major, minor)
_MAJOR_SPELL = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_SPELL = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}

QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "5": (0, 7),
    "add9": (0, 4, 7, 14),
    "madd9": (0, 3, 7, 14),
    "6": (0, 4, 7, 9),
    "m6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 14),
    "m9": (0, 3, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
}

_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(
    r"^\s*([A-Ga-g])\s*(#|b|♯|♭|sharp|flat)?\s*[:\-_ ]?\s*(major|maj|minor|min|m|dur|moll)?\s*$",
    re.IGNORECASE,
)


def parse_key(text: str | None) -> tuple[int, str | None] | None:
    """'A', 'f#', 'Bb major', 'C#m', 'E:min' -> (tonic pc, mode or None); None if unreadable."""
    if not text:
        return None
    m = _KEY_RE.match(str(text))
    if not m:
        return None
    letter, acc, mode = m.group(1).upper(), (m.group(2) or "").lower(), m.group(3)
    pc = _LETTER[letter] + (
        1 if acc in ("#", "♯", "sharp") else -1 if acc in ("b", "♭", "flat") else 0
    )
    mode_name: str | None = None
    if mode:
        ml = mode.lower()
        # a lone "m" after the letter means minor ("Am"); "M"/"maj"/"major"/"dur" major
        mode_name = "major" if mode == "M" or ml in ("maj", "major", "dur") else "minor"
    return pc % 12, mode_name


def key_name(tonic_pc: int, mode: str) -> str:
    return (_MINOR_SPELL if mode == "minor" else _MAJOR_SPELL)[tonic_pc % 12]


def mido_key(tonic_pc: int, mode: str) -> str:
    """Key signature name for mido's key_signature meta message."""
    name = key_name(tonic_pc, mode)
    return name + "m" if mode == "minor" else name


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class
    quality: str
    symbol: str  # roman numeral it came from

    @property
    def intervals(self) -> tuple[int, ...]:
        return QUALITIES[self.quality]

    @property
    def pcs(self) -> tuple[int, ...]:
        return tuple(sorted({(self.root + i) % 12 for i in self.intervals}))

    @property
    def third(self) -> int | None:
        for i in self.intervals:
            if i in (3, 4):
                return (self.root + i) % 12
        return None

    @property
    def fifth(self) -> int:
        for i in self.intervals:
            if i in (6, 7, 8):
                return (self.root + i) % 12
        return (self.root + 7) % 12

    def name(self) -> str:
        suffix = {"maj": "", "min": "m"}.get(self.quality, self.quality)
        return NOTE_NAMES_FLAT[self.root] + suffix


_ROMAN = ("VII", "VI", "V", "IV", "III", "II", "I")
_ROMAN_DEG = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7}
_ROMAN_RE = re.compile(r"^(b|#)?(VII|VI|V|IV|III|II|I|vii|vi|v|iv|iii|ii|i)(.*)$")


def chord_from_roman(symbol: str, tonic_pc: int, mode: str) -> Chord:
    """Roman numeral relative to the mode's own scale ('VI' in minor is the natural-minor sixth);
    case gives major/minor; suffixes: 7 maj7 o/dim ø7 sus2 sus4 5 add9 6 9 maj9 +."""
    m = _ROMAN_RE.match(symbol)
    if not m:
        raise ValueError(f"bad roman numeral {symbol!r}")
    acc, numeral, suffix = m.group(1), m.group(2), m.group(3)
    upper = numeral.isupper()
    deg = _ROMAN_DEG[numeral.upper()]
    root = (tonic_pc + SCALES[mode][deg - 1] + (-1 if acc == "b" else 1 if acc == "#" else 0)) % 12
    if suffix in ("", None):
        quality = "maj" if upper else "min"
    elif suffix in ("o", "dim"):
        quality = "dim"
    elif suffix == "ø7":
        quality = "m7b5"
    elif suffix == "+":
        quality = "aug"
    elif suffix == "7":
        quality = "7" if upper else "m7"
    elif suffix == "maj7":
        quality = "maj7"
    elif suffix == "9":
        quality = "9" if upper else "m9"
    elif suffix == "maj9":
        quality = "maj9"
    elif suffix == "add9":
        quality = "add9" if upper else "madd9"
    elif suffix == "6":
        quality = "6" if upper else "m6"
    elif suffix in ("sus2", "sus4", "5"):
        quality = suffix
    else:
        raise ValueError(f"bad chord suffix in {symbol!r}")
    return Chord(root=root, quality=quality, symbol=symbol)


def colour_chord(chord: Chord, flavour: str) -> Chord:
    """Genre colour: 'seventh' (jazz, lofi), 'power' (rock), 'add9' (ambient, pop), 'triad'."""
    q = chord.quality
    if flavour == "seventh":
        q = {"maj": "maj7", "min": "m7", "dim": "m7b5"}.get(q, q)
    elif flavour == "add9":
        q = {"maj": "add9", "min": "madd9"}.get(q, q)
    elif flavour == "power" and q in ("maj", "min", "7", "m7", "sus2", "sus4"):
        q = "5"
    return Chord(root=chord.root, quality=q, symbol=chord.symbol)


def dominant_seventh(chord: Chord) -> Chord:
    if chord.quality in ("maj", "7"):
        return Chord(root=chord.root, quality="7", symbol=chord.symbol)
    return chord


def chord_scale(scale_pcs: tuple[int, ...], chord: Chord) -> tuple[int, ...]:
    """The key's scale with chord tones substituted for their clashing neighbours (e.g. the
    leading tone over V in minor), so melody notes never rub a semitone against the chord."""
    out = list(scale_pcs)
    for cp in chord.pcs:
        if cp in out:
            continue
        for i, e in enumerate(out):
            if (e - cp) % 12 in (1, 11) and e not in chord.pcs:
                out[i] = cp
                break
    return tuple(sorted(set(out)))


def voicing_candidates(pcs: tuple[int, ...], lo: int, hi: int, n_voices: int) -> list[list[int]]:
    """Close-position voicings (each inversion, each octave) of ``n_voices`` notes in [lo, hi]."""
    pcs = tuple(pcs)
    if len(pcs) > n_voices:
        # drop the fifth first (least defining), then extensions beyond the fourth note
        pcs = tuple(pcs[:n_voices])
    out: list[list[int]] = []
    base_notes = list(pcs)
    for rot in range(len(base_notes)):
        order = base_notes[rot:] + base_notes[:rot]
        for octave in range(lo // 12 - 1, hi // 12 + 1):
            notes = []
            prev = None
            for pc in order:
                p = octave * 12 + pc
                while prev is not None and p <= prev:
                    p += 12
                notes.append(p)
                prev = p
            while len(notes) < n_voices:  # double the lowest note an octave up
                notes.append(notes[len(notes) - len(order)] + 12)
            if notes[0] >= lo and notes[-1] <= hi and notes[-1] - notes[0] <= 16:
                out.append(notes)
    return out


def _chord_tones_for_voicing(chord: Chord, n_voices: int) -> tuple[int, ...]:
    ivs = chord.intervals
    root = chord.root
    tones = [(root + i) % 12 for i in ivs]
    if len(tones) > n_voices:
        # keep root, third, seventh/colour; drop the perfect fifth first
        fifth = (root + 7) % 12
        if fifth in tones and len(tones) > n_voices:
            tones.remove(fifth)
        tones = tones[:n_voices]
    seen: list[int] = []
    for t in tones:
        if t not in seen:
            seen.append(t)
    return tuple(seen)


def voice_lead(
    chord: Chord, previous: list[int] | None, lo: int, hi: int, n_voices: int = 4
) -> list[int]:
    """The close voicing of ``chord`` nearest to ``previous`` (least total motion), or the one
    nearest the middle of the range when there is no previous chord."""
    tones = _chord_tones_for_voicing(chord, n_voices)
    cands = voicing_candidates(tones, lo, hi, min(n_voices, max(len(tones), 3)))
    if not cands:
        mid = (lo + hi) // 2
        return sorted({mid - ((mid - pc) % 12) for pc in tones})
    centre = (lo + hi) / 2.0

    def cost(v: list[int]) -> float:
        c = abs(sum(v) / len(v) - centre) * 0.3
        if previous:
            m = min(len(v), len(previous))
            c += sum(abs(a - b) for a, b in zip(v[:m], previous[:m], strict=False))
            c += 2.0 * abs(len(v) - len(previous))
        return c

    return min(cands, key=cost)


def nearest_pitch(pc: int, target: float, lo: int, hi: int) -> int:
    """The pitch of class ``pc`` nearest ``target`` inside [lo, hi] (clamped by octaves)."""
    best = None
    for octave in range(-1, 11):
        p = octave * 12 + pc
        if lo <= p <= hi and (best is None or abs(p - target) < abs(best - target)):
            best = p
    if best is None:
        best = int(round(target))
        best += (pc - best) % 12
        while best > hi:
            best -= 12
        while best < lo:
            best += 12
    return best


def scale_pitches(scale: tuple[int, ...], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if p % 12 in scale]


def scale_pcs(tonic_pc: int, mode: str) -> tuple[int, ...]:
    return tuple(sorted((tonic_pc + i) % 12 for i in SCALES[mode]))
