"""The draft generator: symbolic arrangement -> MIDI -> FluidSynth -> exact-length, loudness-
normalised stereo WAV (+ the MIDI, editable in REAPER). CPU only, no downloaded weights.

Conditioning: the description's attributes (mood, genre, tempo, energy, instruments, key/mode),
the retrieved reference's tempo (and key, when its mode agrees), the cue length and the scene
cuts. All randomness comes from ``np.random.default_rng(request.seed)``: the same request gives
the same bytes.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.errors import InvalidRequest
from engine import taxonomy
from engine.config import DraftConfig
from engine.generate.draft import finish
from engine.generate.draft import style as st
from engine.generate.draft.arrangement import ArrangeInput, Arrangement
from engine.generate.draft.arranger import compose
from engine.generate.draft.form import CYCLES, fit_tempo
from engine.generate.draft.midi import MAX_DURATION_S, midi_bytes, part_files
from engine.generate.draft.render import find_soundfont, render_midi, renderer
from engine.generate.draft.theory import key_name, parse_key
from engine.generate.draft.voicecost import split_parts
from engine.generate.loudness import normalise_loudness
from engine.score.wavchunks import add_loop_points
from engine.types import (
    Attributes,
    GeneratedAudio,
    GenerationRequest,
    ProgressFn,
    Reference,
    no_progress,
)
from engine.util.atomic import fsync_dir, fsync_file

# FluidSynth renders the parts in two threads (two cores) and the halves are summed. Fixed,
# not os.cpu_count(): the split changes the last bits of the mix, and the same seed must give
# the same bytes on every machine.
RENDER_SPLIT = 2
END_FADE_S = 0.08  # the last reverb tail is trimmed under this fade
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


def _fold_into_bucket(bpm: float, bucket: str) -> float | None:
    """The octave of ``bpm`` (x1, x2, /2) that lies in ``bucket``; None if none does."""
    lo, hi = taxonomy.TEMPO_BUCKETS[bucket]
    for cand in (bpm, bpm * 2.0, bpm / 2.0):
        if lo <= cand < hi:
            return cand
    return None


def _references(request: GenerationRequest) -> list[tuple[str, Reference]]:
    return [("reference:targeted", r) for r in request.retrieval.targeted[:1]] + [
        ("reference:broad", r) for r in request.retrieval.broad[:1]
    ]


def choose_tempo(request: GenerationRequest) -> tuple[float, str]:
    """Attributes.bpm wins; else the retrieved reference's BPM (folded by octaves into the asked
    bucket) when it suits the mood and genre; else a tempo drawn inside the bucket by mood and
    genre (seeded). Returns (bpm, source)."""
    attrs = request.description.attributes
    bucket = taxonomy.normalise_tempo(attrs.tempo_bucket)[0]
    if attrs.bpm is not None:
        bpm = float(attrs.bpm)
        if not math.isfinite(bpm) or not (taxonomy.MIN_BPM <= bpm <= taxonomy.MAX_BPM):
            raise InvalidRequest(
                f"tempo {attrs.bpm!r} BPM is impossible; use {taxonomy.MIN_BPM:g}-"
                f"{taxonomy.MAX_BPM:g} BPM or a bucket ({', '.join(taxonomy.TEMPO_BUCKETS)})"
            )
        return bpm, "attributes"
    mood = taxonomy.normalise_mood(attrs.mood)
    genre = taxonomy.normalise_genre(attrs.genre)
    lo, hi, centre = st.tempo_window(bucket, mood, genre)
    for source, ref in _references(request):
        if ref.bpm is None or not math.isfinite(ref.bpm) or ref.bpm <= 0:
            continue
        folded = _fold_into_bucket(float(ref.bpm), bucket)
        if folded is not None and abs(folded / centre - 1.0) <= st.REFERENCE_TOLERANCE:
            return round(folded, 2), source
    # drawn by mood and genre, seeded apart from the composition's generator
    rng = np.random.default_rng([int(request.seed) & 0xFFFFFFFF, 19])
    bpm = centre + float(rng.uniform(-1.0, 1.0)) * st.TEMPO_SPREAD * (hi - lo)
    return float(round(min(hi, max(lo, bpm)))), "mood+genre"


def choose_key(
    request: GenerationRequest, mood: str, rng: np.random.Generator
) -> tuple[int, str, str, list[str]]:
    """(tonic pc, mode, source, warnings). Attributes.key/mode win, then a reference's tonic
    when its mode agrees with ours, then the mood's key pool (seeded)."""
    attrs = request.description.attributes
    warnings: list[str] = []
    mood_style = st.MOODS[mood]
    parsed = parse_key(attrs.key) if attrs.key else None
    if attrs.key and parsed is None:
        warnings.append(f"ignored unreadable key {attrs.key!r}")
    mode = attrs.mode.lower() if attrs.mode else None
    if mode is not None and mode not in ("major", "minor"):
        warnings.append(f"ignored unknown mode {attrs.mode!r}")
        mode = None
    if mode is None and parsed is not None and parsed[1] is not None:
        mode = parsed[1]
    mode = mode or mood_style.mode
    # one draw whatever path is taken, so later random choices do not depend on the key source
    pool_pick = mood_style.keys[int(rng.integers(len(mood_style.keys)))]
    if parsed is not None:
        return parsed[0], mode, "attributes", warnings
    for source, ref in _references(request):
        ref_key = parse_key(ref.key) if ref.key else None
        if ref_key is None:
            continue
        ref_mode = (ref.mode or ref_key[1] or "").lower() or None
        if ref_mode in (None, mode):
            return ref_key[0], mode, source, warnings
    parsed_pool = parse_key(pool_pick)
    assert parsed_pool is not None
    return parsed_pool[0], mode, "mood", warnings


