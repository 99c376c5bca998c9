"""Which bars of a track to leave out or play again so that it lasts a given length.

A plan is a path through the track's bars: it starts at the track's start (its intro), ends
with the track's own ending, and jumps only from one downbeat to another, so every bar it plays
is whole and the beat never stumbles. Candidates are scored by how alike the music is on both
sides of each jump (the bars before and after the two downbeats), whether the jumps fall on
phrase lines (every 4 or 8 bars), whether the intro and the last phrase stay whole, and how
many jumps there are. What whole bars cannot reach (less than a bar) is absorbed at the start:
leading silence is trimmed, or the music enters on a later beat of its first bar after less
than a beat of silence; silence added at the start is at most one beat (the ending is never
touched).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bridge.errors import InvalidRequest

INTRO_BARS = 4  # kept whole where the target allows
ENDING_BARS = 4  # the last phrase before the final downbeat, kept whole where it can be
SPLICE_COST = 0.1
KEEP_COST = 0.5  # cutting into the intro or the last phrase
SILENCE_COST = 0.8  # per beat of silence before the music enters: trimming is preferred
MAX_SILENCE_BEATS = 1.0  # silence added at the start, at most (unless no plan fits otherwise)
ENTER_COST = 0.1  # per beat of the intro skipped at the start
TOP = 24  # candidates per bar count whose start is checked


@dataclass(frozen=True)
class Jump:
    """One splice: after the bar before `out_bar`, the music continues at `in_bar`."""

    kind: str  # "remove" | "repeat"
    out_bar: int
    in_bar: int
    bars: int  # bars left out (remove) or played again (repeat) by this jump


@dataclass(frozen=True)
class BarPlan:
    runs: tuple[tuple[int, int], ...]  # bar ranges [first, end) played in order
    jumps: tuple[Jump, ...]  # between consecutive runs
    cost: float


@dataclass(frozen=True)
class Head:
    """How the start absorbs what whole bars cannot: `trim` samples cut off the track's start,
    then `silence` samples of silence before it (one of the two is usually 0)."""

    trim: int
    silence: int
    into_music: bool  # the cut falls inside the music (it enters on a beat, de-clicked)
    cost: float


@dataclass(frozen=True)
class Grid:
    """The bar grid in samples, as the planner needs it."""

    downbeats: np.ndarray  # sample of each bar's downbeat; bar j = [downbeats[j], next)
    beats: np.ndarray  # sample of every beat
    final_bar: int  # the bar of the final hit: it and everything after stay as they are
    phrase_offset: int
    distances: np.ndarray  # (bars, bars) 0..1
    n_samples: int
    rate: int
    lead: int  # samples of silence before the first sound
    guard: int  # a splice's crossfade ends this many samples before its downbeat
    fade: int

    @property
    def beat(self) -> float:
        return float(np.median(np.diff(self.beats)))

    @property
    def bar(self) -> float:
        return float(np.median(np.diff(self.downbeats)))


def phrase_cost(grid: Grid, bar: np.ndarray) -> np.ndarray:
    rel = (np.asarray(bar) - grid.phrase_offset) % 8
    return np.where(rel == 0, 0.0, np.where(rel % 4 == 0, 0.05, np.where(rel % 2 == 0, 0.15, 0.3)))


def join_cost(grid: Grid, out_bar: np.ndarray, in_bar: np.ndarray) -> np.ndarray:
    """How unlike the music is on the two sides of a jump: the bars before the two downbeats
    and the bars that start there."""
    d, n = grid.distances, grid.distances.shape[0]
    o, i = np.asarray(out_bar), np.asarray(in_bar)
    before = d[np.clip(o - 1, 0, n - 1), np.clip(i - 1, 0, n - 1)]
    after = np.where((o < n) & (i < n), d[np.clip(o, 0, n - 1), np.clip(i, 0, n - 1)], before)
    return 0.5 * (before + after)


def _keep_cost(grid: Grid, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Cutting into the intro or into the last phrase before the final bar."""
    intro = min(INTRO_BARS, max(1, grid.final_bar // 3))
    ending = grid.final_bar - min(ENDING_BARS, max(1, grid.final_bar // 3))
    return KEEP_COST * ((first < intro).astype(float) + (last > ending).astype(float))


def removals(grid: Grid, k: int) -> list[tuple[float, BarPlan]]:
    """Leave out bars [a, a + k): one jump from downbeat a to downbeat a + k."""
    a = np.arange(1, grid.final_bar - k + 1)
    if k <= 0 or a.size == 0:
        return []
    b = a + k
    cost = (join_cost(grid, a, b) + phrase_cost(grid, a) + phrase_cost(grid, b)
            + _keep_cost(grid, a, b) + SPLICE_COST)  # fmt: skip
    end = grid.downbeats.size
    return [
        (float(c), BarPlan(((0, int(i)), (int(j), end)), (Jump("remove", int(i), int(j), k),), 0))
        for c, i, j in zip(cost, a, b, strict=True)
    ]


def _repeat_plan(grid: Grid, a: int, b: int, k: int) -> BarPlan:
    span = b - a
    m, e = divmod(k, span)
    end = grid.downbeats.size
    runs = [(0, b)] + [(a, b)] * m
    jumps = [Jump("repeat", b, a, span)] * m
    if e:
        runs.append((b - e, end))
        jumps.append(Jump("repeat", b, b - e, e))
    else:  # the last repeat plays on to the end
        runs[-1] = (a, end)
    return BarPlan(tuple(runs), tuple(jumps), 0)


def repeats(grid: Grid, k: int) -> list[tuple[float, BarPlan]]:
    """Play k more bars: jump back from downbeat b to a (span b - a) as often as needed, the
    remainder as one shorter jump back (from b to b - e)."""
    best: list[tuple[float, int, int]] = []
    f = grid.final_bar
    for span in range(1, f + 1):
        a = np.arange(0, f - span + 1)  # from bar 0 too: a short track may loop whole
        if a.size == 0:
            break
        b = a + span
        m, e = divmod(k, span)
        cost = m * join_cost(grid, b, a) + phrase_cost(grid, a) + phrase_cost(grid, b)
        cost = cost + _keep_cost(grid, a, b) + SPLICE_COST * (m + (e > 0))
        if e:
            cost = cost + join_cost(grid, b, b - e) + phrase_cost(grid, b - e)
        best.extend((float(cost[j]), int(a[j]), int(b[j])) for j in np.argsort(cost)[:TOP])
    best.sort(key=lambda t: t[0])
    return [(c, _repeat_plan(grid, a, b, k)) for c, a, b in best[:TOP]]


def run_samples(grid: Grid, run: tuple[int, int], first: bool) -> tuple[int, int]:
    """A bar range in samples: the plan's first run starts at the track's start, a run to
    the last bar ends at its end, the others on downbeats."""
    d = grid.downbeats
    start = 0 if first else int(d[run[0]])
    end = grid.n_samples if run[1] >= d.size else int(d[run[1]])
    return start, end


def music_length(grid: Grid, plan: BarPlan) -> int:
    return sum(e - s for s, e in (run_samples(grid, r, i == 0) for i, r in enumerate(plan.runs)))


def fit_head(grid: Grid, excess: int, limit: int, cap: bool = True) -> Head | None:
    """Cut `excess` samples off the start (negative: add silence): trim leading silence, else
    enter on the first beat at or after the cut after less than a beat of silence. `limit`: the
    cut must stay before this sample (the first splice's crossfade, or the final bar); `cap`:
    no more than MAX_SILENCE_BEATS of silence is added."""
    beat = grid.beat

    def silence_cost(samples: int) -> float:
        beats = samples / beat
        return SILENCE_COST * (beats + max(0.0, beats - 1.0))

    if excess <= 0:
        if cap and -excess > MAX_SILENCE_BEATS * beat:
            return None
        return Head(0, -excess, False, silence_cost(-excess))
    if excess <= grid.lead:
        return Head(excess, 0, False, 0.0)
    later = grid.beats[grid.beats - grid.guard >= excess]
    if later.size == 0:
        return None
    cut = int(later[0]) - grid.guard
    if cut > limit:
        return None
    silence = cut - excess
    skipped = max(0.0, (cut - grid.lead) / beat)
    return Head(cut, silence, True, silence_cost(silence) + ENTER_COST * skipped)


def _head_limit(grid: Grid, plan: BarPlan) -> int:
    if plan.jumps:
        out = int(grid.downbeats[plan.jumps[0].out_bar])
        return out - 2 * grid.guard - 2 * grid.fade
    return int(grid.downbeats[grid.final_bar]) - grid.guard


def _best(grid: Grid, target: int, cands: list[tuple[float, BarPlan]], cap: bool):
    best = None
    for cost, plan in sorted(cands, key=lambda t: t[0])[: 4 * TOP]:
        excess = music_length(grid, plan) - target
        head = fit_head(grid, excess, _head_limit(grid, plan), cap)
        if head is not None and (best is None or cost + head.cost < best[0]):
            best = (cost + head.cost, BarPlan(plan.runs, plan.jumps, cost + head.cost), head)
    return best


def plan(grid: Grid, target: int) -> tuple[BarPlan, Head, list[str]]:
    """The cheapest plan that lasts exactly `target` samples (with its head), and notes."""
    n, bar = grid.n_samples, grid.bar
    ending = n - int(grid.downbeats[grid.final_bar])
    if target < ending + grid.guard:
        raise InvalidRequest(
            f"the target ({target / grid.rate:.2f} s) is shorter than the track's own "
            f"ending (its final bar and ring-out last {ending / grid.rate:.2f} s): "
            "choose a longer target"
        )
    whole = math.floor((n - target) / bar)
    cands = {}
    for delta in (whole, whole + 1):  # bars to leave out (negative: to play again)
        if delta > 0:
            cands[delta] = removals(grid, delta)
        elif delta < 0:
            cands[delta] = repeats(grid, -delta)
        else:
            cands[delta] = [(0.0, BarPlan(((0, grid.downbeats.size),), (), 0.0))]
    for cap in (True, False):  # over a beat of silence only where nothing else fits
        found = [b for c in cands.values() if (b := _best(grid, target, c, cap)) is not None]
        if found:
            _, bar_plan, head = min(found, key=lambda t: t[0])
            return bar_plan, head, []
    if target > n:
        raise InvalidRequest(
            f"the track has too few whole bars ({grid.final_bar} before its final bar) to "
            f"repeat up to {target / grid.rate:.2f} s"
        )
    return _backtime(grid, target)


def _backtime(grid: Grid, target: int) -> tuple[BarPlan, Head, list[str]]:
    """Too short for the intro and the ending together: start later in the track, on a beat."""
    full = BarPlan(((0, grid.downbeats.size),), (), 0.0)
    head = fit_head(grid, grid.n_samples - target, int(grid.downbeats[grid.final_bar]))
    if head is None:
        raise InvalidRequest("no bar line to start from fits the target; choose a longer target")
    bar_no = int(np.searchsorted(grid.downbeats, head.trim + grid.guard, side="right"))
    note = (
        "the target is shorter than the track's first bar and its ending together: the "
        f"output starts in bar {bar_no} (on a beat), leaving out the intro"
    )
    return full, head, [note]
