"""Two chords in a bar (issue 19's harmonic rhythm): pop and latin turn around on the last bar
of each 4-bar phrase (IV | V -> I) and move half a bar early off a chord held two bars; funk
vamps change every bar in a section's second half.

The part writers compose one chord a bar; a bar with ``split`` then has its second half
re-voiced here: every note from beat 3 moves to the same degree of the second chord (root to
root, third to third, nearest octave), a note held over beat 3 is cut there and struck again on
the new chord, and a melody note on a beat from beat 3 that clashes moves to the nearest tone.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Arrangement, Bar, Note, q
from engine.generate.draft.theory import Chord

SPLIT_BEAT = 2.0  # the second chord starts on beat 3 of a 4/4 bar


def _wants_split(arr: Arrangement, bar: Bar, kind: str) -> bool:
    sec = arr.sections[bar.section]
    if bar.final or bar.beats != 4.0 or sec.label == "end":
        return False
    pos = sec.bars.index(bar.index)
    held = pos > 0 and arr.bars[bar.index - 1].chord == bar.chord
    if kind == "vamp":
        return pos >= len(sec.bars) // 2 or held
    return held or (pos % 4 == 3 and sec.label != "intro")


def _second_chord(arr: Arrangement, bar: Bar, chord_of: Callable[[str], Chord]) -> Chord | None:
    """The chord for the bar's second half: a held chord (a vamp) moves to IV (or back to I
    from IV); before another chord, the dominant (V, else ii or iv, else VII) that is neither
    this chord nor the next, so the turnaround leads on rather than arriving early."""
    cur = bar.chord
    if cur is None:
        return None
    nxt = arr.bars[bar.index + 1].chord if bar.index + 1 < len(arr.bars) else None
    major = arr.mode == "major"
    if nxt is None or nxt.root == cur.root:
        four = chord_of("IV" if major or arr.genre == "funk" else "iv")
        return chord_of("I" if major else "i") if cur.root == four.root else four
    for symbol in ("V", "ii", "VII") if major else ("V", "iv", "VII"):
        chord = chord_of(symbol)
        if chord.root not in (cur.root, nxt.root):
            return chord
    return None


def plan_splits(arr: Arrangement, genre: str, chord_of: Callable[[str], Chord]) -> None:
    """Set ``bar.split`` where the genre changes chord inside a bar (style.SPLIT_BARS); never
    in the cadence (the last two body bars), before a cut or in the ending."""
    kind = st.SPLIT_BARS.get(genre)
    if kind is None:
        return
    body = [b for b in arr.bars if not b.final]
    for bar in body[:-2]:
        nb = arr.bars[bar.index + 1]
        if arr.sections[nb.section].after_cut or not _wants_split(arr, bar, kind):
            continue
        second = _second_chord(arr, bar, chord_of)
        if second is not None and second.pcs != bar.chord.pcs:  # type: ignore[union-attr]
            bar.split = second


def _degree_pitch(pitch: int, old: Chord, new: Chord) -> int:
    """The same chord degree of ``new`` nearest ``pitch``; a tone outside ``old`` stays."""
    pc = pitch % 12
    old_pcs = [(old.root + i) % 12 for i in old.intervals]
    if pc not in old_pcs:
        return pitch
    new_pcs = [(new.root + i) % 12 for i in new.intervals]
    target = new_pcs[old_pcs.index(pc) % len(new_pcs)]
    d = (target - pc) % 12
    return pitch + (d if d <= 6 else d - 12)


def _nearest_tone(pitch: int, chord: Chord) -> int:
    best = min(range(-2, 3), key=lambda d: (((pitch + d) % 12) not in chord.pcs, abs(d)))
    return pitch + best


def apply_splits(arr: Arrangement) -> None:
    """Re-voice the second half of every split bar (see the module doc). One pass over the
    notes: each is looked up in the split bars by its start."""
    split_bars = [b for b in arr.bars if b.split is not None]
    if not split_bars:
        return
    starts = [b.start for b in split_bars]
    added: list[Note] = []
    for n in arr.notes:
        k = bisect.bisect_right(starts, n.start + 1e-6) - 1
        if k < 0 or arr.parts[n.part].is_drum:
            continue
        bar = split_bars[k]
        old, new = bar.chord, bar.split
        assert old is not None and new is not None
        at, end = bar.start + SPLIT_BEAT, bar.start + bar.beats
        if n.start >= end - 1e-6 or n.start + n.dur <= at + 0.1:
            continue
        if "melody" in arr.parts[n.part].roles:
            on_beat = abs((n.start - bar.start) - round(n.start - bar.start)) < 0.05
            if n.start >= at - 1e-6 and (on_beat or n.dur >= 1.0) and n.pitch % 12 not in new.pcs:
                n.pitch = _nearest_tone(n.pitch, new)
        elif n.start >= at - 1e-6:
            n.pitch = _degree_pitch(n.pitch, old, new)
        else:  # held over beat 3: strike it again on the new chord
            tail = n.start + n.dur - at
            n.dur = q(at - n.start) * 0.98
            pitch = _degree_pitch(n.pitch, old, new)
            added.append(Note(n.part, q(at), tail, pitch, max(18, int(n.vel * 0.85))))
    arr.notes.extend(added)
