"""Seeded variations of the genre's patterns, so another seed is another take: the groove
(kick placement, hi-hat subdivision, ghost notes), the bass rhythm and the comping rhythm
change within what the genre allows, while the downbeat and the backbeat stay."""

from __future__ import annotations

import numpy as np

from engine.generate.draft import style as st

_KICK_SPOTS = (3, 6, 7, 10, 11, 14)
_HATS = (st.CHH, st.RIDE, st.SHAKER, st.OHH)


def _set(steps: str, i: int, ch: str) -> str:
    return steps[:i] + ch + steps[i + 1 :]


def vary_line(note: int, steps: str, rng: np.random.Generator) -> str:
    """One drum line, varied: kicks move or are added off the beat, hats change subdivision,
    snares get ghost notes. Steps 0, 4, 8 and 12 keep what the genre put there."""
    if note in (st.KICK, st.KICK2, st.TOM_LO, st.TOM_MID):
        free = [i for i in _KICK_SPOTS if steps[i] == "."]
        taken = [i for i in _KICK_SPOTS if steps[i] != "."]
        for i in rng.permutation(free)[: int(rng.integers(1, 3))] if free else []:
            steps = _set(steps, int(i), "o")
        if taken and rng.random() < 0.5:
            steps = _set(steps, int(taken[int(rng.integers(len(taken)))]), ".")
    elif note in _HATS:
        kind = int(rng.integers(3))
        if kind == 0:  # eighths become sixteenths (ghosted in between)
            steps = "".join(c if c != "." or i % 2 == 0 else "g" for i, c in enumerate(steps))
        elif kind == 1:  # quarters with the offbeats soft
            steps = "".join(c if i % 4 in (0, 2) else "." for i, c in enumerate(steps))
        else:  # an open accent at the end of the bar
            steps = _set(steps, 14, "X" if steps[14] != "." else "o")
    elif note == st.TRIANGLE and steps[0] != ".":  # the downbeat's answer moves
        steps = "x" + "." * 15
        spot = int(rng.choice([6, 8, 10, 12, 14, -1]))
        if spot > 0:
            steps = _set(steps, spot, "o")
    elif note in (st.SNARE, st.SIDESTICK, st.CLAP):
        for i in rng.permutation([7, 9, 15])[: int(rng.integers(0, 3))]:
            if steps[int(i)] == ".":
                steps = _set(steps, int(i), "g")
    return steps


def vary_drums(table: dict[int, dict[int, str]], rng: np.random.Generator):
    """The genre's drum table by level, each line varied for this cue."""
    return {lvl: {n: vary_line(n, p, rng) for n, p in lines.items()}
            for lvl, lines in table.items()}  # fmt: skip


def vary_events(events: list, rng: np.random.Generator, push: bool = True) -> list:
    """A bass or comping pattern (lists of (step, length, ...)) varied: one note may be
    pushed an eighth early, a pickup may be added, a weak note may drop out."""
    out = [list(e) for e in events]
    if len(out) > 1 and push and rng.random() < 0.6:
        k = 1 + int(rng.integers(len(out) - 1))
        prev_end = out[k - 1][0] + 1
        if out[k][0] - 2 >= prev_end:
            out[k][0] -= 2
            out[k][1] += 2
            out[k - 1][1] = min(out[k - 1][1], out[k][0] - out[k - 1][0])
    if rng.random() < 0.5:
        last = out[-1]
        if last[0] + last[1] <= 14 or (last[0] < 12 and last[1] > 2):
            last[1] = min(last[1], 14 - last[0])
            pickup = [14, 2, *last[2:]]
            if len(pickup) > 3 and isinstance(pickup[3], float):
                pickup[3] *= 0.8
            elif len(pickup) > 2 and isinstance(pickup[2], float):
                pickup[2] *= 0.8
            out.append(pickup)
    short = [k for k, e in enumerate(out) if e[1] == 2]
    if short and rng.random() < 0.5:  # an eighth becomes two sixteenths
        k = short[int(rng.integers(len(short)))]
        out[k][1] = 1
        out.insert(k + 1, [out[k][0] + 1, 1, *out[k][2:]])
    if len(out) > 3 and rng.random() < 0.4:
        del out[1 + int(rng.integers(len(out) - 1))]
    return [tuple(e) for e in out if e[1] > 0]
