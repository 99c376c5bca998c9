"""Part levels from the notes (issue 19): each part's loudness is estimated from what it plays
(its patch's measured loudness, velocities, chords, how long notes ring, CC11), then every CC7
is set so the parts sit at their roles' levels and the lead sits just under the rest of the
band. A fixed CC7 per role cannot do this: a four-note pad is 6 dB over the same patch's line,
a rock kit 12 dB over a brush kit, a sparse harp lead 10 dB under its own patch phrase.

The estimate follows what the draft-quality report measures (integrated, gated loudness of
each part's own render): power per 100 ms slot, 400 ms blocks, the silence and a relative
-10 LU gate left out. Relative levels are what matter: the master normalises the cue.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from engine.generate.draft import patches as pt
from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Arrangement

SLOT_S = 0.1
BLOCK_SLOTS = 4  # 400 ms gating blocks
GATE_DB = -10.0


def _decay_s(arr: Arrangement, pi: int) -> float:
    """How long a note of this part counts at full power (a plucked note fades)."""
    part = arr.parts[pi]
    if part.is_drum:
        return pt.DRUM_RING_S
    t = st.TRAITS.get(part.name)
    return 99.0 if (t is None or t.sustain) else pt.PLUCK_RING_S


def _expression(arr: Arrangement) -> dict[int, list[tuple[float, int]]]:
    """CC11 changes per part, sorted by beat."""
    out: dict[int, list[tuple[float, int]]] = {}
    for pi, beat, cc, value in arr.ccs:
        if cc == 11:
            out.setdefault(pi, []).append((beat, value))
    for v in out.values():
        v.sort()
    return out


def part_powers(arr: Arrangement) -> np.ndarray:
    """(parts, slots) power of each part at CC7 127 against its patch's measured phrase
    (velocity 90, CC7 100; by register where patches.PATCH_CURVE has the patch): velocity
    and CC11 count as 40 log10 dB, as CC7 does; CC11 from the slot it changes in."""
    n_slots = int(math.ceil(arr.duration_s / SLOT_S)) + 1
    power = np.zeros((len(arr.parts), n_slots))
    expr = _expression(arr)
    ring = [_decay_s(arr, pi) for pi in range(len(arr.parts))]
    drum = [p.is_drum for p in arr.parts]
    curves = [None if p.is_drum else pt.PATCH_CURVE.get(p.program) for p in arr.parts]
    cc7 = (127 / 100) ** 4
    for n in arr.notes:
        t0 = arr.time_of(n.start)
        t1 = min(arr.time_of(n.start + n.dur), t0 + ring[n.part], arr.duration_s)
        w = (n.vel / 90.0) ** 4 * cc7
        if drum[n.part]:
            w *= 10 ** (pt.DRUM_NOTE_DB.get(n.pitch, 0.0) / 10)
        elif curves[n.part] is not None:
            w *= 10 ** (float(np.interp(n.pitch, pt.CURVE_PITCHES, curves[n.part])) / 10)
        a, b = int(t0 / SLOT_S), max(int(t0 / SLOT_S) + 1, int(math.ceil(t1 / SLOT_S)))
        power[n.part, a:b] += w
    for pi, changes in expr.items():  # CC11 acts on every sounding note, held ones too
        gain = np.ones(n_slots)
        for beat, value in changes:
            gain[int(arr.time_of(beat) / SLOT_S) :] = (value / 127.0) ** 4
        power[pi] *= gain
    return power


def gated_db(power: np.ndarray) -> float:
    """Integrated loudness (dB) of a power series: 400 ms blocks, silence and blocks 10 dB
    under the mean left out."""
    if power.size < BLOCK_SLOTS:
        return -120.0
    csum = np.concatenate([[0.0], np.cumsum(power)])
    blocks = (csum[BLOCK_SLOTS:] - csum[:-BLOCK_SLOTS]) / BLOCK_SLOTS
    blocks = blocks[blocks > 1e-9]
    if blocks.size == 0:
        return -120.0
    mean = float(blocks.mean())
    kept = blocks[blocks >= mean * 10 ** (GATE_DB / 10)]
    return 10.0 * math.log10(float(kept.mean()))


def patch_db(arr: Arrangement, pi: int) -> float:
    """The measured loudness of the part's patch (or kit) phrase at CC7 100."""
    part = arr.parts[pi]
    if part.is_drum:
        return pt.KIT_LOUDNESS.get(part.program, pt.DRUM_KIT_LOUDNESS)
    if part.program in pt.PATCH_CURVE:
        return 0.0  # by register, note by note (part_powers)
    return pt.PATCH_DEFAULT_DB


