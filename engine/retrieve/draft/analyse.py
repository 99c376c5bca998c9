"""One library file -> a PieceAnalysis: DSP (or MIDI) features, tags and the text to embed.

Tags come from three places, in order of trust: the file's own metadata (genre/title),
its name and folders (sonic-pi's `loop_`, `ambi_`, `bass_` families, plus any taxonomy
word), and DSP (tempo bucket, mode -> mood hints, percussive/sustained -> instrument,
energy). A BPM or key written in the name (`loop_drone_g_97`, `bass_dnb_f`, `funk_96bpm`)
beats the measured one: the author knew.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import InvalidRequest, MediaError
from engine import taxonomy
from engine.retrieve import dsp

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
MIDI_EXTENSIONS = (".mid", ".midi")
MAX_ANALYSIS_S = 120.0  # enough for tempo/key/level of a song; bounds time per file
FACETS = ("tempo", "genre", "mood", "instrument", "energy")


@dataclass(frozen=True)
class PieceAnalysis:
    path: str
    title: str
    kind: str  # "loop" | "track" (steady pulse, not named a loop) | "sound" | "midi"
    duration_s: float
    bpm: float | None
    tempo_confidence: float
    key: str | None
    mode: str | None
    key_strength: float
    loudness_db: float | None
    brightness_hz: float | None
    onset_rate: float
    tags: tuple[tuple[str, str], ...]  # (facet, tag), facet in FACETS
    text: str  # what gets embedded: a sentence of tags and metadata

    def tag_strings(self) -> tuple[str, ...]:
        return tuple(f"{f}:{t}" for f, t in self.tags)


def piece_id(path: str | Path) -> str:
    """Stable id of a file: a hash of its resolved path."""
    return hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]


def is_library_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS + MIDI_EXTENSIONS and not path.name.startswith(
        "."
    )


# --- names -> tags ----------------------------------------------------------------------

# Sonic Pi sample families whose members are single hits or sustained sounds, never loops.
_ONE_SHOT_FAMILIES = frozenset(
    {"ambi", "bass", "bd", "drum", "elec", "glitch", "guit", "mehackit", "misc", "perc",
     "sn", "tabla", "vinyl"}
)  # fmt: skip
_ONE_SHOT_WORDS = frozenset(
    {"hit", "hits", "kick", "snare", "clap", "hat", "hihat", "cymbal", "crash", "ride", "tom",
     "impact", "fx", "sfx", "oneshot", "shot", "stab", "riser", "whoosh", "swoosh", "woosh"}
)  # fmt: skip
_LOOP_WORDS = frozenset({"loop", "loops", "groove", "breakbeat"})

# Word -> (facet, tag) hints beyond the taxonomy's own names. Sonic Pi families first.
_WORD_TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "ambi": (("genre", "ambient"), ("instrument", "pad")),
    "bd": (("instrument", "drums"), ("genre", "electronic")),
    "sn": (("instrument", "drums"),),
    "elec": (("genre", "electronic"), ("instrument", "synthesizer")),
    "glitch": (("genre", "electronic"), ("instrument", "synthesizer"), ("mood", "playful")),
    "guit": (("instrument", "electric-guitar"),),
    "mehackit": (("genre", "electronic"), ("mood", "playful")),
    "perc": (("instrument", "percussion"),),
    "tabla": (("instrument", "percussion"), ("genre", "world")),
    "vinyl": (("genre", "lofi"), ("genre", "hip-hop")),
    "amen": (("instrument", "drums"), ("genre", "funk"), ("genre", "hip-hop"),
             ("genre", "electronic"), ("mood", "powerful")),
    "breakbeat": (("instrument", "drums"), ("genre", "funk"), ("genre", "hip-hop"),
                  ("genre", "electronic")),
    "dnb": (("genre", "electronic"), ("mood", "powerful")),
    "trance": (("genre", "electronic"), ("mood", "uplifting")),
    "808": (("genre", "hip-hop"), ("genre", "electronic"), ("instrument", "drums")),
    "kick": (("instrument", "drums"),), "snare": (("instrument", "drums"),),
    "cymbal": (("instrument", "drums"),), "tom": (("instrument", "drums"),),
    "hat": (("instrument", "drums"),), "hihat": (("instrument", "drums"),),
    "clap": (("instrument", "drums"),), "cowbell": (("instrument", "percussion"),),
    "roll": (("instrument", "drums"),), "splash": (("instrument", "drums"),),
    "snap": (("instrument", "percussion"),), "shaker": (("instrument", "percussion"),),
    "bell": (("instrument", "bells"),), "chime": (("instrument", "bells"),),
    "triangle": (("instrument", "percussion"),),
    "blip": (("instrument", "synthesizer"), ("mood", "playful")),
    "beep": (("instrument", "synthesizer"), ("mood", "playful")),
    "ping": (("instrument", "synthesizer"),), "plip": (("instrument", "synthesizer"),),
    "blup": (("instrument", "synthesizer"), ("mood", "playful")),
    "robot": (("genre", "electronic"), ("mood", "playful"), ("mood", "fun")),
    "phone": (("mood", "playful"),),
    "industrial": (("genre", "electronic"), ("mood", "aggressive"), ("mood", "dark")),
    "weirdo": (("mood", "playful"), ("mood", "mysterious")),
    "safari": (("genre", "world"), ("instrument", "percussion"), ("mood", "adventurous")),
    "printer": (("genre", "electronic"), ("mood", "playful")),
    "electric": (("genre", "electronic"),),
    "cineboom": (("genre", "cinematic"), ("mood", "epic"), ("mood", "powerful")),
    "boom": (("genre", "cinematic"), ("mood", "powerful")),
    "impact": (("genre", "cinematic"), ("mood", "epic")),
    "swoosh": (("genre", "cinematic"),), "woosh": (("genre", "cinematic"),),
    "swash": (("genre", "cinematic"),), "riser": (("genre", "cinematic"), ("mood", "tense")),
    "crow": (("mood", "mysterious"), ("mood", "dark")),
    "burp": (("mood", "fun"), ("mood", "playful")),
    "till": (("mood", "fun"),),
    "scratch": (("genre", "hip-hop"),), "backspin": (("genre", "hip-hop"),),
    "rewind": (("genre", "hip-hop"),), "hiss": (("genre", "lofi"),),
    "drone": (("instrument", "pad"), ("genre", "ambient"), ("mood", "mysterious")),
    "haunted": (("mood", "dark"), ("mood", "tense"), ("genre", "cinematic")),
    "lunar": (("mood", "mysterious"), ("mood", "dreamy")),
    "glass": (("mood", "dreamy"),), "sauna": (("mood", "calm"),),
    "choir": (("instrument", "choir"), ("mood", "dreamy")),
    "vox": (("instrument", "choir"),), "vocal": (("instrument", "choir"),),
    "sitar": (("genre", "world"),),
    "djembe": (("genre", "world"), ("instrument", "percussion")),
    "orchestra": (("genre", "cinematic"), ("instrument", "strings")),
    "orchestral": (("genre", "cinematic"), ("instrument", "strings")),
    "techno": (("genre", "electronic"),), "house": (("genre", "electronic"),),
    "dubstep": (("genre", "electronic"),), "trap": (("genre", "hip-hop"),),
    "metal": (("genre", "rock"),), "punk": (("genre", "rock"),),
    "salsa": (("genre", "latin"),), "samba": (("genre", "latin"),),
    "bossa": (("genre", "latin"),), "reggae": (("genre", "world"),),
    "country": (("genre", "folk"),), "soundtrack": (("genre", "cinematic"),),
    "score": (("genre", "cinematic"),), "rhodes": (("instrument", "electric-piano"),),
    "synth": (("instrument", "synthesizer"),), "keys": (("instrument", "piano"),),
    "sax": (("instrument", "saxophone"),), "fiddle": (("instrument", "violin"),),
}  # fmt: skip

_KEY_TOKEN = re.compile(r"^([a-g])(#|s|sharp|b|flat)?(m|min|minor|maj|major)?$")


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+#?|\d+", text.lower())


def _taxonomy_tag(word: str) -> tuple[str, str] | None:
    """A word (or hyphenated pair) that is itself a taxonomy name or alias."""
    for facet, normalise in (
        ("mood", taxonomy.normalise_mood),
        ("genre", taxonomy.normalise_genre),
        ("instrument", taxonomy.normalise_instrument),
    ):
        for cand in (word, word[:-1] if word.endswith("s") and len(word) > 3 else None):
            if cand is None:
                continue
            try:
                return facet, normalise(cand)
            except InvalidRequest:
                continue
    return None


@dataclass(frozen=True)
class NameHints:
    tags: tuple[tuple[str, str], ...]
    loop: bool | None  # True: named a loop; False: a known one-shot family; None: unknown
    bpm: float | None
    key: str | None
    mode: str | None


def name_hints(stem: str, folders: tuple[str, ...] = ()) -> NameHints:
    """Tags, loop-ness and BPM/key written in a file name (and tags from its folders)."""
    toks = _tokens(stem)
    tags: list[tuple[str, str]] = []

    # A sonic-pi family already names the genre; its other words are sound names
    # (`elec_pop` is a pop sound, not pop music).
    family = bool(toks) and toks[0] in _ONE_SHOT_FAMILIES

    def add_words(words: list[str], in_name: bool) -> None:
        pairs = [f"{a}-{b}" for a, b in zip(words, words[1:], strict=False)]
        for w in pairs + words:
            tags.extend(_WORD_TAGS.get(w, ()))
            t = _taxonomy_tag(w)
            if t is None or (w == "bass" and "drum" in words):  # a bass drum is a drum
                continue
            if not (in_name and family and t[0] == "genre"):
                tags.append(t)

    add_words(toks, in_name=True)
    for folder in folders:
        add_words(_tokens(folder), in_name=False)

    loop: bool | None = None
    if any(t in _LOOP_WORDS for t in toks):
        loop = True
    elif family or any(t in _ONE_SHOT_WORDS for t in toks):
        loop = False

    bpm: float | None = None
    for i, t in enumerate(toks):  # "96bpm", "bpm_96", "96 bpm"
        if t == "bpm":
            near = [toks[j] for j in (i - 1, i + 1) if 0 <= j < len(toks) and toks[j].isdigit()]
            if near:
                bpm = float(near[0])
                break
    if bpm is None and loop and len(toks) > 1 and toks[-1].isdigit():
        bpm = float(toks[-1])  # sonic-pi style: loop_drone_g_97
    if bpm is not None and not (taxonomy.MIN_BPM <= bpm <= taxonomy.MAX_BPM):
        bpm = None

    key = mode = None
    words = [t for t in toks if not t.isdigit()]
    tail = words[1:][-2:]  # only the last two words: a first word is a name, not a key
    for i, t in enumerate(tail):
        km = _KEY_TOKEN.match(t)
        if km is None:
            continue
        pc = dsp.PITCH_CLASSES.index(km.group(1).upper())
        shift = {"#": 1, "s": 1, "sharp": 1, "b": -1, "flat": -1}.get(km.group(2) or "", 0)
        key = dsp.PITCH_CLASSES[(pc + shift) % 12]
        quality = km.group(3) or (tail[i + 1] if i + 1 < len(tail) else "")  # "f#_m"
        if quality in ("m", "min", "minor", "maj", "major"):
            mode = "major" if quality.startswith("maj") else "minor"
    return NameHints(tuple(dict.fromkeys(tags)), loop, bpm, key, mode)


# --- decoding ----------------------------------------------------------------------------


def _decode_pyav(path: Path, max_s: float) -> tuple[np.ndarray, int, float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=dsp.SR)
        chunks: list[np.ndarray] = []
        total = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                total += arr.size
            if total >= max_s * dsp.SR:
                break
        duration = float(stream.duration * stream.time_base) if stream.duration else total / dsp.SR
    if not chunks:
        raise MediaError(f"{path.name}: no audio")
    return np.concatenate(chunks)[: int(max_s * dsp.SR)], dsp.SR, duration


def decode_audio(path: Path, max_s: float = MAX_ANALYSIS_S) -> tuple[np.ndarray, int, float]:
    """(samples, rate, full duration in s); reads at most max_s seconds (libsndfile, else PyAV)."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            duration = f.frames / sr if f.frames > 0 else 0.0
            x = f.read(frames=int(max_s * sr), dtype="float32", always_2d=True)
    except Exception as sf_exc:
        try:
            return _decode_pyav(path, max_s)
        except Exception:
            raise MediaError(f"cannot decode {path.name}: {sf_exc}") from None
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise MediaError(f"{path.name}: empty or invalid audio")
    return x, sr, duration or x.shape[0] / sr


