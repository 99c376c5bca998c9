"""Beats, downbeats, bars and phrases of a finished track, measured on its audio (for
`vmb adapt`, which cuts and repeats whole bars).

The beat tracker of `engine/eval/tempo.py` (onset envelope -> tempo -> dynamic programming)
gives beats; on a steady track a straight grid is fitted to them and then tuned on a short-window
onset envelope, so bar lines are placed to a few milliseconds over the whole track. Downbeats
are the beat phase where harmony changes and the low end hits (kick, bass); phrases start on
the bar phase with the most change between the two bars before and the two bars after.
numpy/scipy only: a three-minute track takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from bridge.errors import InvalidRequest
from engine.eval import tempo
from engine.retrieve.dsp import to_analysis_rate

SR = tempo.ANALYSIS_SR
FEAT_N_FFT = 4096  # 186 ms windows: chroma resolves semitones from ~100 Hz
FEAT_HOP = 512
MIN_PULSE = 0.12  # normalised autocorrelation at the beat period below this: no steady beat
MIN_BEATS = 8
STEADY_S = 0.015  # the straight grid is this close to the onsets of every 16 beats: steady
PHRASE_BARS = 4
DOUBLE_TIME_MIN_BPM = 100.0  # a tempo this fast may be a slow track's eighth notes ...
REPHASE_MIN = 0.15  # both ends this far between beats (in beats) ...
REPHASE_AGREE = 0.08  # ... and this close to each other: the grid is off the music's beats
ANCHOR_VOTE = 0.25  # the start's and the final hit's vote for their beat, x the accent spread
DOUBLE_TIME_MIN_BEATS = 48  # ... over enough bars to tell (not a 4-bar loop)
DOUBLE_TIME_RATIO = 1.25  # ... when one beat in 8 stands out this much more than one in 4
TRIPLET_RANGE = (70.0, 180.0)  # a 3:2 / 2:3 reading of the tempo is considered inside this ...
TRIPLET_MARGIN = 1.1  # ... and taken when its beats explain the onsets this much better
HALF_BAR_RATIO = 0.95  # onsets repeat every 2 beats about as well as every 4: half-time read


@dataclass(frozen=True)
class Bars:
    """The bar grid of one track. Times in seconds of the track."""

    bpm: float  # measured: 60 / the grid's beat period
    beats_s: np.ndarray  # every beat over the whole track (extrapolated before/after the music)
    beats_per_bar: int
    first_downbeat: int  # index into beats_s of the first downbeat
    steady: bool  # a straight grid fits the tracked beats
    pulse: float  # 0..1, how clearly the onsets repeat at the beat period
    measured_bpm: float  # engine/eval/tempo.py's estimate (what `adapt` compares before/after)
    bar_features: np.ndarray  # (bars, dims): harmony and level per beat, for bar similarity
    phrase_offset: int  # phrases start at bars j with (j - phrase_offset) % 4 == 0
    last_onset_s: float  # the last onset: the final hit of the ending

    @property
    def downbeats_s(self) -> np.ndarray:
        return self.beats_s[self.first_downbeat :: self.beats_per_bar]

    @property
    def bar_s(self) -> float:
        return self.beats_per_bar * 60.0 / self.bpm

    def distances(self) -> np.ndarray:
        """(bars, bars) dissimilarity 0..1 of every pair of bars."""
        f = self.bar_features
        diff = np.linalg.norm(f[:, None, :] - f[None, :, :], axis=2)
        norm = np.linalg.norm(f, axis=1)
        return diff / np.maximum(norm[:, None] + norm[None, :], 1e-9)


def _pulse(env: tempo.OnsetEnvelope, bpm: float) -> float:
    """Normalised autocorrelation of the onset envelope at 1, 2 or 4 beats: 0 noise, 1 a
    metronome."""
    s = env.strength - env.strength.mean()
    if not np.any(s):
        return 0.0
    n = s.size
    spec = np.fft.rfft(s, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    ac = ac / ac[0]
    lag = 60.0 * env.frame_rate / bpm
    vals = [np.interp(k * lag, np.arange(n), ac) for k in (1, 2, 4) if k * lag < n - 1]
    return float(max(0.0, max(vals))) if vals else 0.0


def _grid_phase(beats: np.ndarray, period: float) -> float:
    """The phase (0..period) that most tracked beats share: a tracker that slips onto the
    off-beat for a while does not drag the grid with it."""
    phase = np.mod(beats, period)
    bins = max(8, int(period / 0.002))
    hist = np.bincount((phase / period * bins).astype(int) % bins, minlength=bins).astype(float)
    hist = gaussian_filter1d(hist, sigma=max(1.0, 0.01 / period * bins), mode="wrap")
    return (int(np.argmax(hist)) + 0.5) * period / bins


def _tune_grid(env: tempo.OnsetEnvelope, t0: float, period: float) -> tuple[float, float]:
    """Phase and period that put the grid on the onsets of a short-window envelope."""
    e = gaussian_filter1d(env.strength, 1.0)
    fr, lat = env.frame_rate, 0.0  # bar lines at the flux peak: the attack, or just after it
    dur = e.size / fr
    n = np.arange(int(np.ceil(-t0 / period)), int((dur - t0) / period) + 1)
    best = (-np.inf, t0, period)
    for p in period * (1.0 + np.linspace(-0.003, 0.003, 61)):
        shifts = t0 + np.linspace(-0.03, 0.03, 61)
        times = shifts[:, None] + n[None, :] * p - lat
        score = np.interp(times * fr, np.arange(e.size), e, left=0.0, right=0.0).sum(axis=1)
        j = int(np.argmax(score))
        if score[j] > best[0]:
            best = (float(score[j]), float(shifts[j]), float(p))
    return best[1], best[2]


def _local_offsets(env: tempo.OnsetEnvelope, t0: float, period: float) -> np.ndarray:
    """How far the straight grid is from the onsets over each 16 beats (stride 8), in s: a
    track that speeds up or slows down drifts away from it. Windows without onsets say 0."""
    e = gaussian_filter1d(env.strength, 1.0)
    fr = env.frame_rate
    beats = _straight(t0, period, e.size / fr)
    shifts = np.linspace(-0.06, 0.06, 61)
    offsets, scores = [], []
    for i in range(0, max(1, beats.size - 8), 8):
        times = beats[i : i + 16][None, :] + shifts[:, None]
        score = np.interp(times * fr, np.arange(e.size), e, left=0.0, right=0.0).sum(axis=1)
        offsets.append(float(shifts[int(np.argmax(score))]))
        scores.append(float(score.max()))
    quiet = np.array(scores) < 0.2 * np.median(scores)
    return np.where(quiet, 0.0, np.array(offsets))


def _straight(t0: float, period: float, dur: float) -> np.ndarray:
    """Every beat of a straight grid through t0 inside [0, dur)."""
    n = np.arange(int(np.ceil(-t0 / period)), int((dur - t0) / period) + 1)
    beats = t0 + n * period
    return beats[(beats >= 0) & (beats < dur)]


def _snap(env: tempo.OnsetEnvelope, beats: np.ndarray) -> np.ndarray:
    """Each tracked beat moved to the strongest short-window onset within 25 ms."""
    e, fr, lat = env.strength, env.frame_rate, 0.0
    out = beats.copy()
    w = int(0.025 * fr)
    for i, b in enumerate(beats):
        c = int(round((b - lat) * fr))
        lo, hi = max(0, c - w), min(e.size, c + w + 1)
        if hi > lo and e[lo:hi].max() > 0:
            out[i] = (lo + int(np.argmax(e[lo:hi]))) / fr + lat
    return out


def _extend(beats: np.ndarray, dur: float) -> np.ndarray:
    """Beats before the first and after the last tracked one, at the local period."""
    head_p = float(np.median(np.diff(beats[:5])))
    tail_p = float(np.median(np.diff(beats[-5:])))
    before = beats[0] - head_p * np.arange(int(beats[0] / head_p), 0, -1)
    after = beats[-1] + tail_p * np.arange(1, int((dur - beats[-1]) / tail_p) + 1)
    return np.concatenate([before, beats, after])


@dataclass(frozen=True)
class BeatGrid:
    beats: np.ndarray  # over the whole track
    bpm: float  # of the grid
    steady: bool
    pulse: float
    measured_bpm: float  # the tempo estimate of engine/eval/tempo.py, for comparisons


def _triplet_reading(env: tempo.OnsetEnvelope, bpm: float) -> float:
    """The tempo at 3/2 or 2/3 of `bpm` when its beats explain the onsets clearly better: the
    octave prior can pull a fast track's estimate onto a syncopated dotted-quarter pulse (165
    BPM funk read at 110), which would make every "bar" three real ones."""
    lo, hi = TRIPLET_RANGE
    readings = [bpm] + [bpm * f for f in (1.5, 2.0 / 3.0) if lo <= bpm * f <= hi]
    scores = tempo.comb_strength(env, np.array(readings))
    j = int(np.argmax(scores))
    return float(readings[j]) if scores[j] > TRIPLET_MARGIN * max(scores[0], 1e-9) else bpm


def _half_time(env: tempo.OnsetEnvelope, bpm: float) -> bool:
    """Whether a 4/4 reading at `bpm` counts two real bars as one: the onsets repeat every
    two of its beats as strongly as every four (a real bar repeats more strongly than half
    of one), and twice the tempo is still a plausible beat."""
    if 2 * bpm > TRIPLET_RANGE[1]:
        return False
    ac = tempo.autocorrelation(env)
    lag = 60.0 * env.frame_rate / bpm
    if 4 * lag >= ac.size - 1:
        return False
    two, four = (float(np.interp(k * lag, np.arange(ac.size), ac)) for k in (2, 4))
    return four > 0 and two >= HALF_BAR_RATIO * four


def beat_grid(x: np.ndarray, short: tempo.OnsetEnvelope) -> BeatGrid:
    """The beats of mono audio at SR (`short`: its onset envelope); InvalidRequest when there
    is no beat to cut on."""
    dur = x.size / SR
    env = tempo.tempo_envelope(x, SR)
    est = tempo.estimate_tempo(x, SR, env=env)
    est_bpm = _triplet_reading(env, est.bpm) if est.candidates else est.bpm
    if est.candidates and _half_time(env, est_bpm):
        est_bpm *= 2
    pulse = _pulse(env, est_bpm) if est.confidence > 0 or est.candidates else 0.0
    tracked = tempo.track_beats(x, SR, bpm=est_bpm, env=env) if pulse >= MIN_PULSE else None
    tracked = np.zeros(0) if tracked is None else tracked
    tracked = tracked[(tracked >= 0) & (tracked <= dur)]
    if tracked.size < MIN_BEATS:
        raise InvalidRequest(
            "the track has no steady beat to cut on (pulse clarity "
            f"{pulse:.2f}, {tracked.size} beats found; adapt needs a rhythmic track with bars)"
        )
    t0, period = _tune_grid(short, _grid_phase(tracked, 60.0 / est_bpm), 60.0 / est_bpm)
    beats, bpm = _straight(t0, period, dur), 60.0 / period
    steady = bool(np.all(np.abs(_local_offsets(short, t0, period)) <= STEADY_S))
    if not steady:  # the tempo moves: follow the tracked beats instead of a straight grid
        beats = _extend(_snap(short, tracked), dur)
        bpm = 60.0 * (beats.size - 1) / float(beats[-1] - beats[0])  # the mean: swing jitters
    return BeatGrid(beats[(beats >= 0) & (beats < dur)], float(bpm), steady, pulse, est_bpm)


def _frame_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per analysis frame: chroma, low/mid/high energy, all-band and low-band flux (the
    spectrogram is made in blocks: a long track's whole one would take gigabytes)."""
    freqs = np.fft.rfftfreq(FEAT_N_FFT, 1.0 / SR)
    sel = (freqs >= 55.0) & (freqs <= 5000.0)
    pc = np.mod(np.rint(69.0 + 12.0 * np.log2(freqs[sel] / 440.0)), 12).astype(int)
    to_chroma = np.zeros((freqs.size, 12), np.float32)
    to_chroma[np.nonzero(sel)[0], pc] = 1.0
    to_bands = np.stack(
        [(freqs >= lo) & (freqs < hi) for lo, hi in ((20, 150), (150, 2000), (2000, 11000))],
        axis=1,
    ).astype(np.float32)
    padded = np.pad(x.astype(np.float32), (FEAT_N_FFT // 2, FEAT_N_FFT // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, FEAT_N_FFT)[::FEAT_HOP]
    window = np.hanning(FEAT_N_FFT).astype(np.float32)
    chroma, bands = [], []
    for i in range(0, frames.shape[0], 1024):
        power = np.abs(np.fft.rfft(frames[i : i + 1024] * window, axis=1)) ** 2
        chroma.append(np.sqrt(power @ to_chroma))
        bands.append(power @ to_bands)
    band = np.concatenate(bands)
    logb = np.log1p(1e3 * band / max(band.max(), 1e-12))
    return {
        "chroma": np.concatenate(chroma),
        "bands": band / max(band.max(), 1e-12),
        "flux": np.maximum(0.0, np.diff(logb, axis=0, prepend=logb[:1])).sum(axis=1),
        "low_flux": np.maximum(0.0, np.diff(logb[:, 0], prepend=logb[0, 0])),
    }


def _beat_features(frames: dict[str, np.ndarray], beats: np.ndarray) -> dict[str, np.ndarray]:
    """Per beat: chroma (unit), low/mid/high level, onset and low-end onset at the beat."""
    fr = SR / FEAT_HOP
    last = frames["flux"].size - 1
    edges = np.append(beats, beats[-1] + np.median(np.diff(beats)))
    idx = np.clip(np.round(edges * fr).astype(int), 0, last)
    n = beats.size
    out = {k: np.zeros(s) for k, s in
           (("chroma", (n, 12)), ("level", (n, 3)), ("onset", n), ("low", n))}  # fmt: skip
    for i in range(n):
        a, b = idx[i], max(idx[i] + 1, idx[i + 1])
        c = frames["chroma"][a:b].mean(axis=0)
        out["chroma"][i] = c / (np.linalg.norm(c) + 1e-9)
        out["level"][i] = np.sqrt(frames["bands"][a:b].mean(axis=0))
        w = slice(max(0, a - 1), a + 3)
        out["onset"][i] = frames["flux"][w].max(initial=0.0)
        out["low"][i] = frames["low_flux"][w].max(initial=0.0)
    return out


def _z(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / (v.std() + 1e-9)


def _accent(feats: dict[str, np.ndarray]) -> np.ndarray:
    """Per beat: how much it sounds like a downbeat (harmony changes, the low end hits)."""
    c = feats["chroma"]
    change = np.concatenate([[0.0], 1.0 - np.sum(c[1:] * c[:-1], axis=1)])
    return _z(change) + _z(feats["low"]) + 0.5 * _z(feats["onset"])


def _contrast(score: np.ndarray, m: int) -> tuple[float, int]:
    """(contrast, phase): how much the best one beat in m stands out from the others."""
    contrasts = []
    for p in range(m):
        on = np.arange(score.size) % m == p
        contrasts.append(score[on].mean() - score[~on].mean() if on.any() and (~on).any() else 0)
    p = int(np.argmax(contrasts))
    return float(contrasts[p]), p


def downbeat_phase(feats: dict[str, np.ndarray], anchors: tuple[int, ...] = ()) -> tuple[int, int]:
    """(beats per bar, index of the first downbeat): the phase where harmony changes and the
    low end hits, with a vote for the beats where the music starts and ends (`anchors`, beat
    indices: most tracks start and end on a downbeat). 4/4 unless the 3-beat family (3, 6)
    is clearly stronger than the 4-beat one (4, 8)."""
    score = _accent(feats)
    threes = max(_contrast(score, 3)[0], _contrast(score, 6)[0])
    fours = max(_contrast(score, 4)[0], _contrast(score, 8)[0])
    m = 3 if threes > 1.3 * fours and threes > 0 else 4
    on = [np.arange(score.size) % m == p for p in range(m)]
    contrast = np.array([score[o].mean() - score[~o].mean() for o in on])
    vote = ANCHOR_VOTE * (contrast.max() - contrast.min())
    for beat in anchors:
        contrast[beat % m] += vote
    return m, int(np.argmax(contrast))


def double_time(feats: dict[str, np.ndarray], bpm: float) -> int | None:
    """The phase (0 or 1) of the real beats when the tracker counted eighth notes as beats (a
    slow track read at twice its tempo): downbeats then stand out once in 8 tracked beats
    much more than once in 4. None when the tempo stands."""
    if bpm < DOUBLE_TIME_MIN_BPM or feats["low"].size < DOUBLE_TIME_MIN_BEATS:
        return None
    score = _accent(feats)
    four, eight = _contrast(score, 4), _contrast(score, 8)
    return eight[1] % 2 if eight[0] > DOUBLE_TIME_RATIO * max(four[0], 1e-9) else None


def _bar_features(feats: dict[str, np.ndarray], m: int, first: int) -> np.ndarray:
    per_beat = np.concatenate([feats["chroma"], feats["level"]], axis=1)
    n = per_beat.shape[0]
    starts = np.arange(first, n, m)
    bars = np.zeros((starts.size, m * per_beat.shape[1]))
    for j, s in enumerate(starts):
        block = per_beat[s : min(n, s + m)]
        bars[j, : block.size] = block.ravel()
    return bars


def _phrase_offset(bar_features: np.ndarray) -> int:
    f = bar_features
    if f.shape[0] < 3 * PHRASE_BARS:
        return 0
    nov = np.zeros(f.shape[0])
    for j in range(2, f.shape[0] - 1):
        a, b = f[j - 2 : j].mean(axis=0), f[j : j + 2].mean(axis=0)
        nov[j] = np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b) + 1e-9)
    means = [nov[q::PHRASE_BARS].mean() for q in range(PHRASE_BARS)]
    q = int(np.argmax(means))
    return q if means[q] > 1.2 * np.mean(means) else 0


def _final_hit(x: np.ndarray, short: tempo.OnsetEnvelope) -> float:
    """The last onset that raises the level (an attack), not a flicker in the ring-out."""
    onsets, strength = tempo.onset_times(x, SR, env=short)
    w = int(0.05 * SR)
    for t, st in zip(onsets[::-1], strength[::-1], strict=True):
        i = int(t * SR)
        before = np.sqrt(np.mean(x[max(0, i - w) : max(1, i)] ** 2)) + 1e-9
        after = np.sqrt(np.mean(x[i : i + w] ** 2)) if i < x.size else 0.0
        if st >= 0.2 * np.percentile(strength, 90) and after > 1.4 * before:
            return float(t)
    return x.size / SR


def _first_sound(x: np.ndarray) -> float:
    level = np.abs(x)
    loud = np.nonzero(level > 1e-3 * max(level.max(), 1e-12))[0]
    return loud[0] / SR if loud.size else 0.0


def _off_beat(beats: np.ndarray, t: float) -> float:
    """How far `t` is from the nearest beat, in beats (0..0.5)."""
    return abs(_phase(beats, t))


def _phase(beats: np.ndarray, t: float) -> float:
    """Where `t` falls between beats, in beats: -0.5 (just after one) .. 0.5."""
    period = float(np.median(np.diff(beats)))
    return float(((t - beats[0]) / period + 0.5) % 1.0 - 0.5)


def _rephase(short: tempo.OnsetEnvelope, beats: np.ndarray, ends: tuple[float, float]):
    """A straight grid that sat on off-beats or swung upbeats (the start and the final hit
    both fall the same way between its beats) moved onto the start's and the end's beats;
    None when the grid stands."""
    a, b = (_phase(beats, t) for t in ends)
    agree = abs((a - b + 0.5) % 1.0 - 0.5) < REPHASE_AGREE
    if not (abs(a) > REPHASE_MIN and abs(b) > REPHASE_MIN and agree):
        return None
    period = float(np.median(np.diff(beats)))
    shift = (a + ((b - a + 0.5) % 1.0 - 0.5) / 2) * period
    t0, period = _tune_grid(short, float(beats[0]) + shift, period)
    return _straight(t0, period, short.strength.size / short.frame_rate), 60.0 / period


def analyse(audio: np.ndarray, sample_rate: int) -> Bars:
    """The bar grid of a track ((n,) or (n, channels) audio at any rate)."""
    x = to_analysis_rate(audio, sample_rate).astype(np.float64)
    short = tempo.onset_envelope(x, SR)
    grid = beat_grid(x, short)
    beats, bpm, steady = grid.beats, grid.bpm, grid.steady
    frames = _frame_features(x)
    feats = _beat_features(frames, beats)
    half = double_time(feats, bpm)
    if half is not None:
        beats, bpm = beats[half::2], bpm / 2
    last = _final_hit(x, short)
    ends = (_first_sound(x), last)
    moved = _rephase(short, beats, ends) if steady else None
    if moved is not None:
        beats, bpm = moved
    feats = _beat_features(frames, beats)
    anchors = tuple(int(np.argmin(np.abs(beats - t))) for t in ends if _off_beat(beats, t) < 0.15)
    m, first = downbeat_phase(feats, anchors)
    bar_features = _bar_features(feats, m, first)
    return Bars(
        bpm=bpm,
        beats_s=beats,
        beats_per_bar=m,
        first_downbeat=first,
        steady=steady,
        pulse=grid.pulse,
        measured_bpm=grid.measured_bpm,
        bar_features=bar_features,
        phrase_offset=_phrase_offset(bar_features),
        last_onset_s=last,
    )