def _validate(request: GenerationRequest, max_duration_s: float) -> tuple[float, ...]:
    d = request.duration_s
    if not isinstance(d, int | float) or not math.isfinite(d) or d <= 0:
        raise InvalidRequest(f"cue duration must be a positive number of seconds, got {d!r}")
    if d > max_duration_s:
        raise InvalidRequest(
            f"cue duration {d:g} s is longer than the maximum {max_duration_s:g} s"
        )
    sr = request.sample_rate
    if not isinstance(sr, int) or not (8000 <= sr <= 192000):
        raise InvalidRequest(f"sample rate must be 8000-192000 Hz, got {sr!r}")
    if round(d * sr) < 1:
        raise InvalidRequest(f"cue duration {d:g} s is shorter than one sample")
    if not _NAME_RE.match(request.name or "") or request.name in (".", ".."):
        raise InvalidRequest(
            f"output name {request.name!r} must be 1-128 letters, digits, '.', '_', '-' or spaces"
        )
    return _times(request.cut_times_s, d, "scene cut")


def _times(times: tuple[float, ...], duration_s: float, what: str) -> tuple[float, ...]:
    """Hit times inside the cue, sorted, once each."""
    out = []
    for c in times:
        if not isinstance(c, int | float) or not math.isfinite(c):
            raise InvalidRequest(f"{what} times must be numbers of seconds, got {c!r}")
        if 0.0 < c < duration_s:
            out.append(float(c))
    return tuple(sorted(set(out)))


def _normalise_attributes(attrs: Attributes) -> tuple[str, str, str, tuple[str, ...]]:
    mood = taxonomy.normalise_mood(attrs.mood)
    genre = taxonomy.normalise_genre(attrs.genre)
    energy = taxonomy.normalise_energy(attrs.energy)
    instruments = taxonomy.normalise_instruments(tuple(attrs.instruments))
    return mood, genre, energy, instruments


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Exactly ``num_samples``: trim the render's tail or pad with silence."""
    n = audio.shape[0]
    if n >= num_samples:
        return audio[:num_samples].copy()
    out = np.zeros((num_samples, audio.shape[1]), dtype=audio.dtype)
    out[:n] = audio
    return out


def fade_end(audio: np.ndarray, sample_rate: int, fade_s: float = END_FADE_S) -> np.ndarray:
    """A short raised-cosine fade over the last samples: the reverb tail that runs past the
    cue is cut without a click (the held chord has already faded through CC11)."""
    fade = min(audio.shape[0], max(1, int(fade_s * sample_rate)))
    ramp = 0.5 * (1.0 + np.cos(np.linspace(0.0, math.pi, fade, dtype=np.float64)))
    audio[-fade:] *= ramp[:, None].astype(audio.dtype)
    return audio


