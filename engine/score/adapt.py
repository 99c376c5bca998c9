"""`vmb adapt` and the `adapt` job: a finished track made exactly S seconds long.

Whole bars and phrases are left out or played again (engine/score/adapt_plan.py) on the bar
grid measured on the track's own audio (engine/score/bars.py); each splice is a short
crossfade that ends just before a downbeat, lined up on the two sides' waveforms, so the
downbeat's attack plays whole and nothing clicks. The tempo is untouched (no time-stretch),
the track's own ending plays at the end (no fade), and the length is exact to the sample.
No model runs; the output says so, lists each edit and measures itself (length, tempo before
and after, the sample step at each splice against the music's own).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest, MediaError, quote
from engine.config import Settings, load_frozen
from engine.score.adapt_plan import BarPlan, Grid, Head, plan, run_samples

GUARD_S = 0.02  # a splice's crossfade ends this long before the downbeat
FADE_S = 0.03  # crossfade length
HEAD_FADE_S = 0.005  # de-click where the music enters mid-track (not a musical fade)
ALIGN_S = 0.01  # the two sides of a splice are lined up within +-10 ms
ALIGN_MIN_CORR = 0.5  # ... where their waveforms agree at least this well
LINEAR_MIN_CORR = 0.7  # sides this alike crossfade at equal gain, others at equal power
NEAR_TEMPO = 0.08  # the output's tempo is read within this of the track's (see measured_bpm)
SHORT_BARS = 8  # an output shorter than this many bars: its tempo reading is rough
TEMPO_NOTE_PCT = 1.0  # a measured change over this is noted
MAX_FACTOR = 10.0  # the target may be at most this many times the track
MAX_TRACK_S = 1800.0
MAX_NAME_CHARS = 64
MAX_POSITION_S = 172800.0  # two days of timeline (BWF counts samples from midnight)
BACKEND = "adapt"
REASON = "no model ran: whole bars of the track were left out or repeated on its own bar grid"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AdaptSpec:
    """The `adapt` job's parameters (wire names = field names)."""

    track: str
    duration_s: float | None = None
    clip: str | None = None
    name: str | None = None
    position_s: float = 0.0

    def to_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _probe_audio(path: str) -> tuple[float, int, int]:
    """(duration, rate, channels) of the track's audio; a file that is not media, or has no
    audio, is a bad request (refused before a job is accepted)."""
    from engine import media

    try:
        info = media.probe(path)
    except MediaError as exc:
        raise InvalidRequest(exc.message) from None
    if not info.has_audio:
        raise InvalidRequest(f"{quote(path)} has no audio stream: adapt needs a music track")
    return info.duration_s, info.audio_rate, info.audio_channels


def _target(spec: AdaptSpec) -> float:
    if (spec.duration_s is None) == (spec.clip is None):
        raise InvalidRequest("give exactly one of 'duration_s' (seconds) and 'clip' (a file)")
    if spec.duration_s is not None:
        return float(spec.duration_s)
    from engine import media

    clip = Path(spec.clip).expanduser()  # type: ignore[arg-type]
    if not clip.is_file():
        raise InvalidRequest(f"clip not found: {quote(str(spec.clip))}")
    try:  # a file that is not media is a bad request, as for the track
        return media.probe(clip).duration_s
    except MediaError as exc:
        raise InvalidRequest(exc.message) from None


