"""The lead on top (issue 19): a comping, pad or arpeggio note that would sound above the
melody note it meets drops an octave (while it stays in the part's range), so the tune is the
top line and the chords sit under it rather than masking it."""

from __future__ import annotations

import bisect

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Arrangement

FLOOR = 48  # chords are not pushed below C3 (they would muddy the bass)


def chords_under_melody(arr: Arrangement) -> None:
    """Drop comp, pad and arpeggio notes (of parts that do not also play the melody) that
    sound above a melody note they overlap."""
    lead = {i for i, p in enumerate(arr.parts) if "melody" in p.roles and not p.is_drum}
    if not lead:
        return
    tune = sorted((n for n in arr.notes if n.part in lead), key=lambda n: n.start)
    starts = [n.start for n in tune]
    longest = max((n.dur for n in tune), default=0.0)
    for n in arr.notes:
        part = arr.parts[n.part]
        if part.is_drum or n.part in lead or part.roles[0] not in ("comp", "pad", "arp"):
            continue
        end = n.start + n.dur
        hi = bisect.bisect_left(starts, end - 1e-6)
        lo = bisect.bisect_left(starts, n.start - longest)
        over = [m.pitch for m in tune[lo:hi] if m.start + m.dur > n.start + 1e-6]
        if not over:
            continue
        t = st.TRAITS.get(part.name)
        floor = max(FLOOR, t.lo if t else 0)
        while n.pitch > min(over) and n.pitch - 12 >= floor:
            n.pitch -= 12
