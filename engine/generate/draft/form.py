"""The draft arrangement's time plan and form: tempo segments fitted to the scene cuts, then
4/4 bars grouped into labelled sections (intro, A, B, break, end) with their intensities.

Scene cuts and markers (hit points) that leave room become section boundaries: the segment
before one gets a whole number of beats (its tempo nudged by at most 3.5 % for a cut, 3 % for a
marker) so it falls on a downbeat; hits too close to a boundary are returned as accents at
their exact time instead. The last segment ends
with a bar that holds the final chord to the cue's exact length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Arrangement, Bar, Section, TempoSegment, q

# the orders section labels take through a cue's body: a seed picks one (a cue that continues
# another keeps its cycle, so a continuous run is one form)
CYCLES = (
    ("A", "B", "A2", "B", "break", "B", "A2", "B"),
    ("A", "A2", "B", "break", "B", "A2", "B", "B"),
    ("A", "B", "break", "A2", "B", "B", "A2", "B"),
    ("A", "A2", "B", "B", "break", "A2", "B", "B"),
)
CYCLE_LABELS = CYCLES[0]
SHORT_SECTION = {"A": 0.3, "A2": 0.4, "B": 0.25, "break": 0.6}  # chance of 4 bars, not 8


CUT_NUDGE = 0.035  # the most a segment's tempo moves to land a cut on a downbeat
MARKER_NUDGE = 0.03  # ... and a marker


def plan_time(
    duration_s: float,
    bpm: float,
    cuts: tuple[float, ...],
    markers: tuple[float, ...] = (),
    end_at: float | None = None,
) -> tuple[list[TempoSegment], list[float], list[float], float]:
    """Tempo segments, boundary beats (hits that start sections), accent hit times, end beat.

    Hits are the cuts and the markers together (a marker on a cut is one hit). ``end_at`` (a
    button or cut ending) is one more boundary: the final downbeat lands on it exactly, like a
    cut's, and is the last of the boundary beats."""
    beat_s = 60.0 / bpm
    boundaries = [0.0]
    accents: list[float] = []
    limit = duration_s if end_at is None else end_at
    only_markers = {m for m in markers if all(abs(m - c) > 1e-3 for c in cuts)}
    for c in sorted({*cuts, *only_markers}):
        if c - boundaries[-1] >= 3.5 * beat_s and limit - c >= 1.0 * beat_s:
            boundaries.append(c)
        elif c < limit:
            accents.append(c)
    if end_at is not None and end_at > boundaries[-1]:
        boundaries.append(end_at)
    segments: list[TempoSegment] = []
    boundary_beats: list[float] = []
    beat = 0.0
    t = 0.0
    for i, b0 in enumerate(boundaries):
        if i + 1 < len(boundaries):
            length = boundaries[i + 1] - b0
            n_exact = length / beat_s
            n = max(1, round(n_exact))
            nudge = MARKER_NUDGE if boundaries[i + 1] in only_markers else CUT_NUDGE
            if abs(n / n_exact - 1.0) <= nudge:
                us = round(length * 1e6 / n)
                beats = float(n)
            else:
                us = round(beat_s * 1e6)
                beats = q(length * 1e6 / us)
        else:
            us = round(beat_s * 1e6)
            beats = 0.0
        segments.append(TempoSegment(start_beat=beat, start_s=t, us_per_beat=us))
        if i > 0:
            boundary_beats.append(beat)
        beat += beats
        t += beats * us / 1e6
    last = segments[-1]
    end_beat = last.start_beat + (duration_s - last.start_s) * 1e6 / last.us_per_beat
    return segments, boundary_beats, accents, end_beat


def ring_hold(bpm: float) -> float:
    """Beats a ring ending holds at the least: 2 s, 2-6 beats."""
    return min(6.0, max(2.0, 2.0 * bpm / 60.0))


@dataclass(frozen=True)
class FormFit:
    """A drawn tempo fitted to the form: ``bars`` (intro and body) then the held end."""

    drawn_bpm: float
    bpm: float
    intro: int
    bars: int

    def to_json(self) -> dict[str, object]:
        body = self.bars - self.intro
        return {
            "drawn_bpm": self.drawn_bpm, "bpm": self.bpm, "intro_bars": self.intro,
            "body_bars": body,
            "note": f"tempo fitted from {self.drawn_bpm:g} to {self.bpm:g} BPM: a "
                    f"{self.intro}-bar intro and {body} bars of A and B sections",
        }  # fmt: skip


