"""Draft describer (the text bridge without InternVL): visual statistics -> attributes ->
one sentence in the style of the paper's descriptions.

Rules, in order (each stage keeps what a knob or the user's text already fixed):

1. Measure the frames: brightness (mean luma), saturation (chroma / value), warmth (red
   minus blue), contrast (luma spread), motion (VisualInput.motion_energy, else frame
   differences within shots) and cut rate (cuts per minute).
2. Arousal (0..1) = how much happens: motion and cut rate combined as "either is enough"
   (1 - (1-m)(1-c)), plus a little colour energy (saturation, contrast). An image has no
   motion, so its arousal comes from colour alone.
3. Mood = the nearest prototype in (brightness, saturation, warmth, contrast, arousal) —
   e.g. dark = very dark, grey, little happening; fun = bright, saturated, a lot happening.
   The runner-up mood completes the sentence ("perfect for X and Y moments").
4. Energy and tempo bucket from arousal (a mood knob pulls arousal towards that mood's).
5. Genre from mood, colour and energy (dark/slow -> ambient, dark/energetic -> cinematic,
   happy + warm -> pop, happy + cool -> electronic, ...); an instrument the user named
   can imply one (saxophone -> jazz).
6. Instruments from genre, shaded by mood and energy (quiet pieces drop the drums).

Free text (Knobs.text, or a text-only request) is mapped to the same taxonomy: keywords
first ("melancholic", "electric guitar", "120 bpm"), then similarity of sentence
embeddings (all-MiniLM-L6-v2) to a short description of each mood and genre; a genre or
instrument is only taken from similarity when it is clearly the best. Knobs always win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bridge.errors import InvalidRequest
from engine import taxonomy
from engine.types import Attributes, Knobs, MusicDescription, ProgressFn, VisualInput

# --- 1. measuring frames -------------------------------------------------------------------


@dataclass(frozen=True)
class VisualStats:
    """Statistics of the sampled frames, each roughly 0..1 (warmth -1..1)."""

    brightness: float
    saturation: float
    warmth: float
    contrast: float
    motion: float  # mean absolute frame difference, 0..1
    cuts_per_min: float
    frames: int
    source: str


def _as_frames(frames: np.ndarray) -> np.ndarray:
    f = np.asarray(frames)
    if f.size == 0:
        return np.zeros((0, 1, 1, 3), np.float32)
    if f.ndim == 3:  # one image
        f = f[None]
    if f.ndim != 4 or f.shape[-1] not in (3, 4):
        raise InvalidRequest(f"frames must be (N, H, W, 3) RGB, got shape {tuple(f.shape)}")
    f = f[..., :3].astype(np.float32)
    if np.issubdtype(np.asarray(frames).dtype, np.floating) and f.max(initial=0.0) <= 1.0:
        f = f * 255.0
    return f / 255.0


def measure(visual: VisualInput) -> VisualStats:
    """Colour and motion statistics of the frames (all zeros when there are none)."""
    f = _as_frames(visual.frames)
    n = f.shape[0]
    cuts = len(visual.cut_times_s) / visual.duration_s * 60.0 if visual.duration_s > 0 else 0.0
    if n == 0:
        return VisualStats(0.0, 0.0, 0.0, 0.0, 0.0, cuts, 0, visual.source)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    mx, mn = f.max(axis=-1), f.min(axis=-1)
    saturation = float((mx - mn).sum() / max(float(mx.sum()), 1e-6))  # HSV S weighted by V
    contrast = float(luma.reshape(n, -1).std(axis=1).mean())
    motion = float(visual.motion_energy)
    if motion <= 0.0 and n > 1 and visual.source == "video":
        motion = _frame_motion(luma, visual.frame_times_s, visual.cut_times_s)
    return VisualStats(
        brightness=float(luma.mean()),
        saturation=saturation,
        warmth=float((r - b).mean()),
        contrast=contrast,
        motion=motion,
        cuts_per_min=cuts,
        frames=n,
        source=visual.source,
    )


def _frame_motion(luma: np.ndarray, times: tuple[float, ...], cuts: tuple[float, ...]) -> float:
    """Mean absolute difference of consecutive frames of the same shot (a cut is not motion)."""
    diffs = []
    for i in range(1, luma.shape[0]):
        if len(times) == luma.shape[0]:
            t0, t1 = times[i - 1], times[i]
            if any(t0 < c <= t1 for c in cuts):
                continue
        diffs.append(float(np.abs(luma[i] - luma[i - 1]).mean()))
    return float(np.mean(diffs)) if diffs else 0.0


# Motion (engine.media's thumbnail difference per frame) of a fast pan, ~6% of the width
# per frame, and the cut rate of a trailer or music video (a cut every 2 s) count as "a lot".
MOTION_FULL = 0.05
CUTS_PER_MIN_FULL = 30.0


def arousal_of(stats: VisualStats) -> float:
    """How much happens on screen, 0..1 (see rule 2 in the module docstring)."""
    colour = float(np.clip(0.5 * stats.saturation / 0.6 + 0.5 * stats.contrast / 0.3, 0.0, 1.0))
    if stats.source == "image" or stats.frames <= 1:
        return 0.15 + 0.6 * colour
    m = float(np.clip(stats.motion / MOTION_FULL, 0.0, 1.0))
    c = float(np.clip(stats.cuts_per_min / CUTS_PER_MIN_FULL, 0.0, 1.0))
    return float(np.clip(0.85 * (1.0 - (1.0 - m) * (1.0 - c)) + 0.15 * colour, 0.0, 1.0))


# --- 2. moods --------------------------------------------------------------------------------

# mood -> (brightness, saturation, warmth, contrast, arousal)
MOOD_PROTOTYPES: dict[str, tuple[float, float, float, float, float]] = {
    "happy": (0.65, 0.55, 0.05, 0.22, 0.62),
    "uplifting": (0.72, 0.40, 0.03, 0.20, 0.50),
    "fun": (0.65, 0.70, 0.03, 0.25, 0.82),
    "playful": (0.70, 0.60, 0.05, 0.20, 0.68),
    "calm": (0.60, 0.25, 0.00, 0.15, 0.10),
    "dreamy": (0.72, 0.25, 0.02, 0.10, 0.20),
    "romantic": (0.55, 0.45, 0.15, 0.18, 0.25),
    "nostalgic": (0.50, 0.25, 0.12, 0.15, 0.30),
    "sad": (0.40, 0.12, -0.08, 0.15, 0.15),
    "melancholic": (0.45, 0.20, -0.04, 0.18, 0.25),
    "mysterious": (0.22, 0.25, -0.08, 0.15, 0.25),
    "tense": (0.25, 0.30, -0.03, 0.25, 0.70),
    "dark": (0.12, 0.15, -0.02, 0.12, 0.30),
    "epic": (0.45, 0.40, 0.03, 0.30, 0.80),
    "powerful": (0.40, 0.45, 0.05, 0.30, 0.90),
    "adventurous": (0.60, 0.50, 0.02, 0.25, 0.76),
    "aggressive": (0.30, 0.50, 0.12, 0.30, 0.95),
}
_FEATURE_SCALE = np.array([1.0, 1.0, 2.5, 2.0, 1.2])  # warmth and contrast vary less

# What each mood sounds like, for matching free text by sentence embedding.
MOOD_TEXT: dict[str, str] = {
    "happy": "happy cheerful joyful music for a sunny carefree day",
    "uplifting": "uplifting hopeful inspiring music, a new beginning, sunrise",
    "fun": "fun catchy party music, dancing and celebration",
    "playful": "playful bouncy music for kids, games and cartoons",
    "calm": "calm peaceful relaxing music, quiet nature, gentle and soothing",
    "dreamy": "dreamy floating ethereal music, clouds, stars and memories",
    "romantic": "romantic tender love music, a couple, a wedding, a kiss at sunset",
    "nostalgic": "nostalgic wistful music, old photos, childhood and the past",
    "sad": "sad sorrowful music, grief, tears, loss and loneliness",
    "melancholic": "melancholic bittersweet music, a rainy day, longing and reflection",
    "mysterious": "mysterious enigmatic music, secrets, fog, the unknown",
    "tense": "tense suspenseful music, danger, a thriller, a chase, anxiety",
    "dark": "dark ominous gloomy music, horror, night, shadows and fear",
    "epic": "epic grand heroic music, a battle, a trailer, a vast landscape",
    "powerful": "powerful strong driving music, sport, victory and intensity",
    "adventurous": "adventurous exploring music, a journey, travel, discovery",
    "aggressive": "aggressive angry intense heavy music, a fight, rage",
}
GENRE_TEXT: dict[str, str] = {
    "ambient": "ambient atmospheric soundscape with pads and drones",
    "blues": "blues with guitar, a slow soulful bar song",
    "cinematic": "cinematic orchestral film score, movie trailer music",
    "classical": "classical music, piano sonata, orchestra, string quartet",
    "electronic": "electronic dance music, synthesizers, club, techno, EDM",
    "folk": "folk music with acoustic guitar, countryside, campfire",
    "funk": "funk groove with slap bass and wah guitar",
    "hip-hop": "hip-hop beat, rap, urban street",
    "jazz": "jazz with saxophone, piano trio, a smoky club",
    "latin": "latin music, salsa, samba, bossa nova, tango",
    "lofi": "lofi chill beats to study and relax, vinyl crackle",
    "pop": "pop song, catchy radio hit, upbeat chorus",
    "rock": "rock music, electric guitars, loud drums, band",
    "world": "world music, ethnic instruments, tabla, sitar, african drums",
}
GENRE_MIN_SIMILARITY = 0.45  # below this, the genre follows from mood (rule 5)
INSTRUMENT_MIN_SIMILARITY = 0.55


def rank_moods(stats: VisualStats, arousal: float) -> list[str]:
    """Moods by distance of their prototype to the measured features, nearest first."""
    # Footage rarely leaves +-0.15 red-blue balance; a strong colour cast must not swamp
    # the other features.
    warmth = float(np.clip(stats.warmth, -0.15, 0.15))
    x = np.array([stats.brightness, stats.saturation, warmth, stats.contrast, arousal])
    names = list(MOOD_PROTOTYPES)
    protos = np.array([MOOD_PROTOTYPES[m] for m in names])
    d = np.sqrt((((protos - x) * _FEATURE_SCALE) ** 2).sum(axis=1))
    return [names[i] for i in np.argsort(d, kind="stable")]


def energy_of(arousal: float) -> str:
    return "low" if arousal < 0.35 else ("medium" if arousal < 0.65 else "high")


def tempo_of(arousal: float) -> str:
    return "slow" if arousal < 0.4 else ("medium" if arousal < 0.68 else "fast")


_ENERGY_AROUSAL = {"low": 0.2, "medium": 0.5, "high": 0.85}
_TEMPO_AROUSAL = {"slow": 0.25, "medium": 0.55, "fast": 0.85}

# --- 3. genre and instruments ----------------------------------------------------------------


def genre_of(
    mood: str, energy: str, stats: VisualStats | None, instruments: tuple[str, ...]
) -> str:
    """Rule 5: the genre that usually carries this mood, split by colour or energy."""
    for inst, genre in (
        ("saxophone", "jazz"), ("electric-guitar", "rock"), ("acoustic-guitar", "folk"),
        ("synthesizer", "electronic"), ("organ", "blues"), ("electric-piano", "lofi"),
    ):  # fmt: skip
        if inst in instruments[:1]:
            return genre
    # Without a picture (text only) the warm/cool split falls on the first choice.
    warm = stats is None or stats.warmth > 0.04
    cool = stats is None or stats.warmth <= 0.04
    high = energy == "high"
    table = {
        "happy": "pop" if warm else "electronic",
        "fun": "pop" if warm else "electronic",
        "playful": "pop",
        "uplifting": "pop" if energy != "low" else "folk",
        "calm": "ambient" if cool else "lofi",
        "dreamy": "ambient" if cool else "lofi",
        "romantic": "jazz" if warm and energy != "low" else "classical",
        "nostalgic": "lofi" if energy != "low" else "folk",
        "sad": "classical",
        "melancholic": "classical" if energy == "low" else "cinematic",
        "mysterious": "ambient" if energy == "low" else "cinematic",
        "tense": "cinematic" if not high or warm else "electronic",
        "dark": "ambient" if energy == "low" else "cinematic",
        "epic": "cinematic",
        "powerful": "rock" if warm else "cinematic",
        "adventurous": "cinematic",
        "aggressive": "rock" if warm else "electronic",
    }
    return table[mood]


# the band each genre wants, most defining first (up to MAX_BAND are kept)
GENRE_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "ambient": ("pad", "strings", "piano", "harp"),
    "blues": ("electric-guitar", "bass", "drums", "organ", "piano"),
    "cinematic": ("strings", "horn", "piano", "cello", "brass", "choir"),
    "classical": ("piano", "strings", "cello", "flute"),
    "electronic": ("synthesizer", "drums", "bass", "pad"),
    "folk": ("acoustic-guitar", "violin", "bass", "percussion"),
    "funk": ("bass", "electric-guitar", "drums", "brass", "electric-piano"),
    "hip-hop": ("drums", "bass", "electric-piano", "vibraphone", "pad"),
    "jazz": ("piano", "bass", "saxophone", "drums", "vibraphone"),
    "latin": ("acoustic-guitar", "percussion", "bass", "trumpet", "piano", "drums"),
    "lofi": ("electric-piano", "drums", "bass", "guitar"),
    "pop": ("drums", "synthesizer", "bass", "piano", "acoustic-guitar", "strings"),
    "rock": ("electric-guitar", "drums", "bass", "organ"),
    "world": ("percussion", "flute", "strings", "marimba", "bass"),
}
MAX_BAND = 6
_RHYTHM_GENRES = ("electronic", "funk", "hip-hop", "lofi", "pop", "rock", "latin")


def instruments_of(
    genre: str, mood: str, energy: str, lead: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """Rule 6: the genre's band, shaded by mood and energy; `lead` instruments go first."""
    band = list(GENRE_INSTRUMENTS[genre])
    if mood in ("sad", "melancholic", "romantic") and "piano" not in band and genre != "rock":
        band.insert(0, "piano")
    if mood in ("dark", "mysterious") and "pad" not in band:
        band.insert(0, "pad")
    if energy == "low" and genre not in _RHYTHM_GENRES:
        band = [i for i in band if i not in ("drums", "percussion")]
    if energy == "high" and genre in ("cinematic", "classical", "ambient", "world"):
        extra = "drums" if genre == "cinematic" else "percussion"
        if extra not in band:
            band.insert(2, extra)  # epic wants its percussion more than a sixth melody part
    out = list(dict.fromkeys([*lead, *band]))
    return tuple(out[: max(MAX_BAND, len(lead))])