def _metadata(path: Path) -> dict[str, str]:
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            meta = f.copy_metadata()
    except Exception:
        return {}
    return {k: str(v).strip() for k, v in meta.items() if str(v).strip()}


# --- analysis ----------------------------------------------------------------------------


def _energy(loudness_db: float | None, onset_rate: float, duration_s: float) -> str:
    """Level and onset density; a short hit has no density to speak of, only its level."""
    level = 0.5 if loudness_db is None else np.clip((loudness_db + 30.0) / 22.0, 0.0, 1.0)
    density = np.clip(onset_rate / 6.0, 0.0, 1.0)
    score = level if duration_s < 1.5 else 0.4 * level + 0.6 * density
    return "low" if score < 0.35 else ("medium" if score < 0.65 else "high")


def _mode_moods(mode: str | None, bucket: str | None, brightness_hz: float | None) -> list[str]:
    """Mode -> mood hints (major bright, minor dark), shaded by tempo and timbre."""
    if mode == "major":
        return {"fast": ["fun", "happy"], "medium": ["happy", "uplifting"]}.get(
            bucket or "", ["calm", "uplifting"]
        )
    if mode == "minor":
        moods = {"fast": ["tense"], "medium": ["melancholic"]}.get(
            bucket or "", ["melancholic", "sad"]
        )
        if brightness_hz is not None and brightness_hz < 1200.0:
            moods.append("dark")
        return moods
    return []