def _carry(raw: object) -> tuple[dict[str, object] | None, str | None]:
    """The form position and motifs a previous cue carried, checked (they come from clients):
    anything malformed is ignored with a warning rather than failing the cue."""
    if not isinstance(raw, dict) or not isinstance(raw.get("carry"), dict):
        return None, None
    carry = raw["carry"]
    try:
        li = int(carry.get("label_index", 0))
        cycle = carry.get("form_cycle")  # absent in carries from before it existed
        cycle = None if cycle is None else int(cycle) % len(CYCLES)
        motifs = {}
        for key, m in (carry.get("motifs") or {}).items():
            rhythm = [(int(a), int(b)) for a, b in m["rhythm"]]
            contour = [int(x) for x in m["contour"]]
            if not rhythm or len(contour) != len(rhythm) - 1 or len(rhythm) > 16:
                raise ValueError("motif shape")
            if not all(0 <= a < 16 and 1 <= b <= 16 for a, b in rhythm):
                raise ValueError("motif steps")
            motifs[str(key)[:8]] = {"rhythm": rhythm, "contour": contour,
                                    "variation": int(m["variation"]) % 3}  # fmt: skip
    except (TypeError, ValueError, KeyError, AttributeError):
        return None, "ignored an unreadable 'carry' in continue_from"
    return {"label_index": max(0, min(li, 1000)), "form_cycle": cycle, "motifs": motifs}, None


def _last_chord(arr: Arrangement) -> str | None:
    chord = arr.bars[-1].chord if arr.bars else None
    return chord.symbol if chord is not None else None


def _facts(
    arr: Arrangement, spec: ArrangeInput, seed: int, tempo_source: str, key_source: str
) -> dict[str, object]:
    """What the composer did, for ``extra``: tempo, key, band, form, hits, and the carry a
    continuing cue picks up."""
    return {
        "bpm": round(spec.bpm, 3),
        "tempo_source": tempo_source,
        "key": key_name(spec.tonic, spec.mode),
        "mode": spec.mode,
        "key_source": key_source,
        "mood": spec.mood,
        "genre": spec.genre,
        "energy": spec.energy,
        "programs": [p.to_json() for p in arr.parts],
        "sections": [s.to_json(arr) for s in arr.sections],
        "cuts": list(arr.cut_hits),
        "tempo_map": [{"start_s": round(t.start_s, 6), "bpm": round(t.bpm, 4)} for t in arr.tempo],
        "notes": len(arr.notes),
        "seed": seed,
        "ending": "loop" if spec.loop else spec.ending,
        "carry": {
            "label_index": arr.label_index,
            "form_cycle": arr.form_cycle,
            "motifs": arr.motifs,
            "genre": spec.genre,
            "last_chord": _last_chord(arr),
        },
    }


