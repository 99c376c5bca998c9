"""Optional CC0 loop layer (Debian's sonic-pi-samples) under the draft's grooves.

A loop is fitted to the cue's tempo (resampling for small changes, beat slicing at its onsets
for larger ones, choosing how many beats the loop spans so the change stays small), placed on
bar lines in every section where the drums play, and mixed well under the band.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Arrangement

SAMPLES_DIR = Path("/usr/share/sonic-pi/samples")
LOOP_LEVEL = 0.35  # loop RMS relative to the band's RMS where it plays
TEXTURE_LEVEL = 0.08
MAX_STRETCH_OCTAVES = 1.0  # beat slicing copes with half or double speed
RESAMPLE_OCTAVES = 0.08  # below about a semitone, plain resampling is transparent


def _read(path: Path, sample_rate: int) -> np.ndarray | None:
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError):
        return None
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    audio = audio[:, :2]
    if sr != sample_rate:
        frac = Fraction(sample_rate, sr).limit_denominator(1000)
        audio = signal.resample_poly(audio, frac.numerator, frac.denominator, axis=0)
    return audio.astype(np.float32)


def _resample_to(audio: np.ndarray, n_out: int) -> np.ndarray:
    frac = Fraction(n_out, audio.shape[0]).limit_denominator(2000)
    out = signal.resample_poly(audio, frac.numerator, frac.denominator, axis=0)
    if out.shape[0] >= n_out:
        return out[:n_out]
    return np.pad(out, ((0, n_out - out.shape[0]), (0, 0)))


def _stretch(audio: np.ndarray, n_out: int, sample_rate: int) -> np.ndarray:
    """Exactly ``n_out`` samples. Small changes resample (a sampler's speed change); larger
    ones slice the loop at its onsets and move each slice to its new time (beat slicing), so
    drums keep their pitch and attack; slowed-down slices end in silence, sped-up ones are
    cut with a short fade."""
    n_in = audio.shape[0]
    ratio = n_out / n_in
    if abs(math.log2(ratio)) <= RESAMPLE_OCTAVES:
        return _resample_to(audio, n_out).astype(np.float32)
    from engine.eval.tempo import onset_times

    times, _ = onset_times(audio, sample_rate)
    cuts = sorted({0, *(int(round(t * sample_rate)) for t in times if 0 < t * sample_rate < n_in)})
    out = np.zeros((n_out, audio.shape[1]), dtype=np.float32)
    fade = int(0.005 * sample_rate)
    for i, start in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else n_in
        dst = int(round(start * ratio))
        dst_end = int(round(end * ratio)) if i + 1 < len(cuts) else n_out
        length = min(end - start, dst_end - dst, n_out - dst)
        if length <= 0:
            continue
        piece = audio[start : start + length].astype(np.float32, copy=True)
        if length < end - start and length > fade:  # cut short: fade the cut
            piece[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        out[dst : dst + length] += piece
    return out


def _beats_in_loop(length_s: float, bpm: float) -> int | None:
    best = None
    for beats in (2, 4, 8, 16, 32):
        ratio = math.log2((60.0 * beats / length_s) / bpm)
        if abs(ratio) <= MAX_STRETCH_OCTAVES and (best is None or abs(ratio) < best[1]):
            best = (beats, abs(ratio))
    return best[0] if best else None


def _place(raw: np.ndarray, beats: int, arr: Arrangement, like: np.ndarray, sample_rate: int):
    """The loop laid on bar lines through every section where the drums play, stretched to
    the tempo there (a layer shaped like ``like``); returns (layer, copies placed)."""
    layer = np.zeros_like(like)
    n = like.shape[0]
    placed = 0
    stretched: dict[int, np.ndarray] = {}
    for sec in arr.sections:
        if sec.label in ("intro", "end") or sec.intensity < 0.5:
            continue
        first, last = arr.bars[sec.bars[0]], arr.bars[sec.bars[-1]]
        b, end_b = first.start, last.start + last.beats
        while b < end_b - 1e-6:
            t0 = arr.time_of(b)
            t1 = arr.time_of(min(b + beats, end_b))
            full = arr.time_of(b + beats) - t0
            n_full = max(1, int(round(full * sample_rate)))
            if n_full not in stretched:
                stretched[n_full] = _stretch(raw, n_full, sample_rate)
            seg = stretched[n_full]
            i0 = int(round(t0 * sample_rate))
            m = min(int(round((t1 - t0) * sample_rate)), n - i0, seg.shape[0])
            if m <= 0:
                break
            piece = seg[:m].copy()
            fade = min(m, int(0.01 * sample_rate))
            piece[m - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
            layer[i0 : i0 + m] += piece
            placed += 1
            b += beats
    return layer, placed


def _add_loop(out, arr: Arrangement, sample_rate: int, samples_dir: Path, band_rms: float):
    """Mix the genre's first usable loop into ``out`` (in place); returns its facts or None."""
    for stem in st.LOOPS.get(arr.genre, ()):
        raw = _read(samples_dir / f"{stem}.flac", sample_rate)
        if raw is None or raw.shape[0] == 0:
            continue
        beats = _beats_in_loop(raw.shape[0] / sample_rate, arr.bpm)
        if beats is None:
            continue
        layer, placed = _place(raw, beats, arr, out, sample_rate)
        if placed == 0:
            continue
        active = np.abs(layer).max(axis=1) > 0
        loop_rms = float(np.sqrt(np.mean(layer[active] ** 2))) if active.any() else 0.0
        ref_rms = float(np.sqrt(np.mean(out[active] ** 2))) if active.any() else band_rms
        if loop_rms > 0:
            out += layer * (LOOP_LEVEL * ref_rms / loop_rms)
            return {"sample": f"{stem}.flac", "beats": beats, "copies": placed,
                    "licence": "CC0 (sonic-pi-samples)"}  # fmt: skip
        return None
    return None


def layer_loop(
    audio: np.ndarray, arr: Arrangement, sample_rate: int, samples_dir: Path = SAMPLES_DIR
) -> tuple[np.ndarray, dict[str, object] | None]:
    """Mix a tempo-matched loop (and, for lofi, a vinyl texture) into ``audio``."""
    info: dict[str, object] = {}
    out = audio.astype(np.float32, copy=True)
    n = out.shape[0]
    band_rms = float(np.sqrt(np.mean(out**2))) if n else 0.0
    loop = _add_loop(out, arr, sample_rate, samples_dir, band_rms)
    if loop:
        info["loop"] = loop
    texture = st.TEXTURES.get(arr.genre)
    if texture:
        raw = _read(samples_dir / f"{texture}.flac", sample_rate)
        if raw is not None and raw.shape[0] > 0 and band_rms > 0:
            reps = int(math.ceil(n / raw.shape[0]))
            tex = np.tile(raw, (reps, 1))[:n]
            tex_rms = float(np.sqrt(np.mean(tex**2)))
            if tex_rms > 0:
                out += tex * (TEXTURE_LEVEL * band_rms / tex_rms)
                info["texture"] = {"sample": f"{texture}.flac", "licence": "CC0 (sonic-pi-samples)"}
    return out, (info or None)