def parse_adapt_params(params: dict[str, Any], settings: Settings) -> AdaptSpec:
    """Check everything that can be checked before the job is acknowledged."""
    given = {k: v for k, v in params.items() if v is not None}
    spec = load_frozen(AdaptSpec, given, "", InvalidRequest, "adapt parameter")
    track = Path(spec.track).expanduser()
    try:
        found = track.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise InvalidRequest(f"track not found: {quote(spec.track)}")
    if not 0 <= spec.position_s <= MAX_POSITION_S:
        raise InvalidRequest(
            f"'position_s' must be 0-{MAX_POSITION_S:g} s (a timeline position), "
            f"got {spec.position_s:g}"
        )
    target = _target(spec)
    if not target > 0:
        raise InvalidRequest(f"the target length must be positive, got {target:g} s")
    limit = settings.pipeline.max_cue_s
    if target > limit:
        raise InvalidRequest(
            f"target {target:g} s exceeds the maximum of {limit:g} s (pipeline.max_cue_s)"
        )
    length, _, _ = _probe_audio(str(track))
    if length > MAX_TRACK_S:
        raise InvalidRequest(
            f"the track lasts {length:.0f} s; adapt reads tracks of at most {MAX_TRACK_S:g} s"
        )
    if target > MAX_FACTOR * length:
        raise InvalidRequest(
            f"target {target:g} s is over {MAX_FACTOR:g}x the track ({length:.2f} s): "
            "repeating it that often would not be music any more"
        )
    name = spec.name or re.sub(r"[^A-Za-z0-9_-]+", "-", track.stem).strip("-")[:48] + "-adapted"
    if len(name) > MAX_NAME_CHARS or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise InvalidRequest(f"'name' may use 1-{MAX_NAME_CHARS} letters, digits, '-' and '_'")
    return replace(spec, track=str(track.resolve()), duration_s=target, clip=None, name=name)


def _grid(audio: np.ndarray, sr: int, bars: Any) -> Grid:
    n = audio.shape[0]
    level = np.abs(audio).max(axis=1)
    loud = np.nonzero(level > 1e-3 * max(level.max(), 1e-9))[0]
    downbeats = np.round(bars.downbeats_s * sr).astype(np.int64)
    final = int(np.searchsorted(bars.downbeats_s, bars.last_onset_s + 0.06, side="right")) - 1
    return Grid(
        downbeats=downbeats,
        beats=np.round(bars.beats_s * sr).astype(np.int64),
        final_bar=max(0, final),
        phrase_offset=bars.phrase_offset,
        distances=bars.distances(),
        n_samples=n,
        rate=sr,
        lead=int(loud[0]) if loud.size else n,
        guard=round(GUARD_S * sr),
        fade=round(FADE_S * sr),
    )


def _align(mono: np.ndarray, out_at: int, in_at: int, sr: int) -> tuple[int, float]:
    """(shift of the in-point, correlation): the in-side moved by up to ALIGN_S so its
    waveform lines up with the out-side's around the downbeat, where they agree."""
    from scipy.signal import correlate

    r, w1, w2 = round(ALIGN_S * sr), round(0.1 * sr), round(0.05 * sr)
    if out_at - w1 < 0 or in_at - r - w1 < 0 or max(out_at, in_at + r) + w2 > mono.size:
        return 0, 0.0
    ref = mono[out_at - w1 : out_at + w2]
    seg = mono[in_at - r - w1 : in_at + r + w2]
    c = correlate(seg, ref, mode="valid")
    energy = np.convolve(seg**2, np.ones(ref.size), mode="valid")
    norm = c / np.sqrt(np.maximum(energy * float(ref @ ref), 1e-18))
    j = int(np.argmax(norm))
    return (j - r, float(norm[j])) if norm[j] >= ALIGN_MIN_CORR else (0, float(norm[j]))


@dataclass(frozen=True)
class Splice:
    at: int  # output sample where the in-side's run starts (its crossfade ends here)
    in_src: int  # source sample of the downbeat that plays from here on (aligned)
    law: str  # the crossfade's


def _runs(grid: Grid, bar_plan: BarPlan, mono: np.ndarray) -> list[list[int]]:
    """Source sample ranges of the runs, each jump's in-side lined up with its out-side."""
    runs = [list(run_samples(grid, r, i == 0)) for i, r in enumerate(bar_plan.runs)]
    for i, jump in enumerate(bar_plan.jumps):
        out_at, in_at = int(grid.downbeats[jump.out_bar]), int(grid.downbeats[jump.in_bar])
        shift, _ = _align(mono, out_at, in_at, grid.rate)
        runs[i][1] = out_at - grid.guard
        runs[i + 1][0] = max(0, in_at + shift - grid.guard)
    return runs