def _sentence(title: str, kind: str, bpm: float | None, key: str | None, mode: str | None,
              tags: list[tuple[str, str]], meta: dict[str, str], folder: str) -> str:  # fmt: skip
    def of(facet: str) -> list[str]:
        return [t.replace("-", " ") for f, t in tags if f == facet]

    tempo = {"slow": "slow", "medium": "mid-tempo", "fast": "fast"}
    words = [tempo[t] for t in of("tempo")] + [f"{e}-energy" for e in of("energy")]
    genres = ", ".join(of("genre"))
    head = " ".join(
        words + ([genres] if genres else []) + [kind if kind != "midi" else "MIDI piece"]
    )
    parts = [f"{title}: a {head}"]
    if of("instrument"):
        parts.append("with " + ", ".join(of("instrument")))
    text = " ".join(parts)
    if of("mood"):
        text += "; " + ", ".join(of("mood"))
    if bpm is not None:
        text += f", {bpm:.0f} BPM"
    if key is not None:
        text += f", in {key} {mode or ''}".rstrip()
    text += "."
    extra = [f"{k}: {v}" for k, v in meta.items() if k in ("title", "artist", "album", "genre")]
    if extra:
        text += " " + "; ".join(extra) + "."
    if folder:
        text += f" Folder: {folder}."
    return text