def _bpm_span(length_s: float, bars: int, ending: str, extra_s: float) -> tuple[float, float]:
    """The tempi at which ``bars`` bars and the ending's hold fill ``length_s``: a ring holds
    its minimum to ``extra_s`` seconds more; other endings hold nothing (the body runs out)."""
    exact = 240.0 * bars / length_s
    if ending != "ring":
        return exact, exact

    def at(target_s: float) -> float:  # the hold, past its minimum, grows with the tempo
        lo, hi = exact, 4.0 * exact
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            extra = min(target_s, st.HOLD_MAX_S - ring_hold(mid) * 60.0 / mid)
            if length_s * mid / 60.0 - 4.0 * bars - ring_hold(mid) < extra * mid / 60.0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    return at(0.0), at(extra_s)


def _fit_one(
    length_s: float,
    bpm: float,
    ending: str,
    bounds: tuple[float, float],
    plan: tuple[int, int],
    cap: float,
) -> tuple[float, float] | None:
    """(move, fitted bpm) for one (intro, bars) plan inside the bucket: the shortest hold
    that reaches within ``cap`` of the drawn tempo, else the smallest move (over the cap);
    None where the bucket holds no such tempo."""
    best = None
    for extra in st.HOLD_EXTRA_S:
        a, b = _bpm_span(length_s, plan[1], ending, extra)
        a, b = max(a, bounds[0]), min(b, bounds[1])
        if a > b:
            continue
        margin = min(0.001 * bpm, 0.25 * (b - a))  # off the edges: tempo rounding keeps bars
        x = round(min(max(bpm, a + margin), b - margin), 2)
        move = abs(x / bpm - 1.0)
        if move <= cap:
            return move, x
        if best is None or move < best[0]:
            best = (move, x)
    return best


def _nearest_fit(
    length: float,
    bpm: float,
    ending: str,
    bounds: tuple[float, float],
    plans: list[tuple[int, int]],
    cap: float,
) -> FormFit | None:
    """The plan among ``plans`` whose tempo lies nearest ``bpm``, within ``cap`` of it."""
    best: tuple[float, float, tuple[int, int]] | None = None
    for plan in plans:
        got = _fit_one(length, bpm, ending, bounds, plan, cap)
        if got is not None and got[0] <= cap and (best is None or got[0] < best[0] - 1e-9):
            best = (got[0], got[1], plan)
    if best is None:
        return None
    return FormFit(drawn_bpm=bpm, bpm=best[1], intro=best[2][0], bars=best[2][1])


def fit_tempo(
    duration_s: float,
    bpm: float,
    ending: str,
    bounds: tuple[float, float],
    frame_s: float,
    rng: np.random.Generator | None = None,
) -> FormFit | None:
    """The drawn tempo nudged (st.FORM_FIT_MAX_MOVE at most, inside ``bounds``) so the cue is
    a 4-bar intro and 4/8-bar sections, then the held end. A cue of fewer than
    st.SHORT_FORM_BARS bars at the drawn tempo takes a 2-bar intro, then A 4 and B 4 or a 2-bar
    A and B 4, whichever moves the tempo less (st.SHORT_FORM_MAX_MOVE at most); one of fewer than
    st.INTRO_CHOICE_BARS takes a 2- or a 4-bar intro on the seed (``rng``) where both fit.
    None: nothing fits."""
    if ending == "loop":
        return None
    length = duration_s - frame_s if ending in ("button", "cut") else duration_s
    bars_held = duration_s * bpm / 240.0  # at the drawn tempo
    if bars_held < st.SHORT_FORM_BARS:  # A 4 and B 4, or a 2-bar A
        plans = [(2, 10), (2, 8)]
        return _nearest_fit(
            length, bpm, ending, bounds, plans, st.SHORT_FORM_MAX_MOVE
        ) or _nearest_fit(length, bpm, ending, bounds, plans, st.FORM_FIT_FALLBACK_MOVE)
    intros = [st.FORM_INTRO_BARS]
    if bars_held < st.INTRO_CHOICE_BARS:
        intros.append(2)
    top = int(length * bounds[1] / 240.0) + 1
    fits = []
    for intro in intros:
        plans = [(intro, n) for n in range(intro + 8, top + 1, 4)]
        fit = _nearest_fit(length, bpm, ending, bounds, plans, st.FORM_FIT_MAX_MOVE)
        if fit is not None:
            fits.append(fit)
    if not fits:  # nothing within the usual move: the nearest form within the fallback move
        plans = [(i, n) for i in intros for n in range(i + 8, top + 1, 4)]
        fit = _nearest_fit(length, bpm, ending, bounds, plans, st.FORM_FIT_FALLBACK_MOVE)
        fits = [fit] if fit is not None else []
    if len(fits) > 1 and rng is not None:
        return fits[int(rng.integers(len(fits)))]
    return fits[0] if fits else None


Span = tuple[float, float]  # (start beat, length in beats)