def _role_db(arr: Arrangement, pi: int, family: str) -> float:
    return st.ROLE_LEVEL_DB[family].get(arr.parts[pi].roles[0], -6.0)


def _cc7(gain_db: float) -> int:
    """CC7 for a gain under full volume (CC7 scales gain by 40 log10 dB)."""
    return int(min(127, max(1, round(127 * 10 ** (min(0.0, gain_db) / 40.0)))))


def level_parts(arr: Arrangement) -> None:
    """Set every part's CC7: each at its role's level against the others (style.ROLE_LEVEL_DB),
    the lead style.LEAD_UNDER_BAND_DB under the sum of the rest. The part furthest under its
    level plays at full volume and the others come down to it; parts on the shared drum
    channel take the drum part's volume."""
    if not arr.parts or not arr.notes:
        return
    family = "groove" if st.GENRES[arr.genre].groove else "open"
    if arr.genre in st.ORCHESTRAL_AIR:
        family = "orchestral"
    power = part_powers(arr)
    full = [patch_db(arr, pi) + gated_db(power[pi]) for pi in range(len(arr.parts))]
    lead = next((i for i, p in enumerate(arr.parts) if "melody" in p.roles and not p.is_drum), None)
    drum = next((i for i, p in enumerate(arr.parts) if p.is_drum), None)
    band = [i for i in range(len(arr.parts)) if i != lead and full[i] > -100.0]
    # one channel: the first drum part's CC7 sets every drum part
    mixers = [i for i in band if not arr.parts[i].is_drum or i == drum]
    headroom = min((full[i] - _role_db(arr, i, family) for i in mixers), default=0.0)
    gains = {i: _role_db(arr, i, family) + headroom - full[i] for i in mixers}
    if lead is not None and full[lead] > -100.0:
        mix = sum(
            power[i] * 10 ** ((patch_db(arr, i) + gains[drum if arr.parts[i].is_drum else i]) / 10)
            for i in band
        )
        band_db = gated_db(np.asarray(mix)) if band else full[lead]
        want = band_db - st.LEAD_UNDER_BAND_DB[family] - full[lead]
        if want > 0.0:  # the lead cannot come up further: the band comes down
            gains = {i: g - want for i, g in gains.items()}
            want = 0.0
        gains[lead] = want
    vols = {i: _cc7(g) for i, g in gains.items()}
    for pi, part in enumerate(arr.parts):
        vol = vols.get(drum if part.is_drum and drum is not None else pi)
        if vol is not None:
            arr.parts[pi] = dataclasses.replace(part, volume=vol)


def _mix_power(arr: Arrangement) -> np.ndarray:
    """The mix's power per slot, every part at its CC7."""
    power = part_powers(arr)
    gains = [
        10 ** (patch_db(arr, pi) / 10) * ((p.volume or 127) / 127) ** 4
        for pi, p in enumerate(arr.parts)
    ]
    return (power * np.asarray(gains)[:, None]).sum(axis=0)


def _span_db(mix: np.ndarray, t0: float, t1: float) -> float:
    a, b = int(t0 / SLOT_S), max(int(t0 / SLOT_S) + 1, int(math.ceil(t1 / SLOT_S)))
    return 10.0 * math.log10(max(float(mix[a:b].mean()), 1e-12))