# --- 4. free text ------------------------------------------------------------------------------

_MOOD_WORDS = {
    "cheerful": "happy", "joyful": "happy", "joyous": "happy", "sunny": "happy",
    "hopeful": "uplifting", "inspiring": "uplifting", "inspirational": "uplifting",
    "catchy": "fun", "party": "fun", "bouncy": "playful", "quirky": "playful",
    "peaceful": "calm", "relaxing": "calm", "relaxed": "calm", "serene": "calm",
    "tranquil": "calm", "chill": "calm", "ethereal": "dreamy", "love": "romantic",
    "tender": "romantic", "wistful": "nostalgic", "sorrowful": "sad", "tragic": "sad",
    "grief": "sad", "melancholy": "melancholic", "bittersweet": "melancholic",
    "spooky": "mysterious", "eerie": "mysterious", "enigmatic": "mysterious",
    "suspense": "tense", "suspenseful": "tense", "scary": "tense", "thriller": "tense",
    "ominous": "dark", "sinister": "dark", "gloomy": "dark", "horror": "dark",
    "heroic": "epic", "grand": "epic", "majestic": "epic", "triumphant": "epic",
    "driving": "powerful", "strong": "powerful", "angry": "aggressive", "furious": "aggressive",
    "heavy": "aggressive", "adventure": "adventurous",
}  # fmt: skip
_GENRE_WORDS = {
    "orchestral": "cinematic", "orchestra": "cinematic", "film score": "cinematic",
    "soundtrack": "cinematic", "trailer": "cinematic", "edm": "electronic",
    "techno": "electronic", "electronica": "electronic", "dance": "electronic",
    "synthwave": "electronic", "hip hop": "hip-hop", "rap": "hip-hop", "trap": "hip-hop",
    "lo-fi": "lofi", "lo fi": "lofi", "metal": "rock", "punk": "rock", "grunge": "rock",
    "salsa": "latin", "samba": "latin", "bossa nova": "latin", "tango": "latin",
    "reggae": "world", "country": "folk", "acoustic": "folk", "swing": "jazz",
}  # fmt: skip
_INSTRUMENT_WORDS = {
    "synth": "synthesizer", "synths": "synthesizer", "keys": "piano", "keyboard": "piano",
    "sax": "saxophone", "fiddle": "violin", "rhodes": "electric-piano", "beats": "drums",
    "drum": "drums", "voices": "choir", "vocals": "choir", "guitars": "guitar",
    "horns": "horn", "bell": "bells", "orchestra": "strings", "string": "strings",
}  # fmt: skip
_TEMPO_WORDS = {
    "fast": "fast", "quick": "fast", "rapid": "fast", "upbeat": "fast", "up-tempo": "fast",
    "uptempo": "fast", "frantic": "fast", "slow": "slow", "slowly": "slow",
    "downtempo": "slow", "mid-tempo": "medium", "midtempo": "medium", "moderate": "medium",
}  # fmt: skip
_ENERGY_WORDS = {
    "energetic": "high", "intense": "high", "high energy": "high", "high-energy": "high",
    "explosive": "high", "soft": "low", "gentle": "low", "quiet": "low", "mellow": "low",
    "low energy": "low", "low-energy": "low", "minimal": "low",
}  # fmt: skip