def _segment_bars(b0: float, b1: float) -> list[Span]:
    """Whole bars between two cuts; a remainder of a beat or more is a short bar, less is
    added to the last bar."""
    length = b1 - b0
    bars: list[Span] = []
    n_full = math.floor(length / 4.0 + 1e-9)
    rem = q(length - 4.0 * n_full)
    for j in range(n_full):
        bars.append((b0 + 4.0 * j, 4.0))
    if rem >= 0.999:
        bars.append((b0 + 4.0 * n_full, rem))
    elif rem > 0 and bars:
        start, beats = bars[-1]
        bars[-1] = (start, beats + rem)
    elif rem > 0:
        bars.append((b0, rem))
    return bars


def _all_segment_bars(
    seg_starts: list[float], seg_ends: list[float], hold_min: float | None
) -> tuple[list[list[Span]], Span | None]:
    """The body bars of each segment, and the final held bar (at least ``hold_min`` beats;
    none when ``hold_min`` is None: the body runs to the end)."""
    body: list[list[Span]] = []
    final: Span | None = None
    for k, (b0, b1) in enumerate(zip(seg_starts, seg_ends, strict=True)):
        if k == len(seg_starts) - 1 and hold_min is not None:
            n_body = max(0, math.floor((b1 - b0 - hold_min) / 4.0 + 1e-9))
            body.append([(b0 + 4.0 * j, 4.0) for j in range(n_body)])
            final = (b0 + 4.0 * n_body, b1 - (b0 + 4.0 * n_body))
        else:
            body.append(_segment_bars(b0, b1))
    return body, final


def _intro_length(n: int, rng: np.random.Generator | None) -> int:
    """Bars of the intro: 2, plus what does not fill a 4-bar unit after it (a pickup of up to
    3 bars), so every section after it is 4 or 8 bars; where that would make 5 bars, some seeds
    take a one-bar pickup and a longer body. A body too short for an intro, a 4-bar A and a
    4-bar B (a slow 30 s cue) keeps 6 bars for a 2-bar A and a 4-bar B."""
    if n < 10:
        return max(1, n - 6)
    intro = 2 + (n - 2) % 4
    if intro == 5 and rng is not None and rng.random() < 0.5:
        intro = 1
    return intro


def _sizes(n: int, labels: list[str], unit: int, rng: np.random.Generator | None) -> list[int]:
    """Section lengths for ``n`` bars: 8-bar (12 for a blues chorus) units, some 4 bars on a
    seed; a remainder under 4 bars (a segment between cuts) joins the last section."""
    sizes: list[int] = []
    rest = n
    while rest > 0:
        label = labels[len(sizes) % len(labels)]
        size = unit
        if unit == 8 and rng is not None and rest >= 12 and rng.random() < SHORT_SECTION[label]:
            size = 4
        if rest < size + 4:  # what is left: one section (4 or 8), or two that share it
            size = rest if rest < 8 or rest % 4 else (rest if rest <= unit else rest - 4)
        sizes.append(min(size, rest))
        rest -= sizes[-1]
    return sizes


def _group(
    bars: list[Span],
    with_intro: bool,
    section_size: int,
    li: int,
    cycle: tuple[str, ...] = CYCLE_LABELS,
    rng: np.random.Generator | None = None,
    intro: int | None = None,
) -> tuple[list[tuple[str, list[Span]]], int]:
    """One segment's bars as labelled sections; ``li`` is the position in the label cycle.
    Sections are 4 or 8 bars (a blues chorus 12); a cue with an intro has a B section: when
    the label cycle would not reach one, the last section is the B (the climax comes late).
    ``intro``: the intro's bars where the tempo was fitted to the form (one segment): its
    last section is a B (three 4-bar sections: A, B, B)."""
    groups: list[tuple[str, list[Span]]] = []
    remaining = list(bars)
    if with_intro:
        n_intro = intro if intro is not None else _intro_length(len(remaining), rng)
        groups.append(("intro", remaining[:n_intro]))
        remaining = remaining[n_intro:]
    n = len(remaining)
    unit = section_size if n >= 2 * section_size else min(section_size, 8)
    if with_intro and n == 6:  # slow and short: a 2-bar A, then the B
        sizes = [2, 4]
    elif with_intro and n in (8, 12):  # an A and a B, the longer one on a seed; or three 4s
        three = n == 12 and intro == 4  # (after a 2-bar intro a first B would come too early)
        pick = 0 if rng is None else int(rng.integers(3 if three else 2))
        sizes = [[4, n - 4], [n - 4, 4], [4, 4, 4]][pick]
    else:
        labels = [cycle[(li + i) % len(cycle)] for i in range(len(cycle))]
        sizes = _sizes(n, labels, unit, rng)
    labels = [cycle[(li + i) % len(cycle)] for i in range(len(sizes))]
    if intro is not None and len(labels) >= 2:  # a fitted form ends on its climax, the B
        labels = ["A", "B", "B"] if sizes == [4, 4, 4] else [*labels[:-1], "B"]
    if with_intro and "B" not in labels and len(labels) >= 2:
        labels[-1] = "B"
    li += len(sizes)
    for label, size in zip(labels, sizes, strict=True):
        groups.append((label, remaining[:size]))
        remaining = remaining[size:]
    return groups, li