def _finish(path: Path, root: Path | None, kind: str, duration: float, bpm: float | None,
            conf: float, key: str | None, mode: str | None, strength: float,
            loudness: float | None, brightness: float | None, onset_rate: float,
            tags: list[tuple[str, str]], meta: dict[str, str]) -> PieceAnalysis:  # fmt: skip
    bucket = taxonomy.tempo_bucket(bpm) if bpm is not None else None
    if bucket:
        tags.insert(0, ("tempo", bucket))
    if not any(f == "mood" for f, _ in tags) and (kind != "sound" or duration >= 3.0):
        tags.extend(("mood", m) for m in _mode_moods(mode, bucket, brightness))
    tags.append(("energy", _energy(loudness, onset_rate, duration)))
    tags = list(dict.fromkeys(tags))
    folder = ""
    if root is not None and path.parent != root:
        try:
            folder = str(path.parent.relative_to(root))
        except ValueError:
            folder = path.parent.name
    title = meta.get("title") or " ".join(re.split(r"[_\-\s]+", path.stem)).strip() or path.stem
    text = _sentence(title, kind, bpm, key, mode, tags, meta, folder)
    return PieceAnalysis(
        path=str(path),
        title=title,
        kind=kind,
        duration_s=round(float(duration), 3),
        bpm=bpm,
        tempo_confidence=round(float(conf), 3),
        key=key,
        mode=mode,
        key_strength=round(float(strength), 3),
        loudness_db=None if loudness is None else round(float(loudness), 2),
        brightness_hz=None if brightness is None else round(float(brightness), 1),
        onset_rate=round(float(onset_rate), 3),
        tags=tuple(tags),
        text=text,
    )