def _crossfade(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, str]:
    t = (np.arange(a.shape[0]) + 0.5) / a.shape[0]
    den = np.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    corr = float(np.sum(a * b)) / den if den > 0 else 0.0
    if corr >= LINEAR_MIN_CORR:
        return a * (1 - t)[:, None] + b * t[:, None], "equal-gain"
    return a * np.cos(0.5 * np.pi * t)[:, None] + b * np.sin(0.5 * np.pi * t)[:, None], (
        "equal-power"
    )


def render(
    audio: np.ndarray, grid: Grid, bar_plan: BarPlan, head: Head, target: int
) -> tuple[np.ndarray, list[Splice], list[list[int]], Head]:
    """The adapted audio (exactly `target` samples), its splices, the source runs and the
    head as played."""
    runs = _runs(grid, bar_plan, audio.mean(axis=1))
    runs[0][0] = head.trim
    length = head.silence + sum(e - s for s, e in runs)
    if length != target:  # the alignment moved an in-point: the start takes up the difference
        less = min(head.silence, max(0, length - target))
        trim = max(0, head.trim + length - target - less)
        silence = target - (length - head.silence) - (head.trim - trim)
        head = Head(trim, silence, head.into_music or trim > grid.lead, head.cost)
        runs[0][0] = trim
    out = np.zeros((target, audio.shape[1]), np.float32)
    pos, splices, x = head.silence, [], grid.fade
    for i, (s, e) in enumerate(runs):
        if i:
            pre = audio[max(0, s - x) : s]  # before the track's start: silence
            pre = np.concatenate([np.zeros((x - pre.shape[0], audio.shape[1]), pre.dtype), pre])
            out[pos - x : pos], law = _crossfade(out[pos - x : pos], pre)
            splices.append(Splice(pos, s + grid.guard, law))
        out[pos : pos + e - s] = audio[s:e]
        pos += e - s
    if head.into_music:
        k = min(round(HEAD_FADE_S * grid.rate), target - head.silence)
        ramp = np.sin(0.5 * np.pi * (np.arange(k) + 0.5) / k) ** 2
        out[head.silence : head.silence + k] *= ramp[:, None].astype(np.float32)
    return out, splices, runs, head


def step_ratio(out: np.ndarray, at: int, fade: int, p999: float, sr: int) -> float:
    """The largest sample step around a splice (its crossfade and 1 ms either side) over the
    99.9th percentile of the music's own sample steps: above 1 would be a click."""
    margin = max(1, round(0.001 * sr))
    lo, hi = max(0, at - fade - margin), min(out.shape[0], at + margin)
    steps = np.abs(np.diff(out[lo:hi], axis=0)).max(initial=0.0)
    return float(steps / max(p999, 1e-12))


def sample_steps_p999(audio: np.ndarray) -> float:
    return float(np.percentile(np.abs(np.diff(audio, axis=0)).max(axis=1), 99.9))


def measured_bpm(audio: np.ndarray, sr: int, near: float) -> float:
    """The tempo of `audio` (engine/eval/tempo.py) within +-8% of `near`: the same music can
    read at half, double or two thirds of its tempo (the estimator's octave and triplet
    ambiguity), which is not a tempo change; a stretch of a few percent would still show."""
    from engine.eval import tempo
    from engine.retrieve.dsp import to_analysis_rate

    x = to_analysis_rate(audio, sr)
    lo, hi = near / (1 + NEAR_TEMPO), near * (1 + NEAR_TEMPO)
    return tempo.estimate_tempo(x, tempo.ANALYSIS_SR, prior_bpm=near, bpm_range=(lo, hi)).bpm


