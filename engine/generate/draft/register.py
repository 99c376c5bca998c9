"""The lead on top (issue 19): a comping, pad or arpeggio note that would sound above the
melody note it meets drops an octave (while it stays in the part's range), or is left out of
the chord where it cannot, so the tune is the top line and the chords sit under it rather than
masking it."""

from __future__ import annotations

import bisect

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Arrangement

FLOOR = 48  # chords are not pushed below C3 (they would muddy the bass)
SLACK = 0.125  # beats: a chord tone ending this close to a melody note still meets it (feel
# and rubato move onsets by up to tens of ms afterwards)


def chords_under_melody(arr: Arrangement) -> None:
    """Drop comp, pad and arpeggio notes (of parts that do not also play the melody) that
    sound above a melody note they overlap."""
    lead = {i for i, p in enumerate(arr.parts) if "melody" in p.roles and not p.is_drum}
    if not lead:
        return
    floors: dict[int, int] = {}
    for i, p in enumerate(arr.parts):
        if not p.is_drum and i not in lead and p.roles[0] in ("comp", "pad", "arp"):
            t = st.TRAITS.get(p.name)
            floors[i] = max(FLOOR, t.lo if t else 0)
    tune = sorted((n for n in arr.notes if n.part in lead), key=lambda n: n.start)
    starts = [n.start for n in tune]
    longest = max((n.dur for n in tune), default=0.0)
    thinned = set()
    for k, n in enumerate(arr.notes):
        floor = floors.get(n.part)
        if floor is None:
            continue
        hi = bisect.bisect_left(starts, n.start + n.dur + SLACK)
        lo = bisect.bisect_left(starts, n.start - longest)
        low = min((m.pitch for m in tune[lo:hi] if m.start + m.dur > n.start + 1e-6), default=128)
        while n.pitch > low and n.pitch - 12 >= floor:
            n.pitch -= 12
        if n.pitch > low:  # no room an octave down: the chord leaves that tone out
            thinned.add(k)
    if thinned:
        _thin(arr, thinned)


def _thin(arr: Arrangement, drop: set[int]) -> None:
    """Leave out the notes at ``drop`` (indices into arr.notes), but never a chord's last two
    notes: a chord struck with fewer keeps its lowest two."""
    struck: dict[tuple[int, float], list[int]] = {}
    for k, n in enumerate(arr.notes):
        struck.setdefault((n.part, round(n.start, 2)), []).append(k)
    keep = set(range(len(arr.notes))) - drop
    for ks in struck.values():
        if len([k for k in ks if k in keep]) < 2:
            keep.update(sorted(ks, key=lambda k: arr.notes[k].pitch)[:2])
    arr.notes[:] = [n for k, n in enumerate(arr.notes) if k in keep]


def intro_layers(arr: Arrangement) -> None:
    """The intro builds by layers: the bass, counter-lines and timpani (and the melody, if it
    plays) enter in its second half; the chords and the drums' cymbals open it. An orchestra's
    held bass (the loudest part of an orchestral draft) opens it with the chords, as a pedal."""
    intro = next((s for s in arr.sections if s.label == "intro"), None)
    if intro is None:
        return
    first, last = arr.bars[intro.bars[0]], arr.bars[intro.bars[-1]]
    half = (first.start + last.start + last.beats) / 2.0
    late: tuple[str, ...] = ("bass", "counter", "timpani", "melody")
    if not st.GENRES[arr.genre].groove and st.GENRES[arr.genre].bass_style == "sustain":
        late = late[1:]
    keep = []
    for n in arr.notes:
        part = arr.parts[n.part]
        if first.start - 1e-6 <= n.start < half and not part.is_drum and part.roles[0] in late:
            continue
        keep.append(n)
    if len({n.part for n in keep if first.start - 1e-6 <= n.start < half}) >= 1:
        arr.notes[:] = keep
