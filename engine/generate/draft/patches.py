"""What the draft's FluidR3 patches measure: loudness by register, drum kits' loudness, and the
patches whose stereo samples are out of phase (with their mono-safe substitutes).

Facts of the soundfont, not style choices: engine.generate.draft.levels and the band read them;
re-measure them when the soundfont changes.
"""

from __future__ import annotations

from engine.generate.draft.style import RIDE, SHAKER, TRIANGLE

# each patch's loudness (LUFS) by register: an 8-note phrase, velocity 90, CC7 100, at MIDI 36 ...
# 96 (a harp is 13 dB quieter two octaves up); no sample that high: 3 dB under the last. Shifted
# where the cues' part renders sat 1.5 dB+ off it (17, 28, 34, 42, 43 as a bass, 47, 89).
CURVE_PITCHES = (36, 48, 60, 72, 84, 96)
PATCH_CURVE: dict[int, tuple[float, ...]] = {
    0: (-29.3, -28.3, -28.6, -30.6, -31.6, -32.9), 4: (-29.6, -25.7, -22.6, -20.8, -23.7, -25.2),
    7: (-29.9, -28.3, -26.4, -26.5, -26.6, -26.4), 11: (-30.6, -28.7, -30.5, -30.4, -34.8, -31.8),
    12: (-29.1, -28.2, -28.0, -27.1, -26.5, -26.3), 14: (-25.0, -25.2, -25.4, -24.7, -26.6, -29.1),
    17: (-27.1, -26.0, -25.8, -24.6, -24.9, -24.0), 18: (-25.2, -24.6, -24.1, -25.4, -22.4, -20.6),
    19: (-25.7, -24.1, -25.1, -22.6, -22.1, -25.1), 24: (-23.2, -23.8, -27.8, -29.7, -33.3, -36.9),
    25: (-22.2, -26.4, -27.0, -28.3, -32.4, -34.6), 28: (-25.8, -27.5, -29.4, -32.2, -33.1, -36.1),
    29: (-21.7, -23.5, -21.4, -20.6, -20.0, -20.8), 30: (-21.2, -21.9, -18.5, -17.2, -21.4, -22.4),
    32: (-26.0, -26.0, -27.2, -28.6, -30.2, -30.9), 33: (-25.3, -24.4, -24.9, -25.7, -28.3, -31.3),
    34: (-27.4, -26.7, -27.4, -27.6, -30.4, -33.4), 35: (-25.9, -22.3, -23.7, -26.9, -30.0, -33.0),
    36: (-28.8, -31.1, -32.1, -33.3, -36.1, -39.1), 39: (-19.8, -19.9, -20.4, -20.2, -19.4, -19.7),
    40: (-29.1, -26.1, -24.7, -24.4, -23.2, -22.3), 42: (-26.4, -23.3, -23.3, -21.5, -20.5, -18.1),
    43: (-23.8, -28.9, -31.9, -34.9, -37.9, -40.9), 46: (-27.8, -25.6, -25.8, -30.4, -38.8, -41.6),
    47: (-27.6, -31.1, -34.4, -37.9, -41.6, -48.3), 48: (-27.4, -27.2, -26.6, -24.9, -23.7, -23.9),
    49: (-24.0, -24.4, -24.0, -22.6, -20.7, -22.1), 52: (-27.4, -26.4, -27.8, -25.2, -22.9, -23.3),
    56: (-28.8, -28.5, -27.3, -24.8, -23.8, -23.6), 57: (-28.6, -22.7, -20.8, -20.9, -19.4, -21.3),
    58: (-25.1, -22.0, -20.5, -21.4, -24.4, -27.4), 60: (-25.4, -25.3, -22.7, -22.1, -21.5, -22.1),
    61: (-25.4, -27.0, -24.8, -21.4, -21.9, -24.9), 65: (-23.4, -23.0, -22.8, -21.8, -23.3, -26.3),
    68: (-28.1, -25.1, -22.9, -22.7, -21.2, -22.1), 71: (-27.0, -24.7, -21.2, -19.3, -17.5, -17.0),
    73: (-32.3, -26.6, -25.1, -22.0, -19.7, -16.9), 75: (-31.0, -25.1, -25.1, -22.7, -22.4, -19.6),
    89: (-31.1, -25.1, -23.9, -25.9, -29.1, -29.3), 99: (-24.9, -23.2, -21.7, -21.0, -20.4, -20.0),
}  # fmt: skip
DRUM_KIT_LOUDNESS = -27.0  # a kit not in KIT_LOUDNESS
PATCH_DEFAULT_DB = -25.0  # a patch not in PATCH_CURVE, at every pitch
# each kit's loudness (bank 128 program) for one hit of 250 ms at velocity 90, CC7 100, fitted
# to the kits' part renders (engine.generate.draft.levels estimates a part from its notes)
KIT_LOUDNESS: dict[int, float] = {
    0: -29.1, 8: -27.5, 16: -24.5, 24: -25.0, 25: -21.8, 32: -25.0, 40: -25.0, 48: -25.5,
}  # fmt: skip
# drum-channel notes that play quieter than a kick or snare hit of the same velocity (dB):
# the orchestra's suspended cymbal, triangle and shaker
DRUM_NOTE_DB: dict[int, float] = {RIDE: -5.0, TRIANGLE: -5.0, SHAKER: -5.0}
DRUM_RING_S = 0.25  # how long a drum hit counts at full power in the level estimate
PLUCK_RING_S = 0.6  # ... a plucked or struck note (piano, guitar, harp, mallets)
# patches whose FluidR3 stereo samples are out of phase (L/R correlation -0.1 to -0.9, up to
# 14 dB lost when summed to mono; pan and the effect sends do not fix them): the arranger plays
# the nearest mono-safe patch of the same kind instead. Each target measured solo in FluidR3
# (corr >= 0.2, mono loss <= 3 dB) and picked by timbre: the nearest 1/3-octave spectrum among
# sustained voices for the synth leads, plucked ones for the guitars; never a bass (32-39).
# square 80 -> harmonica, saw 81 / bass+lead 87 -> church organ, calliope 82 -> pan flute,
# chiff 83 -> ocarina, charang 84 -> overdriven guitar, voice 85 -> synth voice, fifths 86 ->
# tenor sax; jazz guitar 26 -> nylon (warm, round), clean electric 27 -> muted electric.
MONO_SAFE: dict[int, int] = {
    5: 4, 16: 17, 26: 24, 27: 28, 38: 39, 50: 48, 51: 49, 62: 61, 63: 61, 80: 22, 81: 19,
    82: 75, 83: 79, 84: 29, 85: 54, 86: 66, 87: 19, 88: 89, 90: 89, 91: 89, 92: 89, 93: 89,
    94: 89, 95: 89, 96: 89, 98: 89, 100: 89, 102: 89, 103: 89, 104: 89,
}  # fmt: skip
# patches that are mono-safe only with a dry chorus send (FluidR3's chorus on the electric
# piano 4 drops its L/R correlation from 0.35 to 0.01): their CC93 is capped here
CHORUS_MAX: dict[int, int] = {4: 0}