def _licence(track: str) -> str:
    """A VMB Score WAV keeps its own licence line; any other track stays under its terms."""
    from engine.score import bwf

    try:
        line = bwf.read(Path(track))["vmb"].get("licence")
    except Exception:  # not a WAV, or no VMB provenance: a user's track
        line = None
    if isinstance(line, str) and line:
        return f"{line} (adapted to length: bars left out or repeated, nothing added)"
    return "the source track's own terms apply: adapt only cut and repeated its audio"


def _edits(grid: Grid, bar_plan: BarPlan, splices: list[Splice], out: np.ndarray) -> list[dict]:
    sr, p999 = grid.rate, sample_steps_p999(out)
    edits = []
    for jump, sp in zip(bar_plan.jumps, splices, strict=True):
        a, b = sorted((int(grid.downbeats[jump.out_bar]), int(grid.downbeats[jump.in_bar])))
        edits.append(
            {
                "kind": jump.kind,
                "bars": jump.bars,
                "source_start_s": round(a / sr, 6),
                "source_end_s": round(b / sr, 6),
                "from_bar": jump.out_bar,
                "to_bar": jump.in_bar,
                "output_s": round((sp.at + grid.guard) / sr, 6),
                "crossfade_s": round(grid.fade / sr, 6),
                "crossfade": sp.law,
                "align_ms": round(1000 * (sp.in_src - int(grid.downbeats[jump.in_bar])) / sr, 3),
                "step_ratio": round(step_ratio(out, sp.at, grid.fade, p999, sr), 4),
            }
        )
    return edits


def _write(out: np.ndarray, path: Path, spec: AdaptSpec, sr: int, vmb: dict[str, Any]) -> Path:
    import soundfile as sf

    from engine.score import bwf
    from engine.util import atomic

    tmp = atomic.temp_path(path)
    sf.write(tmp, out, sr, subtype="PCM_24", format="WAV")
    provenance = bwf.Provenance(
        description=f"{Path(spec.track).name} adapted to {spec.duration_s:.3f} s by VMB Score",
        time_reference=round(spec.position_s * sr),
        sample_rate=sr,
        vmb=vmb,
        scene=path.stem,
        originator_reference=path.stem[:32],
    )
    return bwf.stamp(tmp, provenance, path)


def _decode(spec: AdaptSpec) -> tuple[np.ndarray, int, list[str]]:
    from engine import media

    _, rate, channels = _probe_audio(spec.track)
    notes = []
    if channels > 2:
        notes.append(f"the track's {channels} channels were mixed down to stereo")
    audio = media.decode_audio(spec.track, rate=rate, channels=1 if channels == 1 else 2)
    return audio.reshape(audio.shape[0], -1), rate, notes


def _tempo(bars: Any, out: np.ndarray, sr: int) -> dict[str, Any]:
    """The track's tempo and the output's, both measured on the audio, and the bar grid."""
    before = bars.measured_bpm
    after = measured_bpm(out, sr, near=before)
    return {
        "before_bpm": round(before, 3),
        "after_bpm": round(after, 3),
        "change_pct": round(100 * (after - before) / before, 3),
        "after_window_pct": round(100 * NEAR_TEMPO, 1),  # after_bpm is read this near before
        "grid_bpm": round(bars.bpm, 3),
        "beats_per_bar": bars.beats_per_bar,
        "bar_s": round(bars.bar_s, 6),
        "grid": "steady" if bars.steady else "tracked",
        "first_downbeat_s": round(float(bars.downbeats_s[0]), 6),
        "pulse": round(bars.pulse, 3),
    }


