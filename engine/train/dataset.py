"""Dataset tools for MMDM: CLAP auto-tags for music, then one-sentence targets from an LLM.

The paper's recipe: tag each track by cosine similarity between its CLAP audio embedding
and CLAP text embeddings of an expert label set (here: our taxonomy), with calibrated
thresholds; vocal tags at 0.1 drop tracks with singing; rare tags are merged into a
broader one. An instruct LLM (Llama 3.1 in the paper; any local causal LM here) then writes
the description from the tags and the track's metadata.

The tagger needs only two functions (an audio file -> embedding, texts -> embeddings), so it
runs on the CLAP encoder of engine.retrieve or on anything else with that shape.

Files (JSONL). A manifest line, the input of `vmb dataset tag`::

    {"audio": "music/a.wav", "video": "clips/a.mp4", "start": 0, "end": 30,
     "meta": {"title": "...", "description": "...", "bpm": 128, "key": "A minor", "lyrics": ""}}

(the visual side is "video" [+ start/end], "frames" or "image", and optional for tagging).
`tag` adds "tags"; `targets` adds "description" and writes lines `vmb train mmdm` reads.
Paths are written absolute, so output files can live anywhere.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bridge.errors import InvalidRequest, MediaError, WeightsError
from bridge.knobs import MAX_TEXT_CHARS
from engine import taxonomy
from engine.describe.full.parse import clean_text
from engine.train.jsonl import json_object, read_jsonl
from engine.types import ProgressFn, no_progress

AudioEmbedFn = Callable[[Path], np.ndarray]
"""One audio file -> its (D,) CLAP audio embedding."""
TextEmbedFn = Callable[[Sequence[str]], np.ndarray]
"""K texts -> (K, D) CLAP text embeddings."""
OnError = Literal["fail", "skip"]

VOCAL_TAGS: tuple[str, ...] = ("singing", "vocals", "rap", "spoken word")

# A rare instrument tag (fewer tracks than min_count) becomes its broader tag, where the
# taxonomy has one; otherwise it is dropped.
RARE_PARENT: dict[str, str] = {
    "violin": "strings", "cello": "strings", "harp": "strings",
    "acoustic-guitar": "guitar", "electric-guitar": "guitar", "electric-piano": "piano",
    "pad": "synthesizer", "trumpet": "brass", "horn": "brass", "marimba": "percussion",
    "vibraphone": "percussion",
}  # fmt: skip

_VISUAL_KEYS = ("video", "start", "end", "frames", "image")
_ITEM_KEYS = {"audio", "meta", "tags", *_VISUAL_KEYS}
_META_KEYS = {"title", "description", "bpm", "key", "lyrics", "artist", "source", "id"}


@dataclass(frozen=True)
class Thresholds:
    """Cosine-similarity thresholds per facet (calibrate on a labelled sample)."""

    mood: float = 0.25
    genre: float = 0.25
    instrument: float = 0.25
    vocal: float = 0.1  # the paper's value: any vocal tag above it drops the track
    max_moods: int = 2
    max_genres: int = 1
    max_instruments: int = 4

    @classmethod
    def from_file(cls, path: Path) -> Thresholds:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"cannot read thresholds {path}: {exc}") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise InvalidRequest(
                f"{path}: unknown thresholds {sorted(set(data) - known)}; known: {sorted(known)}"
            )
        return cls(**data)


def label_prompts() -> list[tuple[str, str, str]]:
    """(facet, tag, text prompt) for every label CLAP is asked about."""
    out: list[tuple[str, str, str]] = []
    for tag in taxonomy.MOODS:
        out.append(("mood", tag, f"{tag} music"))
    for tag in taxonomy.GENRES:
        out.append(("genre", tag, f"{tag.replace('-', ' ')} music"))
    for tag in taxonomy.INSTRUMENTS:
        out.append(("instrument", tag, f"music played on {tag.replace('-', ' ')}"))
    for tag in taxonomy.TEMPO_BUCKETS:
        out.append(("tempo", tag, f"music with a {tag} tempo"))
    for tag in VOCAL_TAGS:
        out.append(("vocal", tag, f"music with {tag}"))
    return out


@dataclass(frozen=True)
class TrackTags:
    moods: tuple[str, ...]
    genres: tuple[str, ...]
    instruments: tuple[str, ...]
    tempo: str
    bpm: float | None
    vocal: bool
    vocal_score: float

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrackTags:
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != known:
            raise InvalidRequest(f"'tags' must have exactly {sorted(known)}")
        seqs = {k: tuple(data[k]) for k in ("moods", "genres", "instruments")}
        return cls(**{**data, **seqs})


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Tagger:
    """CLAP zero-shot tagging over the taxonomy. Text embeddings are computed once."""

    def __init__(
        self, audio_fn: AudioEmbedFn, text_fn: TextEmbedFn, thresholds: Thresholds = Thresholds()
    ) -> None:
        self.audio_fn = audio_fn
        self.thresholds = thresholds
        self.labels = label_prompts()
        emb = np.asarray(text_fn([p for _, _, p in self.labels]), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(self.labels):
            raise InvalidRequest(
                f"text embedding function returned shape {emb.shape}; "
                f"expected ({len(self.labels)}, D)"
            )
        self.text = _unit(emb)

    def scores(self, audio: np.ndarray) -> dict[tuple[str, str], float]:
        a = _unit(np.asarray(audio, dtype=np.float32).reshape(-1))
        if a.shape[0] != self.text.shape[1]:
            raise InvalidRequest(
                f"audio embedding has {a.shape[0]} dims, text embeddings {self.text.shape[1]}"
            )
        sims = self.text @ a
        return {(f, t): float(s) for (f, t, _), s in zip(self.labels, sims, strict=True)}

    def tag(self, audio_path: Path, bpm: float | None = None) -> TrackTags:
        scores = self.scores(self.audio_fn(audio_path))
        th = self.thresholds

        def pick(facet: str, threshold: float, limit: int) -> tuple[str, ...]:
            ranked = sorted(
                ((s, t) for (f, t), s in scores.items() if f == facet and s >= threshold),
                reverse=True,
            )
            return tuple(t for _, t in ranked[:limit])

        if bpm is not None:
            tempo = taxonomy.normalise_tempo(float(bpm))[0]
        else:  # no measured tempo: CLAP's best guess
            tempo = max((s, t) for (f, t), s in scores.items() if f == "tempo")[1]
        vocal_score = max(s for (f, _), s in scores.items() if f == "vocal")
        return TrackTags(
            moods=pick("mood", th.mood, th.max_moods),
            genres=pick("genre", th.genre, th.max_genres),
            instruments=pick("instrument", th.instrument, th.max_instruments),
            tempo=tempo,
            bpm=float(bpm) if bpm is not None else None,
            vocal=vocal_score >= th.vocal,
            vocal_score=vocal_score,
        )


def merge_rare(tags: list[TrackTags], min_count: int) -> tuple[list[TrackTags], dict[str, str]]:
    """Instrument tags on fewer than `min_count` tracks -> their broader tag (or dropped).
    Returns the new tags and {rare tag: what it became ("" = dropped)}."""
    if min_count <= 1:
        return tags, {}
    counts = Counter(i for t in tags for i in t.instruments)
    merged = {i: RARE_PARENT.get(i, "") for i, c in counts.items() if c < min_count}
    out = []
    for t in tags:
        new: list[str] = []
        for i in t.instruments:
            name = merged.get(i, i)
            if name and name not in new:
                new.append(name)
        out.append(TrackTags(**{**asdict(t), "instruments": tuple(new)}))
    return out, merged


# ----------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Item:
    """One manifest line: audio, optional visual side (paths made absolute), metadata."""

    line: int
    audio: Path
    visual: dict[str, Any]
    meta: dict[str, Any]
    tags: TrackTags | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"audio": str(self.audio), **self.visual, "meta": self.meta}
        if self.tags is not None:
            out["tags"] = self.tags.to_json()
        return out


def _parse_item(raw: str, line: int, path: Path, need_tags: bool) -> Item:
    where = f"{path}:{line}"
    data = json_object(raw, where, _ITEM_KEYS)
    if not isinstance(data.get("audio"), str) or not data["audio"]:
        raise InvalidRequest(f"{where}: 'audio' must be a path")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise InvalidRequest(f"{where}: 'meta' must be an object")
    bad_meta = set(meta) - _META_KEYS - {"target_source"}
    if bad_meta:
        raise InvalidRequest(
            f"{where}: unknown meta keys {sorted(bad_meta)}; known: {sorted(_META_KEYS)}"
        )
    if meta.get("bpm") is not None:
        try:
            taxonomy.normalise_tempo(meta["bpm"])
        except InvalidRequest as exc:
            raise InvalidRequest(f"{where}: meta.bpm: {exc.message}") from None
    visual: dict[str, Any] = {}
    for key in _VISUAL_KEYS:
        if key in data:
            value = data[key]
            if key in ("video", "frames", "image"):
                if not isinstance(value, str) or not value:
                    raise InvalidRequest(f"{where}: '{key}' must be a path")
                value = str((path.parent / value).expanduser().resolve())
            visual[key] = value
    if sum(k in visual for k in ("video", "frames", "image")) > 1:
        raise InvalidRequest(f"{where}: give at most one of video, frames, image")
    tags = None
    if need_tags:
        if "tags" not in data:
            raise InvalidRequest(f"{where}: no 'tags' (run `vmb dataset tag` first)")
        try:
            tags = TrackTags.from_json(data["tags"])
        except (InvalidRequest, TypeError) as exc:
            raise InvalidRequest(f"{where}: {getattr(exc, 'message', exc)}") from None
    audio = (path.parent / data["audio"]).expanduser().resolve()
    return Item(line=line, audio=audio, visual=visual, meta=meta, tags=tags)


def read_items(
    path: Path, on_error: OnError = "fail", need_tags: bool = False
) -> tuple[list[Item], list[str]]:
    """Items of a manifest and the messages of lines skipped (with on_error="skip")."""
    return read_jsonl(
        path, lambda raw, n: _parse_item(raw, n, path, need_tags), on_error, "manifest"
    )


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)


@dataclass(frozen=True)
class TagReport:
    written: int
    dropped_vocal: tuple[str, ...]
    merged: dict[str, str]
    skipped: tuple[str, ...]


def tag_manifest(
    manifest: Path,
    out: Path,
    tagger: Tagger,
    min_count: int = 1,
    keep_vocal: bool = False,
    on_error: OnError = "fail",
    progress: ProgressFn = no_progress,
) -> TagReport:
    """Tag every track of a manifest; drop vocal tracks unless asked; merge rare tags."""
    items, skipped = read_items(manifest, on_error)
    kept: list[Item] = []
    tags: list[TrackTags] = []
    dropped: list[str] = []
    for n, item in enumerate(items):
        progress("tag", n, len(items))
        try:
            t = tagger.tag(item.audio, item.meta.get("bpm"))
        except (MediaError, InvalidRequest) as exc:
            if on_error == "fail":
                raise InvalidRequest(f"{manifest}:{item.line}: {exc.message}") from None
            skipped.append(f"{manifest}:{item.line}: {exc.message}")
            continue
        if t.vocal and not keep_vocal:
            dropped.append(f"{manifest}:{item.line}: {item.audio.name} (vocal {t.vocal_score:.3f})")
            continue
        kept.append(item)
        tags.append(t)
    tags, merged = merge_rare(tags, min_count)
    rows = [
        Item(i.line, i.audio, i.visual, i.meta, t).to_json()
        for i, t in zip(kept, tags, strict=True)
    ]
    _write_jsonl(out, rows)
    progress("tag", len(items), len(items))
    return TagReport(len(rows), tuple(dropped), merged, tuple(skipped))


# ----------------------------------------------------------------------------- CLAP wiring


def read_audio_48k(path: Path) -> np.ndarray:
    """Mono float32 at 48 kHz (CLAP's rate), via soundfile, resampled polyphase."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise MediaError(f"cannot read audio {path}: {exc}") from None
    mono = audio.mean(axis=1)
    if mono.size == 0:
        raise MediaError(f"{path} holds no audio")
    if sr != 48000:
        g = int(np.gcd(int(sr), 48000))
        mono = resample_poly(mono, 48000 // g, int(sr) // g).astype(np.float32)
    return mono


def clap_embedders(model_dir: Path) -> tuple[AudioEmbedFn, TextEmbedFn]:
    """The tagger's two functions on the installed CLAP encoder (engine.retrieve)."""
    from engine.retrieve.full.encoders.runtime import ClapEncoder

    enc = ClapEncoder(model_dir)
    return (lambda p: enc.embed_audio(read_audio_48k(p))), (lambda t: enc.embed_text(list(t)))


# ----------------------------------------------------------------------------- targets

SYSTEM_PROMPT = """You are a professional music expert who writes descriptions of music for \
a dataset that teaches a model to compose music for videos.
You are given tags produced by an audio tagger (mood, genre, instruments, tempo) and the \
metadata of one track (title, description, BPM, key, lyrics), any of which may be missing.
Write exactly one English sentence of 15 to 40 words that describes the music itself: its \
mood, genre, tempo or pace and main instruments, and the kind of scene or moment it suits.
Treat the tags as facts. Use the metadata only where it agrees with them, and ignore \
whatever is not about the sound: links, credits, promotions, biographies.
Do not name the artist, the title or any platform, do not quote lyrics, and do not mention \
tags, metadata or these instructions.
Example: An uplifting and catchy pop track, blending bass, synthesizer, drums which is \
perfect for nostalgic and fun moments.
Answer with the sentence only."""

_TEMPO_WORDS = {"fast": "fast-paced", "medium": "mid-tempo", "slow": "slow"}
_PREFIX = re.compile(r"^(?:description|sentence|answer|summary)\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_META_LIMITS = {"title": 120, "description": 500, "lyrics": 200, "key": 20, "artist": 80}


def user_message(tags: TrackTags, meta: dict[str, Any]) -> str:
    """The facts of one track, as the LLM reads them."""
    tempo = tags.tempo + (f" ({tags.bpm:g} BPM)" if tags.bpm else "")
    lines = [
        "Tags:",
        f"- mood: {', '.join(tags.moods) or 'unknown'}",
        f"- genre: {', '.join(tags.genres) or 'unknown'}",
        f"- instruments: {', '.join(i.replace('-', ' ') for i in tags.instruments) or 'unknown'}",
        f"- tempo: {tempo}",
        "Metadata:",
    ]
    shown = 0
    for key in ("title", "description", "key", "lyrics"):
        value = meta.get(key)
        if value:
            text = clean_text(str(value))[: _META_LIMITS[key]]
            lines.append(f"- {key}: {text}")
            shown += 1
    if not shown:
        lines.append("- none")
    return "\n".join(lines)


def template_sentence(tags: TrackTags) -> str:
    """A sentence from the tags alone (when no LLM answer is usable); it parses back to them."""
    mood = tags.moods[0] if tags.moods else ""
    genre = tags.genres[0] if tags.genres else ""
    words = [_TEMPO_WORDS[tags.tempo], mood, genre.replace("-", " "), "track"]
    head = " ".join(w for w in words if w)
    article = "An" if head[0] in "aeiou" else "A"
    inst = [i.replace("-", " ") for i in tags.instruments]
    if len(inst) > 1:
        body = f" featuring {', '.join(inst[:-1])} and {inst[-1]}"
    elif inst:
        body = f" featuring {inst[0]}"
    else:
        body = ""
    bpm = f" at about {tags.bpm:g} BPM" if tags.bpm else ""
    return f"{article} {head}{body}{bpm}."


def clean_sentence(raw: str) -> str | None:
    """The LLM's first sentence, tidied; None when it is not a usable description."""
    for line in raw.splitlines():
        text = clean_text(_PREFIX.sub("", clean_text(line)))
        if not text:
            continue
        text = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
        if len(text.split()) < 5 or len(text) > MAX_TEXT_CHARS:
            return None
        return text
    return None


class DescriptionWriter:
    """An instruct LLM from a local folder (AutoModelForCausalLM), loaded strictly."""

    def __init__(self, folder: Path, device: str = "auto", max_new_tokens: int = 80) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from engine.describe.full.internvl import pick_device, pick_dtype, quiet_transformers

        quiet_transformers()
        if not (folder / "config.json").is_file():
            raise WeightsError(f"{folder} is not a model folder (no config.json)")
        self.device = pick_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.model, info = AutoModelForCausalLM.from_pretrained(
                str(folder),
                local_files_only=True,
                dtype=pick_dtype(self.device),
                output_loading_info=True,
            )
        except (OSError, ValueError) as exc:
            raise WeightsError(f"cannot load the language model in {folder}: {exc}") from None
        problems = {k: sorted(map(str, v)) for k, v in info.items() if v}
        if problems:
            raise WeightsError(f"{folder}: weights do not match the config: {problems}")
        if len(self.tokenizer) < 10:
            raise WeightsError(f"the tokenizer in {folder} is empty")
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens

    def prompt(self, tags: TrackTags, meta: dict[str, Any]) -> str:
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_message(tags, meta)},
        ]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return f"{SYSTEM_PROMPT}\n\n{messages[1]['content']}\n\nDescription:"

    def write(
        self, tags: TrackTags, meta: dict[str, Any], seed: int, temperature: float = 0.0
    ) -> tuple[str, Literal["llm", "template"]]:
        """(sentence, where it came from): greedy by default (reproducible targets)."""
        import torch

        from engine.describe.full.internvl import seeded

        enc = self.tokenizer(self.prompt(tags, meta), return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        sample = temperature > 0
        kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": self.max_new_tokens}
        if sample:
            kwargs.update(temperature=temperature, top_k=50, top_p=1.0)
        pad = self.tokenizer.pad_token_id
        kwargs["pad_token_id"] = pad if pad is not None else self.tokenizer.eos_token_id
        with seeded(self.device, seed), torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        raw = self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        sentence = clean_sentence(raw)
        return (sentence, "llm") if sentence else (template_sentence(tags), "template")


@dataclass(frozen=True)
class TargetsReport:
    written: int
    from_llm: int
    from_template: int
    skipped: tuple[str, ...]


def build_targets(
    tagged: Path,
    out: Path,
    writer: Callable[[TrackTags, dict[str, Any], int], tuple[str, str]],
    seed: int = 0,
    on_error: OnError = "fail",
    progress: ProgressFn = no_progress,
) -> TargetsReport:
    """Training lines (visual side + description + provenance) for every tagged item."""
    items, skipped = read_items(tagged, on_error, need_tags=True)
    rows: list[dict[str, Any]] = []
    sources: Counter[str] = Counter()
    for n, item in enumerate(items):
        progress("targets", n, len(items))
        if not any(k in item.visual for k in ("video", "frames", "image")):
            msg = f"{tagged}:{item.line}: no video, frames or image: not a training pair"
            if on_error == "fail":
                raise InvalidRequest(msg)
            skipped.append(msg)
            continue
        assert item.tags is not None
        sentence, source = writer(item.tags, item.meta, seed + n)
        sources[source] += 1
        rows.append(
            {
                **item.visual,
                "description": sentence,
                "audio": str(item.audio),
                "tags": item.tags.to_json(),
                "meta": {**item.meta, "target_source": source},
            }
        )
    _write_jsonl(out, rows)
    progress("targets", len(items), len(items))
    return TargetsReport(len(rows), sources["llm"], sources["template"], tuple(skipped))


# ----------------------------------------------------------------------------- tiny LLM

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def write_tiny_llm(out_dir: Path, seed: int) -> None:
    """A tiny random Qwen2 chat model (tests, benchmarks): the targets tool's local LLM."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from engine.describe.full.internvl import seeded
    from engine.describe.full.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = CHATML_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=2048,
        tie_word_embeddings=True,
    )  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    with seeded(torch.device("cpu"), seed):
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