def _lexicon(facet: str) -> dict[str, str]:
    """Phrase -> tag: the taxonomy's own names (hyphens as spaces too), then synonyms."""
    names = {"mood": taxonomy.MOODS, "genre": taxonomy.GENRES, "instrument": taxonomy.INSTRUMENTS}
    extra = {"mood": _MOOD_WORDS, "genre": _GENRE_WORDS, "instrument": _INSTRUMENT_WORDS,
             "tempo": _TEMPO_WORDS, "energy": _ENERGY_WORDS}[facet]  # fmt: skip
    out: dict[str, str] = {}
    for name in names.get(facet, ()):
        out[name] = name
        out[name.replace("-", " ")] = name
    out.update(extra)
    return out


def _find(text: str, facet: str) -> list[str]:
    """Tags of a facet named in the text, in order of appearance; longest phrase wins."""
    hits: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for phrase, tag in sorted(_lexicon(facet).items(), key=lambda kv: -len(kv[0])):
        for m in re.finditer(rf"(?<![\w-]){re.escape(phrase)}s?(?![\w-])", text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            hits.append((m.start(), tag))
    return list(dict.fromkeys(tag for _, tag in sorted(hits)))


@dataclass(frozen=True)
class TextHints:
    """What free text fixes (None/empty: not said) and the mood ranking it suggests."""

    named_moods: tuple[str, ...]  # moods the text names outright, in order
    moods: tuple[str, ...]  # every mood ranked: named ones, then by similarity
    genre: str | None
    instruments: tuple[str, ...]
    tempo: str | None
    bpm: float | None
    energy: str | None


def _similarity(text: str, labels: dict[str, str]) -> list[tuple[str, float]]:
    from engine.text_embed import embed_labels, embed_text

    names = list(labels)
    sims = embed_labels(tuple(labels[n] for n in names)) @ embed_text(text)
    order = np.argsort(-sims, kind="stable")
    return [(names[i], float(sims[i])) for i in order]


def parse_text(text: str) -> TextHints:
    """Free text -> taxonomy tags: keywords first, then sentence-embedding similarity."""
    t = " ".join(text.lower().split())
    moods = _find(t, "mood")
    genres = _find(t, "genre")
    instruments = _find(t, "instrument")
    tempos = _find(t, "tempo")
    energies = _find(t, "energy")
    bpm = None
    m = re.search(r"(\d{2,3}(?:\.\d+)?)\s*bpm", t)
    if m:
        try:
            tempo_bucket, bpm = taxonomy.normalise_tempo(m.group(1))
            tempos = [tempo_bucket]
        except InvalidRequest:
            bpm = None
    ranked = _similarity(t, MOOD_TEXT)
    mood_rank = list(dict.fromkeys([*moods, *(n for n, _ in ranked)]))
    genre = genres[0] if genres else None
    if genre is None:
        (best, s1), (_, s2) = _similarity(t, GENRE_TEXT)[:2]
        if s1 >= GENRE_MIN_SIMILARITY and s1 - s2 >= 0.03:
            genre = best
    if not instruments:
        inst = {n: n.replace("-", " ") for n in taxonomy.INSTRUMENTS}
        (best, s1), (_, s2) = _similarity(t, inst)[:2]
        if s1 >= INSTRUMENT_MIN_SIMILARITY and s1 - s2 >= 0.03:
            instruments = [best]
    return TextHints(
        named_moods=tuple(moods),
        moods=tuple(mood_rank),
        genre=genre,
        instruments=tuple(instruments),
        tempo=tempos[0] if tempos else None,
        bpm=bpm,
        energy=energies[0] if energies else None,
    )


# --- 5. the sentence ---------------------------------------------------------------------------

_MOOD_ADJECTIVES = {
    "happy": ("cheerful", "joyful"), "uplifting": ("uplifting", "hopeful"),
    "fun": ("catchy", "lively"), "playful": ("playful", "bouncy"), "calm": ("calm", "gentle"),
    "dreamy": ("dreamy", "floating"), "romantic": ("romantic", "tender"),
    "nostalgic": ("nostalgic", "wistful"), "sad": ("sad", "sorrowful"),
    "melancholic": ("melancholic", "bittersweet"), "mysterious": ("mysterious", "enigmatic"),
    "tense": ("tense", "suspenseful"), "dark": ("dark", "brooding"), "epic": ("epic", "grand"),
    "powerful": ("powerful", "driving"), "adventurous": ("adventurous", "bold"),
    "aggressive": ("aggressive", "fierce"),
}  # fmt: skip
_TEMPO_WORDS_OUT = {"slow": "slow", "medium": "mid-tempo", "fast": "fast"}
_ENERGY_WORDS_OUT = {"low": "soft", "medium": "steady", "high": "energetic"}
_GENRE_NOUNS = {"world": "world music", "lofi": "lo-fi", "hip-hop": "hip-hop"}
_TEMPLATES = (
    "{A} {tempo}, {adj} and {adj2} {genre} track, blending {instr} which is perfect for "
    "{m1} and {m2} moments",
    "{A} {adj} {genre} piece at a {tempo} pace with {instr}, {energy} and {adj2}, ideal for "
    "{m1} and {m2} scenes",
    "{A} {energy}, {adj} {genre} composition led by {instr} that sets {a2} {m1} and {m2} "
    "tone at a {tempo} pace",
)


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sentence(attrs: Attributes, second_mood: str, rng: np.random.Generator, brief: str = "") -> str:
    """One sentence in the paper's style; rng picks the template and the adjectives."""
    tpl = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    adj = _MOOD_ADJECTIVES[attrs.mood][int(rng.integers(2))]
    adj2 = _MOOD_ADJECTIVES[second_mood][0]
    if adj2 == adj:
        adj2 = _MOOD_ADJECTIVES[second_mood][1]
    tempo = _TEMPO_WORDS_OUT[attrs.tempo_bucket]
    if attrs.bpm is not None:
        tempo = f"{tempo} {attrs.bpm:g} BPM"
    words = {
        "tempo": tempo,
        "adj": adj,
        "adj2": adj2,
        "genre": _GENRE_NOUNS.get(attrs.genre, attrs.genre),
        "instr": _join([i.replace("-", " ") for i in attrs.instruments]),
        "m1": attrs.mood,
        "m2": second_mood,
        "energy": _ENERGY_WORDS_OUT[attrs.energy],
    }
    body = tpl.format(A="{A}", a2="{a2}", **words)
    first = body.split("{A} ", 1)[1].split()[0].strip(",")
    body = body.replace("{A}", _article(first)).replace("{a2}", _article(attrs.mood).lower())
    if brief:
        body += f', inspired by "{brief}"'
    return body + "."


# --- the describer ---------------------------------------------------------------------------


def _second_mood(mood: str, ranking: list[str]) -> str:
    for m in ranking:
        if m != mood:
            return m
    return mood


def _feel(
    stats: VisualStats | None,
    hints: TextHints | None,
    k_mood: str | None,
    k_energy: str | None,
    k_tempo: str | None,
) -> tuple[str, list[str], str, str]:
    """(mood, mood ranking, energy, tempo bucket): arousal and the mood ranking come from the
    picture, else from the text's mood; knobs and the text's words steer them."""
    if stats is not None:
        arousal = arousal_of(stats)
        ranking = rank_moods(stats, arousal)
    else:
        ranking = list(hints.moods) if hints else list(MOOD_PROTOTYPES)
        arousal = 0.5 if hints is None else MOOD_PROTOTYPES[ranking[0]][4]
    if hints is not None and stats is not None:  # with a picture, text steers by its words
        ranking = list(dict.fromkeys([*hints.named_moods, *ranking]))
    mood = k_mood or ranking[0]
    if mood != ranking[0]:  # a knob or the text moved the mood: follow its energy
        arousal = 0.5 * arousal + 0.5 * MOOD_PROTOTYPES[mood][4]
    energy_hint = k_energy or (hints.energy if hints else None)
    tempo_hint = k_tempo or (hints.tempo if hints else None)
    if energy_hint:
        arousal = _ENERGY_AROUSAL[energy_hint]
    elif tempo_hint:
        arousal = 0.5 * arousal + 0.5 * _TEMPO_AROUSAL[tempo_hint]
    return mood, ranking, energy_hint or energy_of(arousal), tempo_hint or tempo_of(arousal)


class DraftDescriber:
    """engine.types.Describer from visual statistics, free text and knobs (no weights)."""

    def __init__(self, settings: object | None = None) -> None:
        self.settings = settings  # the pipeline builds every stage with its settings

    def describe(
        self, visual: VisualInput, knobs: Knobs, rng: np.random.Generator, progress: ProgressFn
    ) -> MusicDescription:
        steps = 3
        progress("describe", 0, steps)
        # Validate every knob first: a typo is an error even when it would be overridden.
        k_mood = taxonomy.normalise_mood(knobs.mood) if knobs.mood else None
        k_genre = taxonomy.normalise_genre(knobs.genre) if knobs.genre else None
        k_tempo, k_bpm = taxonomy.normalise_tempo(knobs.tempo) if knobs.tempo else (None, None)
        k_instruments = taxonomy.normalise_instruments(knobs.instruments)
        k_energy = taxonomy.normalise_energy(knobs.energy) if knobs.energy else None
        text = (knobs.text or "").strip()

        stats = measure(visual) if visual.frames.size else None
        if (
            stats is None
            and not text
            and not any((k_mood, k_genre, k_tempo, k_instruments, k_energy))
        ):
            raise InvalidRequest("nothing to describe: give frames, an image, text or knobs")
        progress("describe", 1, steps)
        hints = parse_text(text) if text else None
        progress("describe", 2, steps)

        mood, ranking, energy, tempo = _feel(stats, hints, k_mood, k_energy, k_tempo)
        bpm = k_bpm if k_tempo else (hints.bpm if hints else None)

        lead = k_instruments or (hints.instruments if hints else ())
        genre = k_genre or (hints.genre if hints else None) or genre_of(mood, energy, stats, lead)
        instruments = k_instruments or instruments_of(genre, mood, energy, lead)

        attrs = Attributes(
            mood=mood,
            genre=genre,
            tempo_bucket=tempo,
            energy=energy,
            instruments=instruments,
            bpm=bpm,
        )
        brief = text if text else ""
        desc = sentence(attrs, _second_mood(mood, ranking), rng, brief)
        progress("describe", steps, steps)
        source = visual.source if stats is not None else "text"
        return MusicDescription(
            text=desc, attributes=attrs, source=source, backend="draft", weights="none"
        )