def _folders(path: Path, root: Path | None) -> tuple[str, ...]:
    if root is None or path.parent == root:
        return ()
    try:
        return path.parent.relative_to(root).parts
    except ValueError:
        return ()


def _meta_tags(meta: dict[str, str]) -> list[tuple[str, str]]:
    tags: list[tuple[str, str]] = []
    if "genre" in meta:
        for part in re.split(r"[;,/]", meta["genre"]):
            t = _taxonomy_tag(part.strip().lower()) if part.strip() else None
            if t is not None:
                tags.append(t)
    return tags


def analyse_audio_file(path: Path, root: Path | None = None) -> PieceAnalysis:
    x, sr, duration = decode_audio(path)
    hints = name_hints(path.stem, _folders(path, root))
    feats = dsp.analyse_audio(x, sr, loop=hints.loop)
    tonal = feats.key is not None and feats.key_strength >= 0.6
    key, mode = (feats.key, feats.mode) if tonal else (None, None)
    if hints.key is not None:
        key = hints.key
        pcp = dsp.chroma(dsp.to_analysis_rate(x, sr))
        mode = hints.mode or dsp.estimate_mode(pcp, key)
    bpm = hints.bpm if hints.bpm is not None and hints.loop is not False else feats.bpm
    kind = "loop" if hints.loop else ("track" if bpm is not None else "sound")
    meta = _metadata(path)
    tags = _meta_tags(meta) + list(hints.tags)
    if not any(f == "instrument" for f, _ in tags):
        if feats.tonalness < 0.2 and (feats.onset_rate >= 1.0 or feats.duration_s < 1.5):
            tags.append(("instrument", "percussion"))
        elif feats.tonalness >= 0.3 and feats.onset_rate < 0.7 and feats.duration_s >= 2.0:
            tags.append(("instrument", "pad"))
    return _finish(path, root, kind, duration, bpm, feats.tempo_confidence, key, mode,
                   feats.key_strength, feats.loudness_db, feats.brightness_hz, feats.onset_rate,
                   tags, meta)  # fmt: skip