class DraftGenerator:
    """engine.types.Generator for the draft backend."""

    def __init__(self, config: DraftConfig | None = None, max_duration_s: float = MAX_DURATION_S):
        self.config = config or DraftConfig()
        self.max_duration_s = float(max_duration_s)

    def arrange(self, request: GenerationRequest) -> tuple[Arrangement, dict[str, object]]:
        """Validate and compose (no files). Returns the arrangement and the facts for ``extra``."""
        cuts = _validate(request, self.max_duration_s)
        attrs = request.description.attributes
        mood, genre, energy, instruments = _normalise_attributes(attrs)
        bpm, tempo_source = choose_tempo(request)
        rng = np.random.default_rng(request.seed)
        tonic, mode, key_source, warnings = choose_key(request, mood, rng)
        ending = finish.check_ending(request.ending)
        duration = float(request.duration_s)
        markers = _times(request.marker_times_s, duration, "marker")
        loop_facts: dict[str, object] | None = None
        if request.loop:
            duration, loop_facts = self._loop_length(duration, bpm)
            cuts = markers = ()  # a loop has no picture to hit
        carry, carry_warning = _carry(request.continue_from)
        if carry_warning:
            warnings.append(carry_warning)
        frame_rate = request.frame_rate
        if not isinstance(frame_rate, int | float) or not (1.0 <= frame_rate <= 240.0):
            raise InvalidRequest(f"frame rate must be 1-240 frames per second, got {frame_rate!r}")
        fit = None
        if tempo_source != "attributes" and not (cuts or markers or request.loop or carry):
            bounds = st.BUCKET_TEMPO[taxonomy.normalise_tempo(attrs.tempo_bucket)[0]]
            fit_rng = np.random.default_rng([int(request.seed) & 0xFFFFFFFF, 23])
            fit = fit_tempo(duration, bpm, ending, bounds, 1.0 / float(frame_rate), fit_rng)
        spec = ArrangeInput(
            duration_s=duration, bpm=fit.bpm if fit else bpm, tonic=tonic, mode=mode,
            genre=genre, mood=mood, energy=energy, instruments=instruments, cuts=cuts,
            markers=markers, ending=ending, loop=bool(request.loop), carry=carry,
            frame_s=1.0 / float(frame_rate), form_plan=(fit.intro, fit.bars) if fit else None,
        )  # fmt: skip
        arr = compose(spec, rng)
        facts = _facts(arr, spec, request.seed, tempo_source, key_source)
        if fit is not None:
            facts["tempo_fit"] = fit.to_json()
        if loop_facts:
            facts["loop"] = loop_facts
        if warnings:
            facts["warnings"] = warnings
        return arr, facts

    def _loop_length(self, duration: float, bpm: float) -> tuple[float, dict[str, object]]:
        """A loop's length in whole bars (one bar fewer when rounding up passed the limit),
        and the facts that say so."""
        asked = duration
        duration, bars = finish.loop_duration(duration, bpm)
        if duration > self.max_duration_s and bars > 1:  # rounded up past the limit
            duration, bars = duration * (bars - 1) / bars, bars - 1
        note = f"length rounded to {bars} whole bars: {duration:.3f} s"
        return duration, {"bars": bars, "asked_s": asked, "duration_s": round(duration, 6),
                          "note": note}  # fmt: skip

    def _render(
        self, arr: Arrangement, whole: bytes, soundfont: Path, sr: int, stems: bool, loop: bool
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The mix (and each stem's audio) from the arrangement's MIDI file ``whole``. A loop
        renders its arrangement twice and keeps the second pass, whose start holds the tails
        of the end (finish.doubled)."""
        if loop:
            whole = midi_bytes(finish.doubled(arr))
        n = int(round(arr.duration_s * sr))
        frames = 2 * n if loop else n  # rendering stops there (the MIDI runs a tail longer)
        with tempfile.TemporaryDirectory(prefix="vmb-split-") as split_dir:
            if stems:
                groups = finish.stem_groups(arr)
                audios = finish.render_groups(
                    whole, list(groups.values()), soundfont, sr, Path(split_dir), frames
                )
                parts = dict(zip(groups, audios, strict=True))
                audio = np.sum(audios, axis=0, dtype=np.float32)
            else:
                parts = {}
                paths = []
                for i, data in enumerate(part_files(whole, split_parts(arr, RENDER_SPLIT))):
                    paths.append(Path(split_dir) / f"part{i}.mid")
                    paths[-1].write_bytes(data)
                audio = render_midi(paths, soundfont, sr, frames=frames)
        if loop:
            audio = fit_length(audio, 2 * n)[n:]
            parts = {k: fit_length(v, 2 * n)[n:] for k, v in parts.items()}
        return audio, parts

    def _finish(
        self,
        audio: np.ndarray,
        stems: dict[str, np.ndarray],
        arr: Arrangement,
        sr: int,
        num_samples: int,
        extra: dict[str, object],
    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
        """Exact length, the loop layer, the ending's envelope, loudness: on the mix, and
        the same gains on every stem (so the stems still sum to the mix)."""
        audio = fit_length(audio, num_samples)
        stems = {k: fit_length(v, num_samples) for k, v in stems.items()}
        if self.config.layer_loops and self.config.use_system_samples:
            from engine.generate.draft.loops import layer_loop

            if extra.get("ending") == "loop":  # the layer plays through the wrap too
                twice = np.concatenate([audio, audio])
                looped, loop_info = layer_loop(twice, finish.doubled(arr), sr)
                looped = looped[num_samples:]
            else:
                looped, loop_info = layer_loop(audio, arr, sr)
            if loop_info:
                extra["loops"] = loop_info
                if stems:
                    stems["loops"] = (looped - audio).astype(np.float32)
                audio = looped
        env = finish.end_envelope(num_samples, sr, str(extra.get("ending", "ring")))
        if env is not None:
            audio = audio * env[:, None]
            stems = finish.apply_gain(stems, env)
        before = audio
        audio, loud = normalise_loudness(
            audio, sr, self.config.loudness_lufs, self.config.true_peak_dbtp
        )
        if stems:
            stems = finish.apply_gain(stems, finish.gain_of(before, audio))
        return audio, stems, loud

    def generate(
        self, request: GenerationRequest, progress: ProgressFn = no_progress
    ) -> GeneratedAudio:
        t0 = time.perf_counter()
        progress("generate", 0, 3)
        arr, extra = self.arrange(request)
        soundfont = find_soundfont(self.config.soundfont)
        t_arrange = time.perf_counter()
        progress("generate", 1, 3)
        sr = request.sample_rate
        num_samples = int(round(arr.duration_s * sr))
        out_dir = Path(request.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        wav_path = out_dir / f"{request.name}.wav"
        mid_path = out_dir / f"{request.name}.mid"
        with _temp_files(out_dir, request.name) as temp:
            mid_tmp = temp(".tmp.mid")
            whole = midi_bytes(arr, loop_markers=request.loop)
            mid_tmp.write_bytes(whole)  # and the parts' files are cut from it
            audio, stems = self._render(arr, whole, soundfont, sr, request.stems, request.loop)
            t_render = time.perf_counter()
            progress("generate", 2, 3)
            audio, stems, loud = self._finish(audio, stems, arr, sr, num_samples, extra)
            t_post = time.perf_counter()
            progress("generate", 3, 3)
            stem_paths = _write_outputs(
                temp, request, (mid_tmp, mid_path), wav_path, audio, stems, num_samples
            )
        if request.stems:
            extra["stems"] = {k: str(v) for k, v in stem_paths.items()}
        t_end = time.perf_counter()
        extra.update(
            soundfont=str(soundfont),
            renderer=renderer(),  # libfluidsynth in process, else the fluidsynth CLI
            loudness_lufs=round(float(loud["lufs"]), 2),
            true_peak_dbtp=round(float(loud["true_peak_dbtp"]), 2),
            timings_s={
                "arrange": round(t_arrange - t0, 4),
                "render": round(t_render - t_arrange, 4),
                "post": round(t_post - t_render, 4),
                "write": round(t_end - t_post, 4),
                "total": round(t_end - t0, 4),
            },
        )
        return GeneratedAudio(
            audio_path=wav_path,
            num_samples=num_samples,
            sample_rate=sr,
            backend="draft",
            weights="none",
            midi_path=mid_path,
            extra=extra,
        )


def _write_outputs(
    temp: Callable[[str], Path],
    request: GenerationRequest,
    midi: tuple[Path, Path],
    wav_path: Path,
    audio: np.ndarray,
    stems: dict[str, np.ndarray],
    num_samples: int,
) -> dict[str, Path]:
    """The WAV and stems written to temp files, then every output (the MIDI already written
    to ``midi[0]``) renamed into place together: a failure leaves no half-written file."""
    sr = request.sample_rate
    out_dir = wav_path.parent
    outputs = [midi, (temp(".tmp.wav"), wav_path)]
    sf.write(str(outputs[1][0]), audio, sr, subtype="PCM_24", format="WAV")
    stem_paths: dict[str, Path] = {}
    for stem, data in stems.items():
        stem_paths[stem] = out_dir / f"{request.name}-{stem}.wav"
        outputs.append((temp(".tmp.wav"), stem_paths[stem]))
        sf.write(str(outputs[-1][0]), data, sr, subtype="PCM_24", format="WAV")
    if request.loop:
        for tmp_path, _ in outputs[1:]:
            add_loop_points(tmp_path, sr, num_samples)
    for tmp_path, _ in outputs:
        os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; hosts read these as normal files
        fsync_file(tmp_path)
    for tmp_path, final_path in outputs:
        os.replace(tmp_path, final_path)
    fsync_dir(out_dir)
    return stem_paths


@contextlib.contextmanager
def _temp_files(out_dir: Path, name: str) -> Iterator[Callable[[str], Path]]:
    """Hands out temp files beside the outputs; those not renamed into place by the end of
    the block (an error, a cancel) are deleted, so no half-written file is left."""
    temps: list[Path] = []

    def temp(suffix: str) -> Path:
        fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=suffix)
        os.close(fd)
        temps.append(Path(tmp_name))
        return Path(tmp_name)

    try:
        yield temp
    finally:
        for path in temps:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