def _set_intensities(arr: Arrangement, energy_scale: float) -> None:
    """Each section's intensity: its label's, scaled by the cue's energy; a B never under
    its genre's st.B_MIN_INTENSITY (a quiet cue's chorus still lifts by what it plays)."""
    b_at = [i for i, sec in enumerate(arr.sections) if sec.label == "B"]
    for i, sec in enumerate(arr.sections):
        base = st.SECTION_INTENSITY[sec.label]
        last_b = bool(b_at) and i == b_at[-1] and i >= len(arr.sections) - 3
        if last_b:
            base += 0.05  # the last chorus lifts
        sec.intensity = min(1.1, base * energy_scale)
        if sec.label == "B":
            floor = st.B_MIN_INTENSITY.get(arr.genre, 0.0)
            sec.intensity = max(sec.intensity, floor + 0.05 * last_b * (floor > 0))
    if arr.sections[-1].label == "end" and len(arr.sections) > 1:
        arr.sections[-1].intensity = arr.sections[-2].intensity


def _hold_min(arr: Arrangement, ending: str, form_plan: tuple[int, int] | None) -> float | None:
    """Beats the final bar holds at the least: a ring's 2 s (or what a fitted form's bars
    leave), nothing for a button or cut (their final bar is the last frame); None: the body
    runs to the end (fade, none, loop)."""
    if ending in ("button", "cut"):
        return 0.0
    if ending in ("fade", "none", "loop"):
        return None
    if form_plan is not None:
        return arr.end_beat - 4.0 * form_plan[1]
    return ring_hold(arr.tempo[-1].bpm)


def plan_bars(
    arr: Arrangement,
    boundary_beats: list[float],
    genre: str,
    energy_scale: float,
    ending: str = "ring",
    label_index: int | None = None,
    rng: np.random.Generator | None = None,
    form_cycle: int | None = None,
    form_plan: tuple[int, int] | None = None,
) -> None:
    """Fill ``arr.bars`` and ``arr.sections``: each cut starts a section. A ring ending holds
    the last bar; button and cut endings make the last boundary a final one-frame bar; fade,
    none and loops run the body to the end. ``label_index`` (and ``form_cycle``) continue a
    previous cue's form (no intro). ``rng`` draws the label cycle and the section lengths;
    without it the form is the first cycle in 8-bar sections. ``form_plan`` (intro bars,
    bars before the held end) is the fitted tempo's form (fit_tempo)."""
    seg_starts = [0.0, *boundary_beats]
    seg_ends = [*boundary_beats, arr.end_beat]
    body, final = _all_segment_bars(seg_starts, seg_ends, _hold_min(arr, ending, form_plan))
    total_body = sum(len(b) for b in body)
    section_size = 12 if genre == "blues" else 8
    li = label_index or 0
    if form_cycle is None:
        form_cycle = int(rng.integers(len(CYCLES))) if rng is not None else 0
    arr.form_cycle = form_cycle % len(CYCLES)
    cycle = CYCLES[arr.form_cycle]
    for k, bars in enumerate(body):
        with_intro = (
            k == 0 and label_index is None and ending != "loop"
            and total_body >= 7 and len(bars) >= 6
        )  # fmt: skip
        intro = form_plan[0] if form_plan is not None and k == 0 else None
        groups, li = _group(bars, with_intro, section_size, li, cycle, rng, intro)
        for gi, (label, gbars) in enumerate(groups):
            sec = Section(
                index=len(arr.sections),
                label=label,
                intensity=0.0,
                bars=[],
                after_cut=(k > 0 and gi == 0),
            )
            arr.sections.append(sec)
            for start, beats in gbars:
                sec.bars.append(len(arr.bars))
                arr.bars.append(Bar(len(arr.bars), start, beats, sec.index))
    arr.label_index = li
    if final is None:
        _set_intensities(arr, energy_scale)
        return
    end_sec = Section(index=len(arr.sections), label="end", intensity=0.0, bars=[])
    end_sec.after_cut = len(seg_starts) > 1 and abs(final[0] - seg_starts[-1]) < 1e-6
    arr.sections.append(end_sec)
    end_sec.bars.append(len(arr.bars))
    arr.bars.append(Bar(len(arr.bars), final[0], final[1], end_sec.index, final=True))
    _set_intensities(arr, energy_scale)