# General MIDI program ranges (first program of each range) -> taxonomy instrument.
_GM_RANGES: tuple[tuple[int, str | None], ...] = (
    (0, "piano"), (4, "electric-piano"), (6, "piano"), (8, "bells"), (11, "vibraphone"),
    (12, "marimba"), (13, "bells"), (16, "organ"), (24, "acoustic-guitar"),
    (26, "electric-guitar"), (32, "bass"), (40, "violin"), (41, "strings"), (42, "cello"),
    (43, "strings"), (46, "harp"), (47, "percussion"), (48, "strings"), (52, "choir"),
    (55, "strings"), (56, "trumpet"), (57, "brass"), (59, "trumpet"), (60, "horn"),
    (61, "brass"), (64, "saxophone"), (68, None), (71, "clarinet"), (72, "flute"),
    (80, "synthesizer"), (88, "pad"), (96, "synthesizer"), (104, None), (110, "violin"),
    (111, None), (112, "percussion"), (120, None),
)  # fmt: skip


def _gm_instrument(program: int, is_drum: bool) -> str | None:
    """General MIDI program -> the nearest taxonomy instrument (None: nothing close)."""
    if is_drum:
        return "drums"
    name: str | None = None
    for first, inst in _GM_RANGES:
        if program >= first:
            name = inst
    return name


def analyse_midi_file(path: Path, root: Path | None = None) -> PieceAnalysis:
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise MediaError(f"cannot read MIDI {path.name}: {exc or type(exc).__name__}") from None
    duration = float(pm.get_end_time())
    notes = [n for inst in pm.instruments for n in inst.notes]
    if not notes or duration <= 0:
        raise MediaError(f"{path.name}: MIDI file has no notes")
    times, tempi = pm.get_tempo_changes()
    bpm: float | None = float(tempi[0]) if len(tempi) else None
    if bpm is not None and not (taxonomy.MIN_BPM <= bpm <= taxonomy.MAX_BPM):
        bpm = None
    hints = name_hints(path.stem, _folders(path, root))
    if hints.bpm is not None:
        bpm = hints.bpm
    pitched = [i for i in pm.instruments if not i.is_drum and i.notes]
    key = mode = None
    strength = 0.0
    if pm.key_signature_changes:
        name = pretty_midi.key_number_to_key_name(pm.key_signature_changes[0].key_number)
        tonic, kmode = name.split()
        key = dsp.PITCH_CLASSES[pretty_midi.note_name_to_number(tonic + "0") % 12]
        mode, strength = kmode.lower(), 1.0
    elif pitched:
        hist = np.zeros(12)
        for inst in pitched:
            for n in inst.notes:
                hist[n.pitch % 12] += n.end - n.start
        key, mode, strength = dsp.estimate_key(hist)
    if hints.key is not None:
        key, mode = hints.key, hints.mode or mode
    tags = list(hints.tags)
    for inst in pm.instruments:
        name = _gm_instrument(inst.program, inst.is_drum)
        if name is not None and inst.notes:
            tags.append(("instrument", name))
    velocities = np.array([n.velocity for n in notes], dtype=np.float64)
    loudness = float(-30.0 + 22.0 * velocities.mean() / 127.0)  # velocity mapped to a level
    pitches = np.array([n.pitch for inst in pitched for n in inst.notes], dtype=np.float64)
    brightness = float(440.0 * 2 ** ((pitches.mean() - 69) / 12)) if pitches.size else None
    onset_rate = len({round(n.start, 2) for n in notes}) / duration
    return _finish(path, root, "midi", duration, bpm, 1.0 if bpm else 0.0, key, mode, strength,
                   loudness, brightness, onset_rate, tags, {})  # fmt: skip


def analyse_file(path: Path, root: Path | None = None) -> PieceAnalysis:
    """Analyse one audio or MIDI file; MediaError if it cannot be read."""
    if path.suffix.lower() in MIDI_EXTENSIONS:
        return analyse_midi_file(path, root)
    return analyse_audio_file(path, root)