def _head_notes(grid: Grid, head: Head) -> list[str]:
    """What the start did to absorb what whole bars could not."""
    sr, notes = grid.rate, []
    if head.trim > grid.lead:
        notes.append(
            f"the start left out {(head.trim - grid.lead) / sr:.2f} s of the track's music: it "
            "enters on a beat"
        )
    if head.silence:
        beats = head.silence / grid.beat
        notes.append(
            f"{head.silence / sr:.3f} s of silence ({beats:.2f} beat) was added before the "
            "music enters, so that it lands on its beat"
        )
    return notes


def _tempo_notes(bars: Any, tempo: dict[str, Any], seconds: float) -> list[str]:
    """Where the before/after tempo figure cannot be taken at face value."""
    notes = []
    n_bars = seconds / bars.bar_s
    if n_bars < SHORT_BARS:
        notes.append(
            f"the output lasts {n_bars:.1f} bars: too short to measure its tempo reliably "
            "(after_bpm and change_pct are rough)"
        )
    if abs(tempo["change_pct"]) > TEMPO_NOTE_PCT:
        notes.append(
            f"the tempo measured on the output differs by {tempo['change_pct']:+.2f}% from the "
            "track's: nothing was stretched (whole bars were cut or repeated), so this is the "
            "estimator reading different material"
        )
    return notes


def _ends(grid: Grid, head: Head, runs: list[list[int]], target: int) -> dict[str, Any]:
    """How the start took up the remainder, and where the track's own ending plays."""
    sr, n, final = grid.rate, grid.n_samples, int(grid.downbeats[grid.final_bar])
    return {
        "head": {
            "trimmed_s": round(head.trim / sr, 6),
            "silence_s": round(head.silence / sr, 6),
            "enters_on_beat": head.into_music,
        },
        "ending": {
            "final_downbeat_source_s": round(final / sr, 6),
            "final_downbeat_output_s": round((target - (n - final)) / sr, 6),
            "identical_s": round((runs[-1][1] - runs[-1][0]) / sr, 6),
        },
    }


def adapt_track(spec: AdaptSpec, out_dir: Path, progress: Progress) -> dict[str, Any]:
    """Analyse, plan, render and write the adapted track; the result lists every edit and
    the figures measured on the written audio."""
    import soundfile as sf

    from engine.score import bars as bar_grid

    progress("analyse", 0, 3)
    audio, sr, notes = _decode(spec)
    bars = bar_grid.analyse(audio, sr)
    grid = _grid(audio, sr, bars)
    progress("plan", 1, 3)
    target = round(float(spec.duration_s or 0.0) * sr)
    bar_plan, head, plan_notes = plan(grid, target)
    progress("render", 2, 3)
    out, splices, runs, head = render(audio, grid, bar_plan, head, target)
    edits, tempo = _edits(grid, bar_plan, splices, out), _tempo(bars, out, sr)
    licence = _licence(spec.track)
    out_dir.mkdir(parents=True, exist_ok=True)
    vmb = {"kind": "adapt", "backend": BACKEND, "weights": "none", "source": spec.track,
           "target_s": spec.duration_s, "edits": edits, "tempo": tempo, "licence": licence,
           "adapt_request": spec.to_params()}  # fmt: skip
    path = _write(out, out_dir / f"{spec.name}.wav", spec, sr, vmb)
    written = sf.info(str(path)).frames
    progress("render", 3, 3)
    return {
        "files": {"audio": path.name},
        "audio": str(path),
        "backend": BACKEND,
        "weights": "none",
        "backend_reason": REASON,
        "track": spec.track,
        "sample_rate": sr,
        "channels": out.shape[1],
        "target_s": spec.duration_s,
        "length_samples": written,
        "length_error_samples": int(written - target),
        "duration_s": round(written / sr, 6),
        "source": {"duration_s": round(grid.n_samples / sr, 6), "samples": grid.n_samples},
        "tempo": tempo,
        "edits": edits,
        **_ends(grid, head, runs, target),
        "notes": notes
        + plan_notes
        + _head_notes(grid, head)
        + _tempo_notes(bars, tempo, out.shape[0] / sr),
        "licence": licence,
    }