def _scale_expression(arr: Arrangement, b0: float, b1: float, gain_db: float) -> None:
    """Every part's CC11 between two beats moved by ``gain_db`` (CC11 scales by 40 log10)."""
    f = 10 ** (gain_db / 40.0)
    arr.ccs = [
        (pi, beat, cc, max(1, min(127, round(v * f)))) if cc == 11 and b0 <= beat < b1
        else (pi, beat, cc, v)
        for pi, beat, cc, v in arr.ccs
    ]  # fmt: skip


def shape_lifts(arr: Arrangement) -> None:
    """Bring each B section's lift over the A before it into style.B_LIFT_LU, estimated from
    the notes as the report measures it (each section's mean loudness): a B that lifts too far
    plays softer (an earlier B under the last: the last B is the climax), the A under a B
    that lifts too little plays softer (the B is at full expression already). Layers and
    intensities make the lift; this trims what they miss, by style.B_LIFT_MAX_TRIM_DB at
    most."""
    if not arr.notes:
        return
    for _ in range(2):  # once more on the trimmed notes: held notes carry a trim across sections
        _shape_lifts_once(arr)


def section_spans(arr: Arrangement) -> list[list]:
    """Each section as [label, first beat, end beat, estimated mean loudness (dB)]."""
    mix = _mix_power(arr)
    spans = []
    for sec in arr.sections:
        first, last = arr.bars[sec.bars[0]], arr.bars[sec.bars[-1]]
        b0, b1 = first.start, last.start + last.beats
        t1 = min(arr.time_of(b1), arr.duration_s)
        spans.append([sec.label, b0, b1, _span_db(mix, arr.time_of(b0), t1)])
    return spans


def _shape_lifts_once(arr: Arrangement) -> None:
    spans = section_spans(arr)
    bias = st.B_LIFT_ESTIMATE_BIAS.get(arr.genre, 0.0)
    lo, hi = st.B_LIFT_LU[0] - bias, st.B_LIFT_LU[1] - bias
    last_b = max((i for i, s in enumerate(spans) if s[0] == "B"), default=-1)
    for i in [i for i, s in enumerate(spans) if s[0] == "B"]:
        _trim_lift(arr, spans, i, lo, hi if i == last_b else max(lo, hi - 0.5))
    # the last B stays the climax: an earlier B plays a little under it
    climax = lift(spans, last_b)
    for i in [i for i, s in enumerate(spans[:last_b]) if s[0] == "B"]:
        if climax is not None:
            _trim_lift(arr, spans, i, lo, max(lo, climax - 0.5))


def _a_before(spans: list[list], i: int) -> list | None:
    """The A (or A2) section a B at ``i`` lifts over: the last one before it."""
    return next((s for s in reversed(spans[:i]) if s[0] in ("A", "A2")), None) if i >= 0 else None


def lift(spans: list[list], i: int) -> float | None:
    """The estimated lift (dB) of the B at ``i`` over its A; None without one."""
    a = _a_before(spans, i)
    return None if a is None else spans[i][3] - a[3]


def _trim_lift(arr: Arrangement, spans: list[list], i: int, lo: float, top: float) -> None:
    """A B lifting over ``top`` plays softer; the A under one lifting under ``lo`` too."""
    a, b_lift = _a_before(spans, i), lift(spans, i)
    if a is None or b_lift is None:
        return
    target, trim = (spans[i], top - b_lift) if b_lift > top else (a, b_lift - lo)
    trim = max(-st.B_LIFT_MAX_TRIM_DB, min(0.0, trim))
    if trim < 0.0:
        end = target[2]
        nxt = spans[spans.index(target) + 1] if target is not spans[-1] else None
        if nxt is not None and nxt[0] == "end" and _copies_level(arr, target[1], nxt[1]):
            end = nxt[2]  # a button's final hit keeps the level of the section before it
        _scale_expression(arr, target[1], end, trim)
        target[3] += trim


def _copies_level(arr: Arrangement, b0: float, b1: float) -> bool:
    """The section at ``b1`` starts at the CC11 level the one at ``b0`` did (a button end)."""
    at = {beat: v for _, beat, cc, v in arr.ccs if cc == 11 and beat in (b0, b1)}
    return b0 in at and at.get(b1) == at[b0]
