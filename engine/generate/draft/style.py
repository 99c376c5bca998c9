"""Style tables of the draft composer: what each genre, mood, energy and instrument implies.

Kept as data (no logic) so a musician can tune the draft's sound without reading the
arranger. Drum and rhythm patterns are 16-step strings per 4/4 bar: '.' rest, 'g' ghost,
'o' soft, 'x' normal, 'X' accent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---- General MIDI drum notes -------------------------------------------------------------
KICK, KICK2, SIDESTICK, SNARE, CLAP, ESNARE = 36, 35, 37, 38, 39, 40
CHH, PHH, OHH, CRASH, CRASH2, RIDE, RIDEBELL = 42, 44, 46, 49, 57, 51, 53
TOM_LO, TOM_LOW2, TOM_MID, TOM_MID2, TOM_HI, TOM_HI2 = 41, 43, 45, 47, 48, 50
TAMB, SHAKER, CABASA, COWBELL, CLAVES = 54, 70, 69, 56, 75
BONGO_HI, BONGO_LO, CONGA_MUTE, CONGA_HI, CONGA_LO = 60, 61, 62, 63, 64
SPLASH, CHINA = 55, 52
TRIANGLE = 81

STEP_VELOCITY = {"g": 0.32, "o": 0.58, "x": 0.82, "X": 1.0}

# ---- instruments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InstrumentTraits:
    sustain: bool  # bowed/blown/pad (legato, swells) vs plucked/struck
    lo: int  # playable range (MIDI)
    hi: int
    centre: int  # where a melody sits
    melody: int  # preference rank for the melody role (lower is better, 99 never)
    comp: int  # ... for chords
    pad: int  # ... for sustained harmony
    bass_ok: bool  # can carry the bass line itself (left hand, low strings)


TRAITS: dict[str, InstrumentTraits] = {
    "flute": InstrumentTraits(True, 60, 96, 79, 0, 99, 99, False),
    "violin": InstrumentTraits(True, 55, 100, 76, 1, 99, 8, False),
    "saxophone": InstrumentTraits(True, 49, 81, 68, 2, 99, 99, False),
    "trumpet": InstrumentTraits(True, 55, 82, 70, 3, 12, 99, False),
    "clarinet": InstrumentTraits(True, 50, 91, 70, 4, 99, 9, False),
    "synthesizer": InstrumentTraits(True, 36, 96, 72, 5, 11, 7, False),
    "electric-guitar": InstrumentTraits(False, 40, 88, 69, 6, 4, 99, False),
    "horn": InstrumentTraits(True, 41, 77, 69, 7, 99, 4, False),  # a lead above the strings
    "vibraphone": InstrumentTraits(False, 53, 89, 74, 8, 8, 99, False),
    "marimba": InstrumentTraits(False, 45, 96, 74, 9, 6, 99, False),
    "bells": InstrumentTraits(False, 60, 77, 70, 10, 99, 99, False),
    "piano": InstrumentTraits(False, 21, 108, 74, 11, 0, 99, True),
    "electric-piano": InstrumentTraits(False, 28, 100, 72, 12, 1, 99, True),
    "harp": InstrumentTraits(False, 24, 103, 74, 13, 5, 99, True),
    "guitar": InstrumentTraits(False, 40, 84, 67, 14, 2, 99, False),
    "acoustic-guitar": InstrumentTraits(False, 40, 84, 67, 15, 3, 99, False),
    "choir": InstrumentTraits(True, 48, 79, 67, 16, 99, 2, False),
    "strings": InstrumentTraits(True, 28, 96, 74, 17, 10, 0, True),
    "organ": InstrumentTraits(True, 36, 96, 72, 18, 7, 3, True),
    "cello": InstrumentTraits(True, 36, 76, 57, 19, 99, 6, True),
    "brass": InstrumentTraits(True, 40, 84, 67, 20, 9, 5, False),
    "pad": InstrumentTraits(True, 36, 84, 67, 99, 99, 1, False),
    "bass": InstrumentTraits(False, 28, 55, 40, 99, 99, 99, True),
}

# where a counter-line sits, by instrument: violins and flutes over the chords, trombones, men's
# voices and celli under them (the lead has the 250 Hz-1 kHz middle, where an orchestra muds)
COUNTER_RANGE: dict[str, tuple[int, int]] = {
    "choir": (52, 67), "violin": (67, 86), "flute": (72, 91), "brass": (46, 62),
    "cello": (45, 62), "horn": (53, 69),
}  # fmt: skip

# mixer per role: (CC7 volume, CC10 pan); the volume is the fallback when a part has no
# level of its own (engine.generate.draft.levels sets one from ROLE_LEVEL_DB and PATCH_CURVE)
ROLE_MIX: dict[str, tuple[int, int]] = {
    "melody": (100, 64),
    "comp": (92, 46),
    "pad": (80, 82),
    "bass": (110, 64),
    "arp": (84, 86),
    "counter": (84, 40),
    "timpani": (110, 64),
    "drums": (120, 64),
    "perc": (100, 84),
    "hits": (120, 64),
}

# the lead sits this far under the rest of the band (a horn inside an orchestra a little further)
LEAD_UNDER_BAND_DB: dict[str, float] = {"groove": 4.0, "orchestral": 4.5, "open": 4.5}
# an orchestra's held bass plays softer in the intro (a pedal, not a wall) and the break
HELD_BASS_DYNAMICS: dict[str, float] = {"intro": 0.7, "break": 0.85}
# the lead leans into a B section (velocity factor), as a singer does into a chorus
LEAD_SECTION_LIFT: dict[str, float] = {"B": 1.08}
# level of each role against the others, in dB (each part's own loudness, as estimated from
# its notes by engine.generate.draft.levels), for genres built on a groove, orchestral genres
# (ORCHESTRAL_AIR) and the others (acoustic, ambient): drums and bass carry a groove; an
# orchestra stands on its basses (with its low end as quiet as its chords an orchestral draft
# was 50-65 % 250 Hz-1 kHz mud). The lead sits LEAD_UNDER_BAND_DB under the sum of the others.
ROLE_LEVEL_DB: dict[str, dict[str, float]] = {
    "groove": {"comp": -6.0, "pad": -9.0, "arp": -9.0, "counter": -9.0, "bass": -1.5,
               "drums": 0.0, "perc": -6.0, "timpani": -4.0, "hits": 0.0},
    "orchestral": {"comp": -6.0, "pad": -7.0, "arp": -8.0, "counter": -8.0, "bass": 0.0,
                   "drums": -3.0, "perc": -4.0, "timpani": -3.0, "hits": -3.0},
    "open": {"comp": -5.0, "pad": -5.0, "arp": -8.0, "counter": -6.0, "bass": -5.0,
             "drums": -3.0, "perc": -7.0, "timpani": -3.0, "hits": -3.0},
}  # fmt: skip

# ---- bass and comping rhythms ----------------------------------------------------------------
# (level 1, level 2) lists of (16th step, length in steps, symbol, velocity factor); bass symbols:
# R root, F fifth, T third, O octave, 6/7 sixth/flat seventh, A approach to the next root,
# N next root anticipated. Comp events: (step, length, velocity[, strum direction D/U]).
BASS_PATTERNS: dict[str, tuple[list, list]] = {
    "pop": ([(0, 16, "R", 1.0)],
            [(0, 6, "R", 1.0), (6, 2, "R", 0.7), (8, 4, "R", 0.9), (12, 2, "F", 0.75),
             (14, 2, "A", 0.8)]),
    "root8": ([(0, 8, "R", 1.0), (8, 8, "R", 0.9)],
              [(i, 2, "R" if i < 14 else "A", 1.0 if i % 4 == 0 else 0.8)
               for i in range(0, 16, 2)]),
    "walk": ([(0, 8, "R", 1.0), (8, 8, "F", 0.9)],
             [(0, 4, "R", 1.0), (4, 4, "T", 0.85), (8, 4, "F", 0.9), (12, 4, "A", 0.85)]),
    "tumbao": ([(0, 8, "R", 1.0), (8, 8, "F", 0.9)],
               [(0, 6, "R", 1.0), (6, 6, "F", 0.9), (12, 4, "N", 0.95)]),
    "funk": ([(0, 3, "R", 1.0), (6, 2, "R", 0.8), (10, 2, "O", 0.8), (12, 4, "R", 0.9)],
             [(0, 2, "R", 1.0), (3, 1, "O", 0.7), (6, 2, "R", 0.9), (8, 1, "7", 0.7),
              (10, 2, "R", 0.9), (12, 2, "O", 0.8), (14, 2, "F", 0.8)]),
    "sustain": ([(0, 16, "R", 1.0)], [(0, 8, "R", 1.0), (8, 8, "F", 0.9)]),
    "offbeat": ([(2, 2, "R", 1.0), (6, 2, "R", 0.9), (10, 2, "R", 1.0), (14, 2, "R", 0.9)],
                [(0, 1, "O", 0.6), (2, 2, "R", 1.0), (6, 2, "R", 0.9), (10, 2, "R", 1.0),
                 (13, 1, "O", 0.7), (14, 2, "R", 0.9)]),
    "hiphop": ([(0, 10, "R", 1.0), (10, 6, "R", 0.8)],
               [(0, 6, "R", 1.0), (7, 3, "O", 0.7), (10, 6, "F", 0.85)]),
    "boogie": ([(0, 8, "R", 1.0), (8, 8, "F", 0.9)],
               [(0, 2, "R", 1.0), (2, 2, "R", 0.7), (4, 2, "T", 0.9), (6, 2, "T", 0.7),
                (8, 2, "F", 0.9), (10, 2, "F", 0.7), (12, 2, "6", 0.9), (14, 2, "6", 0.7)]),
    "folk": ([(0, 8, "R", 1.0), (8, 8, "F", 0.9)],
             [(0, 6, "R", 1.0), (6, 2, "F", 0.6), (8, 6, "F", 0.9), (14, 2, "A", 0.7)]),
}  # fmt: skip

# other takes on a bass style, a seed plays its own or one of these: an orchestra's held bass
# breathes (halves, a pickup, a fifth); a boogie walks in quarters, dotted eighths, to the sixth
BASS_VARIANTS: dict[str, tuple[tuple[list, list], ...]] = {
    "sustain": (
        ([(0, 8, "R", 1.0), (8, 8, "R", 0.85)], [(0, 12, "R", 1.0), (12, 4, "F", 0.8)]),
        ([(0, 12, "R", 1.0), (12, 4, "F", 0.8)], [(0, 6, "R", 1.0), (6, 2, "R", 0.75),
                                                 (8, 8, "F", 0.9)]),
        ([(0, 16, "R", 1.0)], [(0, 4, "R", 1.0), (4, 4, "O", 0.8), (8, 8, "R", 0.9)]),
        ([(0, 10, "R", 1.0), (10, 6, "F", 0.85)], [(0, 8, "R", 1.0), (8, 6, "F", 0.9),
                                                  (14, 2, "A", 0.8)]),
        ([(0, 4, "R", 1.0), (4, 12, "F", 0.85)], [(0, 4, "R", 1.0), (4, 4, "F", 0.85),
                                                 (8, 4, "R", 0.85), (12, 4, "F", 0.85)]),
        ([(0, 8, "R", 1.0), (8, 8, "F", 0.85)], [(0, 3, "R", 1.0), (3, 5, "R", 0.8),
                                                (8, 3, "F", 0.9), (11, 5, "F", 0.8)]),
    ),
    "boogie": (
        ([(0, 12, "R", 1.0), (12, 4, "F", 0.85)],
         [(0, 4, "R", 1.0), (4, 4, "T", 0.85), (8, 4, "F", 0.9), (12, 4, "6", 0.85)]),
        ([(0, 6, "R", 1.0), (6, 2, "R", 0.7), (8, 8, "F", 0.9)],
         [(0, 3, "R", 1.0), (3, 1, "R", 0.6), (4, 3, "T", 0.9), (7, 1, "T", 0.6),
          (8, 3, "F", 0.9), (11, 1, "F", 0.6), (12, 3, "6", 0.9), (15, 1, "7", 0.6)]),
        ([(0, 8, "R", 1.0), (8, 6, "F", 0.9), (14, 2, "A", 0.8)],
         [(0, 6, "R", 1.0), (6, 2, "T", 0.7), (8, 4, "F", 0.9), (12, 2, "6", 0.8),
          (14, 2, "A", 0.8)]),
    ),
}  # fmt: skip

COMP_PATTERNS: dict[str, tuple[list, list]] = {
    "block": ([(0, 16, 1.0)], [(0, 6, 1.0), (6, 6, 0.85), (12, 4, 0.8)]),
    "strum": ([(0, 8, 1.0, "D"), (8, 8, 0.9, "D")],
              [(0, 4, 1.0, "D"), (4, 2, 0.8, "D"), (6, 4, 0.7, "U"), (10, 2, 0.75, "U"),
               (12, 2, 0.9, "D"), (14, 2, 0.7, "U")]),
    "power": ([(0, 16, 1.0)], [(i, 2, 1.0 if i % 8 == 0 else 0.8) for i in range(0, 16, 2)]),
    "stab": ([(0, 16, 0.9)], [(2, 1, 1.0), (6, 1, 0.9), (10, 1, 1.0), (14, 1, 0.9)]),
    "lazy": ([(0, 14, 1.0)], [(0, 6, 1.0), (7, 9, 0.85)]),
    "charleston": ([(0, 3, 1.0), (6, 8, 0.85)], [(0, 3, 1.0), (6, 4, 0.85), (12, 3, 0.8)]),
    "shuffle": ([(0, 8, 1.0), (8, 8, 0.9)],
                [(0, 3, 1.0), (4, 2, 0.7), (6, 2, 0.8), (8, 3, 0.95), (12, 2, 0.7),
                 (14, 2, 0.8)]),
    "funk": ([(0, 1, 1.0), (3, 1, 0.7), (6, 1, 0.9), (10, 1, 0.8), (12, 1, 0.9)],
             [(0, 1, 1.0), (2, 1, 0.6), (3, 1, 0.8), (6, 1, 0.9), (8, 1, 0.7), (10, 1, 0.9),
              (11, 1, 0.6), (14, 1, 0.85)]),
    "montuno": ([(0, 4, 1.0), (6, 4, 0.85), (12, 4, 0.85)],
                [(0, 2, 1.0), (3, 2, 0.8), (6, 2, 0.9), (8, 2, 0.8), (10, 2, 0.9),
                 (12, 2, 0.8), (14, 2, 0.85)]),
}  # fmt: skip

# Latin comping: two-bar cells (32 steps, the drum tables' letters) written on the son clave's
# 3-2 side (its strokes on steps 0, 6, 12 | 20, 24); a seed picks one cell per level and the
# clave side (the 2-3 side swaps the bars), so another seed is another montuno. The piano (or
# any comping part) plays the montuno, a broken-chord part (tres/guitar) the guajeo.
MONTUNO_CELLS: dict[int, tuple[str, ...]] = {
    1: (
        "X.....X.....X.......X...X.......",
        "X..o..X...o.X.....o.X...X...o...",
        "X.....X..o..X.o.....X..oX.......",
        "X.....x.....X...o...X.o.X...o...",
    ),
    2: (
        "X..o..X.o..oX.....o.X..oX..o..o.",
        "X.o..oX...o.X.o..o..X.o.X..o.o..",
        "X..oo.X..o.oX...o..oX..o.X.o...o",
        "X.o...X.o.o.X..o..o.X.o.X...o.o.",
    ),
}
GUAJEO_CELLS: tuple[str, ...] = (
    "X..o..o.X..o..o.o.o.X..o..o.X...",
    ".o.oX.o..o.oX.o..o.oX.o..o..X.o.",
    "X.o..o.oX.o..o..X.o..o.oX.o..o..",
    "o..o..o.o.o.o...X..o..o...o.o.o.",
)


# ---- genres -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenreStyle:
    band: tuple[tuple[str, int, str], ...]  # default (name, GM program, role); -1 = drum kit
    groove: bool  # drums and bass belong to the genre even when not asked for
    kit: int  # drum kit program (bank 128)
    drums: dict[int, dict[int, str]]  # intensity level (1, 2) -> {note: 16 steps}
    perc: dict[int, dict[int, str]] = field(default_factory=dict)  # hand percussion by level
    fill: str = "snare"  # snare | toms | build | roll
    bass_style: str = "pop"
    bass_program: int = 33
    comp_style: str = "block"  # for plucked comp instruments
    swing: float = 0.5  # 0.5 straight; ~0.64 swung
    swing_unit: int = 8  # the swung note value (8ths or 16ths)
    flavour: str = "triad"  # triad | seventh | add9 | power
    reverb: int = 50
    chorus: int = 20
    melody_density: float = 0.5
    progressions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # override by mode


_POP_DRUMS = {
    1: {KICK: "x.......x.......", SIDESTICK: "....o.......o...", CHH: "o.o.o.o.o.o.o.o."},
    2: {KICK: "x.....o.x.....o.", SNARE: "....X.......X...", CHH: "x.o.x.o.x.o.x.o."},
}
_ROCK_DRUMS = {
    1: {KICK: "x.......x.x.....", SNARE: "....x.......x...", CHH: "x.o.x.o.x.o.x.o."},
    2: {KICK: "X.....x.X.x.....", SNARE: "....X.......X...", OHH: "x.o.x.o.x.o.x.o."},
}
_EDM_DRUMS = {
    1: {KICK: "X...x...X...x...", CHH: "..o...o...o...o."},
    2: {KICK: "X...x...X...x...", CLAP: "....x.......x...", OHH: "..x...x...x...x.",
        CHH: "g.g.g.g.g.g.g.g."},
}  # fmt: skip
_BOOMBAP = {
    1: {KICK: "x.........x.....", SNARE: "....x.......x...", CHH: "o.o.o.o.o.o.o.o."},
    2: {KICK: "x......o..x.....", SNARE: "....X.......X...", CHH: "x.oox.o.x.oox.o."},
}
_FUNK_DRUMS = {
    1: {KICK: "x.....x...x.....", SNARE: "....x..g.g..x..g", CHH: "xoxoxoxoxoxoxoxo"},
    2: {KICK: "x.x...x...x..x..", SNARE: "....X..g.g..X.gg", CHH: "xoxoxoxoxoxoxo.o",
        OHH: "..............x."},
}  # fmt: skip
_JAZZ_DRUMS = {
    1: {RIDE: "x...o.x.x...o.x.", PHH: "....o.......o...", KICK: "g...g...g...g..."},
    2: {RIDE: "x...x.x.x...x.x.", PHH: "....x.......x...", KICK: "g...g...g...g...",
        SNARE: "......g.......g."},
}  # fmt: skip
_SHUFFLE = {
    1: {KICK: "x.......x.......", SNARE: "....x.......x...", CHH: "x.o.x.o.x.o.x.o."},
    2: {KICK: "x.....x.x.......", SNARE: "....X.......X...", RIDE: "x.o.x.o.x.o.x.o."},
}
_LATIN_DRUMS = {
    1: {KICK: "x..o....x..o....", SIDESTICK: "x..x...x..x.x...", SHAKER: "xoxoxoxoxoxoxoxo"},
    2: {KICK: "x..x....x..x....", SIDESTICK: "x..x...x..x.x...", SHAKER: "xoxoxoxoxoxoxoxo",
        COWBELL: "x...x...x...x..."},
}  # fmt: skip
_LATIN_PERC = {
    1: {CONGA_HI: "......xo......xo", CONGA_LO: "x.......x.x....."},
    2: {CONGA_HI: "..x...xo..x...xo", CONGA_LO: "x.......x.x.....", BONGO_HI: "x.x.x.x.x.x.x.x."},
}
_FOLK_DRUMS = {
    1: {TAMB: "....x.......x...", SHAKER: "o.o.o.o.o.o.o.o."},
    2: {KICK: "x.......x.......", SIDESTICK: "....x.......x...", TAMB: "o.x.o.x.o.x.o.x."},
}
_CINE_DRUMS = {
    1: {TOM_LO: "x..o..o.x..o..o.", KICK2: "x.......x.......", RIDE: "x...o...x...o...",
        SHAKER: "..o...o...o...o."},
    2: {KICK2: "X.....x.X.......", TOM_LO: "x..x..x.x..x..x.", TOM_MID: "......o.......o.",
        SNARE: "....x.......x...", TAMB: "..o.x.o...o.x.o.", CRASH2: "x...............",
        RIDE: "x...o...x...o..."},
}  # fmt: skip
# the cinematic air an orchestra without a drummer still has: a suspended ride and a triangle,
# a shaker in the climax (issue 19: tense/melancholic cues had 0.1 % of their energy above
# 4 kHz); the perc writer adds a cymbal swell into each new section
_CINE_AIR = {
    1: {RIDE: "o...o...o...o...", TRIANGLE: "x.......o......."},
    2: {RIDE: "x...o...x...o...", TRIANGLE: "x.......x.......", SHAKER: "o.o.o.o.o.o.o.o."},
}
# a chamber orchestra's air: a triangle, a soft suspended cymbal, its swell into each section
# (issue 19: a sad classical cue had 0.2 % of its energy above 4 kHz)
_CLASSICAL_AIR = {
    1: {RIDE: "o.......o.......", TRIANGLE: "x.......o......."},
    2: {RIDE: "o...o...o...o...", TRIANGLE: "x.......x......."},
}
# genres whose cues get the orchestra's cymbals (a perc part on the orchestral kit) when no
# drum part plays
ORCHESTRAL_AIR = ("cinematic", "classical")
_WORLD_PERC = {
    1: {CONGA_LO: "x.....x...x.....", CONGA_HI: "...x.x.....x.x..", SHAKER: "o.o.o.o.o.o.o.o."},
    2: {CONGA_LO: "x.....x...x.....", CONGA_HI: "...x.xo....x.xo.", SHAKER: "xoxoxoxoxoxoxoxo",
        BONGO_HI: "..x.....x.x...x.", KICK: "x.......x......."},
}  # fmt: skip
_SOFT_DRUMS = {
    1: {KICK: "x.........o.....", RIDE: "o...o...o...o..."},
    2: {KICK: "x.......x.......", SIDESTICK: "....o.......o...", RIDE: "x...o...x...o..."},
}
_HAND_PERC = {
    1: {SHAKER: "o.o.o.o.o.o.o.o."},
    2: {SHAKER: "xoxoxoxoxoxoxoxo", TAMB: "....x.......x..."},
}

GENRES: dict[str, GenreStyle] = {
    "ambient": GenreStyle(
        band=(("pad", 89, "pad"), ("piano", 0, "melody"), ("harp", 46, "arp"),
              ("strings", 48, "bass")),
        groove=False, kit=0, drums=_SOFT_DRUMS, fill="roll", bass_style="sustain",
        bass_program=48, comp_style="broken", flavour="add9", reverb=80, chorus=20,
        melody_density=0.25,
    ),
    "blues": GenreStyle(
        band=(("electric-guitar", 27, "melody"), ("piano", 0, "comp"), ("organ", 17, "pad"),
              ("bass", 33, "bass"), ("drums", -1, "drums")),
        groove=True, kit=8, drums=_SHUFFLE, bass_style="boogie", bass_program=33,
        comp_style="shuffle", swing=0.66, flavour="seventh", reverb=45, melody_density=0.5,
        progressions={
            "major": ("I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7",),
            "minor": ("i7 iv7 i7 i7 iv7 iv7 i7 i7 VI7 V7 i7 V7",),
        },
    ),
    "cinematic": GenreStyle(
        band=(("strings", 48, "pad"), ("horn", 60, "melody"), ("piano", 0, "arp"),
              ("cello", 43, "bass"), ("timpani", 47, "timpani"), ("choir", 52, "counter")),
        groove=False, kit=48, drums=_CINE_DRUMS, perc=_CINE_AIR, fill="toms",
        bass_style="sustain", bass_program=43, comp_style="broken", reverb=95, chorus=10,
        melody_density=0.35,
    ),
    "classical": GenreStyle(
        band=(("flute", 73, "melody"), ("piano", 0, "comp"), ("strings", 48, "pad"),
              ("cello", 42, "bass")),
        groove=False, kit=48, drums=_SOFT_DRUMS, perc=_CLASSICAL_AIR, fill="roll",
        bass_style="sustain", bass_program=43, comp_style="alberti", reverb=80, chorus=5,
        melody_density=0.5,
    ),
    "electronic": GenreStyle(
        band=(("synthesizer", 81, "melody"), ("synthesizer", 99, "arp"), ("pad", 89, "pad"),
              ("bass", 39, "bass"), ("drums", -1, "drums")),
        groove=True, kit=24, drums=_EDM_DRUMS, fill="build", bass_style="offbeat",
        bass_program=39, comp_style="stab", flavour="add9", reverb=60, chorus=30,
        melody_density=0.55,
    ),
    "folk": GenreStyle(
        band=(("violin", 40, "melody"), ("acoustic-guitar", 25, "comp"), ("bass", 32, "bass"),
              ("percussion", -1, "perc")),
        groove=False, kit=8, drums=_FOLK_DRUMS, perc=_HAND_PERC, bass_style="folk",
        bass_program=32, comp_style="strum", reverb=55, melody_density=0.55,
    ),
    "funk": GenreStyle(
        band=(("brass", 61, "melody"), ("electric-guitar", 28, "comp"),
              ("electric-piano", 4, "pad"), ("bass", 36, "bass"), ("drums", -1, "drums")),
        groove=True, kit=8, drums=_FUNK_DRUMS, bass_style="funk", bass_program=36,
        comp_style="funk", swing=0.54, swing_unit=16, flavour="seventh", reverb=35,
        melody_density=0.6,
        progressions={"major": ("I9 I9 IV9 IV9", "I7 IV7 I7 V7"), "minor": ("i7 i7 IV7 IV7",)},
    ),
    "hip-hop": GenreStyle(
        band=(("electric-piano", 4, "comp"), ("vibraphone", 11, "melody"), ("pad", 89, "pad"),
              ("bass", 39, "bass"), ("drums", -1, "drums")),
        groove=True, kit=25, drums=_BOOMBAP, bass_style="hiphop", bass_program=39,
        comp_style="lazy", swing=0.58, swing_unit=16, flavour="seventh", reverb=40,
        melody_density=0.35,
    ),
    "jazz": GenreStyle(
        band=(("saxophone", 65, "melody"), ("piano", 0, "comp"), ("bass", 32, "bass"),
              ("drums", -1, "drums")),
        groove=True, kit=32, drums=_JAZZ_DRUMS, fill="snare", bass_style="walk",
        bass_program=32, comp_style="charleston", swing=0.64, flavour="seventh", reverb=45,
        melody_density=0.6,
        progressions={
            "major": ("ii7 V7 Imaj7 vi7", "Imaj7 vi7 ii7 V7", "iii7 vi7 ii7 V7"),
            "minor": ("iiø7 V7 i7 i7", "i7 iv7 iiø7 V7"),
        },
    ),
    "latin": GenreStyle(
        band=(("trumpet", 56, "melody"), ("guitar", 24, "comp"), ("piano", 0, "arp"),
              ("bass", 32, "bass"), ("drums", -1, "drums"), ("percussion", -1, "perc")),
        groove=True, kit=0, drums=_LATIN_DRUMS, perc=_LATIN_PERC, bass_style="tumbao",
        bass_program=32, comp_style="montuno", flavour="seventh", reverb=50, melody_density=0.6,
    ),
    "lofi": GenreStyle(
        band=(("electric-piano", 4, "comp"), ("guitar", 26, "melody"), ("bass", 35, "bass"),
              ("drums", -1, "drums")),
        groove=True, kit=32, drums=_BOOMBAP, bass_style="hiphop", bass_program=35,
        comp_style="lazy", swing=0.6, swing_unit=16, flavour="seventh", reverb=55, chorus=40,
        melody_density=0.3,
    ),
    "pop": GenreStyle(
        band=(("piano", 0, "melody"), ("acoustic-guitar", 25, "comp"), ("strings", 48, "pad"),
              ("bass", 33, "bass"), ("drums", -1, "drums")),
        groove=True, kit=0, drums=_POP_DRUMS, bass_style="pop", bass_program=33,
        comp_style="strum", flavour="triad", reverb=50, melody_density=0.5,
    ),
    "rock": GenreStyle(
        band=(("electric-guitar", 30, "melody"), ("electric-guitar", 29, "comp"),
              ("organ", 18, "pad"), ("bass", 34, "bass"), ("drums", -1, "drums")),
        groove=True, kit=16, drums=_ROCK_DRUMS, fill="toms", bass_style="root8",
        bass_program=34, comp_style="power", flavour="power", reverb=35, melody_density=0.5,
    ),
    "world": GenreStyle(
        band=(("flute", 75, "melody"), ("marimba", 12, "comp"), ("strings", 48, "pad"),
              ("bass", 32, "bass"), ("percussion", -1, "perc")),
        groove=False, kit=0, drums=_WORLD_PERC, perc=_WORLD_PERC, bass_style="folk",
        bass_program=32, comp_style="broken", reverb=60, melody_density=0.5,
    ),
}  # fmt: skip

# ---- moods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoodStyle:
    mode: str
    keys: tuple[str, ...]  # tonic names the composer picks from (seeded)
    progressions: tuple[str, ...]  # space-separated roman numerals, one chord per bar
    chorus: tuple[str, ...]  # progressions for B sections
    cadence: tuple[str, str]  # (pre-dominant, dominant) before the final tonic
    velocity: int  # base velocity offset
    register: int  # semitone shift of melody and voicings
    staccato: bool = False
    density: float = 0.0  # added to the genre's melody density


_BRIGHT = ("I V vi IV", "I IV vi V", "I vi IV V", "I IV I V")
_BRIGHT_B = ("IV V iii vi", "vi IV I V", "IV I V vi", "IV V I vi")
_TENDER = ("I vi IV V", "I iii IV I", "I V vi iii", "IV I ii V")
_TENDER_B = ("vi IV I V", "IV iii ii V", "ii V I vi")
_SAD = ("i VI III VII", "i iv VI V", "i VI iv V", "i iv i V")
_SAD_B = ("VI VII i i", "iv i VI V", "VI III VII i")
_DARK = ("i VI i V", "i bII i V", "i iv bII V", "i i VI V")
_DARK_B = ("VI VII i i", "iv bII i V", "VI iv V i")
_EPIC = ("i VI III VII", "i VII VI VII", "VI VII i i")
_EPIC_B = ("VI VII i III", "i VI III VII", "iv VI VII i")
_HEROIC = ("I V vi IV", "I bVII IV I", "I II IV I")
_HEROIC_B = ("IV V vi I", "vi IV I V", "bVI bVII I I")

MOODS: dict[str, MoodStyle] = {
    "happy": MoodStyle("major", ("C", "D", "G", "A", "F"), _BRIGHT, _BRIGHT_B, ("IV", "V"), 6, 2),
    "uplifting": MoodStyle("major", ("D", "E", "G", "A", "C"), _BRIGHT, _BRIGHT_B, ("IV", "V"), 8,
                           3, density=0.05),
    "fun": MoodStyle("major", ("C", "F", "G", "Bb"), _BRIGHT, _BRIGHT_B, ("ii", "V"), 6, 2,
                     staccato=True, density=0.1),
    "playful": MoodStyle("major", ("C", "F", "G", "D"), ("I IV V I", "I vi ii V") + _BRIGHT,
                         _BRIGHT_B, ("ii", "V"), 4, 4, staccato=True, density=0.1),
    "calm": MoodStyle("major", ("C", "F", "D", "Eb", "G"), _TENDER, _TENDER_B, ("ii", "IV"), -14,
                      0, density=-0.15),
    "dreamy": MoodStyle("major", ("D", "Eb", "F", "A"), ("I IV I IV", "I iii IV iv") + _TENDER,
                        _TENDER_B, ("IV", "iv"), -12, 2, density=-0.15),
    "romantic": MoodStyle("major", ("F", "Bb", "Eb", "Ab", "C"), _TENDER, _TENDER_B, ("ii", "V"),
                          -8, 0),
    "nostalgic": MoodStyle("major", ("G", "C", "D", "F"), ("I iii vi IV", "IV I V vi") + _TENDER,
                           ("IV iv I vi", "vi IV I V"), ("IV", "iv"), -8, 0),
    "sad": MoodStyle("minor", ("A", "D", "E", "C", "G"), _SAD, _SAD_B, ("iv", "V"), -10, -2,
                     density=-0.1),
    "melancholic": MoodStyle("minor", ("D", "E", "F#", "B", "C"), _SAD, _SAD_B, ("VI", "V"), -8,
                             -2, density=-0.1),
    "mysterious": MoodStyle("minor", ("C#", "D", "F", "G#"), ("i VI i iv", "i bII VI V") + _DARK,
                            _DARK_B, ("bII", "V"), -10, 0, density=-0.15),
    "tense": MoodStyle("minor", ("C", "D", "E", "F"), _DARK, _DARK_B, ("bII", "V"), 2, -2),
    "dark": MoodStyle("minor", ("C", "D", "Eb", "F"), _DARK, _DARK_B, ("iv", "V"), 0, -5),
    "epic": MoodStyle("minor", ("D", "C", "E", "F"), _EPIC, _EPIC_B, ("VI", "VII"), 12, 0,
                      density=0.05),
    "powerful": MoodStyle("minor", ("E", "D", "C", "G"), _EPIC, _EPIC_B, ("VI", "VII"), 14, -2),
    "adventurous": MoodStyle("major", ("D", "C", "Eb", "F"), _HEROIC, _HEROIC_B, ("IV", "V"), 10,
                             2, density=0.05),
    "aggressive": MoodStyle("minor", ("E", "D", "F", "C"), ("i i bII i", "i VI VII i") + _DARK,
                            _EPIC_B, ("bII", "V"), 18, -5, density=0.1),
}  # fmt: skip

# ---- energy -----------------------------------------------------------------------------------
ENERGY_SCALE = {"low": 0.62, "medium": 0.85, "high": 1.0}
ENERGY_VELOCITY = {"low": 62, "medium": 80, "high": 96}
ENERGY_DENSITY = {"low": -0.15, "medium": 0.0, "high": 0.15}

# expression (CC11) by section label: B sections lift over A, the held final chord sits
# under the climax
SECTION_EXPRESSION = {"intro": 127, "A": 114, "A2": 118, "B": 127, "break": 114, "end": 100}
# how far a genre's sections dip under the B (1: as above): held textures lift little by
# layers, so their A sections dip further
SECTION_DEPTH: dict[str, float] = {"ambient": 1.4}

# section intensities (before the energy scale) by label
# a B section lifts this far over the A before it (LU, estimated from the notes): the
# arranger's layers and intensities make the lift, engine.generate.draft.levels trims the rest
B_LIFT_LU = (3.75, 4.5)  # the estimate is within about 1.5 LU of the measure: inside 2-6
B_LIFT_MAX_TRIM_DB = 4.0
# measured lift minus the estimate's, where the estimate is off by genre (the draft-quality
# report's 4 seeds: lofi's fretless bass reads 3.7 dB low in A, its brush kit 3.4 dB high in B)
B_LIFT_ESTIMATE_BIAS: dict[str, float] = {"lofi": -2.1}
SECTION_INTENSITY = {"intro": 0.42, "A": 0.7, "B": 1.0, "break": 0.5, "A2": 0.8, "end": 0.8}
# a B section's intensity at the least, by genre, where held textures lift little by layers
# (a low-energy cue's B would sit at 0.62): its comping plays the busier level
B_MIN_INTENSITY: dict[str, float] = {"lofi": 0.75}

# CC0 sonic-pi loops that sit well under each genre (file stems; the beat count is inferred
# from the loop's length and the cue's tempo)
LOOPS: dict[str, tuple[str, ...]] = {
    "hip-hop": ("loop_amen", "loop_breakbeat"),
    "lofi": ("loop_breakbeat", "loop_amen"),
    "electronic": ("loop_compus", "loop_garzul"),
    "funk": ("loop_amen", "loop_breakbeat"),
    "latin": ("loop_safari",),
    "world": ("loop_tabla", "loop_safari"),
    "rock": ("loop_amen_full",),
    "pop": ("loop_breakbeat",),
}
TEXTURES: dict[str, str] = {"lofi": "vinyl_hiss"}

# ---- tempo ------------------------------------------------------------------------------------
# where each genre is at home (BPM) and where each mood sits inside the asked bucket (0 its
# slow end, 1 its fast end): a sad ballad is not a slow funk. The draw is seeded.
GENRE_TEMPO: dict[str, tuple[float, float]] = {
    "ambient": (60, 100), "blues": (62, 130), "cinematic": (60, 160), "classical": (60, 150),
    "electronic": (112, 150), "folk": (76, 140), "funk": (92, 122), "hip-hop": (72, 100),
    "jazz": (76, 190), "latin": (92, 136), "lofi": (66, 96), "pop": (80, 140),
    "rock": (96, 172), "world": (80, 132),
}  # fmt: skip
BUCKET_TEMPO: dict[str, tuple[float, float]] = {
    "slow": (56, 104),
    "medium": (105, 134),
    "fast": (136, 176),
}
MOOD_TEMPO: dict[str, float] = {
    "sad": 0.12, "melancholic": 0.2, "calm": 0.22, "dreamy": 0.3, "romantic": 0.3,
    "nostalgic": 0.4, "mysterious": 0.35, "dark": 0.38, "tense": 0.6, "epic": 0.55,
    "powerful": 0.7, "adventurous": 0.7, "happy": 0.62, "uplifting": 0.7, "fun": 0.75,
    "playful": 0.7, "aggressive": 0.88,
}  # fmt: skip
TEMPO_SPREAD = 0.18  # share of the window a seed moves the tempo (either way)
REFERENCE_TOLERANCE = 0.12  # a reference's tempo is kept within 12 % of the mood's tempo
# a drawn tempo (never a user's BPM, nor one cut or marker boundaries fix) is fitted to the
# form: an intro of 4 bars and body sections of 4 or 8 bars, then the held end
FORM_FIT_MAX_MOVE = 0.08  # the most the fit moves the drawn tempo ...
FORM_FIT_FALLBACK_MOVE = 0.25  # ... where no form fits that near: the nearest within this
FORM_INTRO_BARS = 4
SHORT_FORM_BARS = 13  # fewer bars at the drawn tempo: a 2-bar intro, a 4-bar A, a 4-bar B ...
SHORT_FORM_MAX_MOVE = 0.15  # ... or a 2-bar A, whichever is nearer, moved by no more
# fewer bars at the drawn tempo: the seed picks a 2- or a 4-bar intro where both fit (a 30 s
# cue at a medium tempo: intro 4, A 4, B 4 or intro 2 and 12 bars of A and B)
INTRO_CHOICE_BARS = 16
# seconds a ring's held chord may run past its minimum (2 s, 2-6 beats): an editor hears a
# longer hold as the music ending early
HOLD_EXTRA_S = (2.0, 3.0)
HOLD_MAX_S = 4.8  # the held chord in all, whatever its minimum


def tempo_window(bucket: str, mood: str, genre: str) -> tuple[float, float, float]:
    """(low, high, centre) BPM for the mood and genre inside the bucket."""
    b_lo, b_hi = BUCKET_TEMPO[bucket]
    g_lo, g_hi = GENRE_TEMPO.get(genre, (60, 180))
    lo, hi = max(b_lo, g_lo), min(b_hi, g_hi)
    if hi - lo < 6:  # the genre lives outside the bucket: the bucket wins
        lo, hi = b_lo, b_hi
    return lo, hi, lo + MOOD_TEMPO.get(mood, 0.5) * (hi - lo)


# ---- harmonic rhythm --------------------------------------------------------------------------
# bars each chord of a progression lasts in A sections (seeded choice); B sections move a
# chord a bar. Blues and jazz keep their forms' own rhythm.
CHORD_BARS: dict[str, tuple[int, ...]] = {
    "ambient": (2, 2, 4), "cinematic": (1, 2, 2), "classical": (1, 2), "folk": (1, 2),
    "world": (1, 2), "lofi": (1, 2), "hip-hop": (1, 2), "electronic": (1, 2), "pop": (1, 1, 1, 2),
    "rock": (1, 2), "latin": (1,), "funk": (1,), "blues": (1,), "jazz": (1,),
}  # fmt: skip
# genres that change chord inside a bar (engine.generate.draft.split): pop and latin on each
# phrase's turnaround bar (and the second bar of a chord held two), funk on every bar of a
# section's second half
SPLIT_BARS: dict[str, str] = {"pop": "turnaround", "latin": "turnaround", "funk": "vamp"}
SLOW_HARMONY_MOODS = ("sad", "melancholic", "calm", "dreamy", "romantic", "mysterious", "dark")
