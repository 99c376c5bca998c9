"""Dataset tools: CLAP-style tagging (deterministic embedding functions stand in for CLAP),
vocal drop, rare-tag merge, LLM targets on a tiny random local model, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bridge.errors import InvalidRequest, MediaError
from engine.cli import main
from engine.describe.full.parse import parse_description
from engine.train import dataset
from engine.train import mmdm as train

PROMPTS = [p for _, _, p in dataset.label_prompts()]
INDEX = {(f, t): i for i, (f, t, _) in enumerate(dataset.label_prompts())}
DIM = len(PROMPTS) + 1  # one extra axis: "everything else" in the audio

TRACKS = {  # cosine similarity each track should have with each label
    "a.wav": {("mood", "happy"): 0.5, ("mood", "fun"): 0.3, ("mood", "sad"): 0.1,
              ("genre", "pop"): 0.4, ("genre", "rock"): 0.3, ("instrument", "drums"): 0.35,
              ("instrument", "bass"): 0.3, ("instrument", "violin"): 0.26,
              ("tempo", "fast"): 0.2, ("vocal", "vocals"): 0.05},
    "b.wav": {("mood", "happy"): 0.5, ("genre", "pop"): 0.5, ("vocal", "singing"): 0.2},
    "c.wav": {("mood", "calm"): 0.4, ("genre", "ambient"): 0.3, ("instrument", "piano"): 0.4,
              ("instrument", "bass"): 0.3, ("tempo", "fast"): 0.3},
}  # fmt: skip


def text_fn(texts: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), np.float32)
    for row, text in enumerate(texts):
        out[row, PROMPTS.index(text)] = 1.0
    return out


def audio_fn(path: Path) -> np.ndarray:
    if path.name not in TRACKS:
        raise MediaError(f"cannot read audio {path}")
    v = np.zeros(DIM, np.float32)
    for label, cos in TRACKS[path.name].items():
        v[INDEX[label]] = cos
    v[-1] = np.sqrt(1.0 - float((v**2).sum()))
    return v


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(tmp_path / f"{name}.png")
    rows = [
        {"audio": "a.wav", "image": "a.png", "meta": {"title": "Sunny", "description":
         "Check out my channel! Happy summer pop.", "key": "C major"}},
        {"audio": "b.wav", "image": "b.png"},
        {"audio": "c.wav", "image": "c.png", "meta": {"bpm": 80}},
    ]  # fmt: skip
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_tagging_thresholds_vocal_drop_and_rare_merge(manifest: Path, tmp_path: Path) -> None:
    tagger = dataset.Tagger(audio_fn, text_fn)
    a = tagger.tag(manifest.parent / "a.wav")
    assert a.moods == ("happy", "fun") and a.genres == ("pop",)
    assert a.instruments == ("drums", "bass", "violin") and a.tempo == "fast" and not a.vocal
    assert tagger.tag(manifest.parent / "b.wav").vocal  # singing at 0.2 >= 0.1
    c = tagger.tag(manifest.parent / "c.wav", bpm=80)
    assert c.tempo == "slow" and c.bpm == 80.0  # a known BPM beats CLAP's tempo guess

    out = tmp_path / "tagged.jsonl"
    report = dataset.tag_manifest(manifest, out, tagger, min_count=2)
    assert (
        report.written == 2
        and len(report.dropped_vocal) == 1
        and "b.wav" in report.dropped_vocal[0]
    )
    assert report.merged == {"violin": "strings", "drums": "", "piano": ""}
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["tags"]["instruments"] == ["bass", "strings"]
    assert Path(rows[0]["image"]).is_absolute() and Path(rows[0]["audio"]).name == "a.wav"
    assert rows[1]["meta"] == {"bpm": 80}


def test_bad_manifest_lines_and_unreadable_audio(manifest: Path, tmp_path: Path) -> None:
    lines = manifest.read_text().splitlines()
    lines.insert(1, '{"audio": "x.wav", "lyrics": "la"}')
    lines.append('{"audio": "missing.wav"}')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    tagger = dataset.Tagger(audio_fn, text_fn)
    with pytest.raises(InvalidRequest, match=r"bad\.jsonl:2: unknown keys \['lyrics'\]"):
        dataset.tag_manifest(bad, tmp_path / "o.jsonl", tagger)
    report = dataset.tag_manifest(bad, tmp_path / "o.jsonl", tagger, on_error="skip")
    assert report.written == 2
    assert [m.split(": ")[0].rsplit(":", 1)[1] for m in report.skipped] == ["2", "5"]
    (tmp_path / "t.json").write_text('{"mood": 0.3, "tempo": 0.1}')
    with pytest.raises(InvalidRequest, match="unknown thresholds"):
        dataset.Thresholds.from_file(tmp_path / "t.json")
    (tmp_path / "t.json").write_text('{"mood": 0.3, "vocal": 0.2}')
    assert dataset.Thresholds.from_file(tmp_path / "t.json").vocal == 0.2


def test_template_sentence_parses_back_to_its_tags() -> None:
    tags = dataset.TrackTags(("uplifting",), ("hip-hop",), ("electric-piano", "drums", "bass"),
                             "fast", 140.0, False, 0.0)  # fmt: skip
    sentence = dataset.template_sentence(tags)
    assert sentence == (
        "A fast-paced uplifting hip hop track featuring electric piano, drums and bass at "
        "about 140 BPM."
    )
    attrs = parse_description(sentence)
    assert (attrs.mood, attrs.genre, attrs.tempo_bucket, attrs.bpm) == ("uplifting", "hip-hop",
                                                                      "fast", 140.0)  # fmt: skip
    assert attrs.instruments == ("electric-piano", "drums", "bass")


def test_clean_sentence() -> None:
    assert (
        dataset.clean_sentence(
            '\n "Description: A calm piano piece for rainy evenings. Another sentence."'
        )
        == "A calm piano piece for rainy evenings."
    )
    assert dataset.clean_sentence("ok then") is None
    assert dataset.clean_sentence("\n\n") is None


def test_targets_with_a_tiny_local_llm_feed_training(manifest: Path, tmp_path: Path) -> None:
    tagged = tmp_path / "tagged.jsonl"
    dataset.tag_manifest(manifest, tagged, dataset.Tagger(audio_fn, text_fn))
    llm = tmp_path / "llm"
    dataset.write_tiny_llm(llm, seed=0)
    writer = dataset.DescriptionWriter(llm, device="cpu", max_new_tokens=12)
    tags = dataset.TrackTags.from_json(json.loads(tagged.read_text().splitlines()[0])["tags"])
    prompt = writer.prompt(tags, {"title": "Sunny", "lyrics": "la " * 200})
    assert prompt.startswith("<|im_start|>system\nYou are a professional music expert")
    assert "- mood: happy, fun" in prompt and "- title: Sunny" in prompt
    assert prompt.endswith("<|im_start|>assistant\n") and len(prompt) < 3000
    assert writer.write(tags, {}, seed=3) == writer.write(tags, {}, seed=3)  # greedy

    out = tmp_path / "train.jsonl"
    report = dataset.build_targets(tagged, out, lambda t, m, s: writer.write(t, m, s))
    assert report.written == 2 and report.from_llm + report.from_template == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["description"] and r["meta"]["target_source"] in ("llm", "template") for r in rows)
    examples, skipped = train.read_examples(out)  # the trainer reads what targets wrote
    assert len(examples) == 2 and not skipped and examples[0].source == "image"


def test_read_audio_resamples_to_48k(tmp_path: Path) -> None:
    import soundfile as sf

    sf.write(tmp_path / "t.wav", np.zeros((22050, 2), np.float32), 22050)
    assert dataset.read_audio_48k(tmp_path / "t.wav").shape == (48000,)
    (tmp_path / "x.wav").write_text("nope")
    with pytest.raises(MediaError):
        dataset.read_audio_48k(tmp_path / "x.wav")


def test_cli_dataset_tag_and_targets(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(dataset, "clap_embedders", lambda model_dir: (audio_fn, text_fn))
    tagged, out, llm = tmp_path / "tagged.jsonl", tmp_path / "train.jsonl", tmp_path / "llm"
    assert main(["dataset", "tag", str(manifest), "--out", str(tagged), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dropped_vocal"] == 1
    dataset.write_tiny_llm(llm, seed=0)
    code = main(["dataset", "targets", str(tagged), "--llm", str(llm), "--out", str(out),
                 "--device", "cpu", "--max-new-tokens", "8", "--json"])  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["written"] == 2
    assert main(["dataset", "targets", str(manifest), "--llm", str(llm), "--out", str(out)]) == 2
    assert "no 'tags'" in capsys.readouterr().err


def test_cli_tag_on_the_installed_tiny_clap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real wiring: engine.retrieve's CLAP encoder (tiny, random weights) + audio files."""
    import soundfile as sf

    from engine import weights

    models = tmp_path / "models"
    weights.write_tiny(models, ["clap-music"], seed=0)
    tone = 0.1 * np.sin(np.arange(44100 * 2) / 44100 * 2 * np.pi * 440)
    sf.write(tmp_path / "a.wav", tone.astype(np.float32), 44100)
    (tmp_path / "m.jsonl").write_text('{"audio": "a.wav", "meta": {"bpm": 128}}\n')
    out = tmp_path / "tagged.jsonl"
    args = ["dataset", "tag", str(tmp_path / "m.jsonl"), "--out", str(out), "--keep-vocal",
            "--model-dir", str(models), "--json"]  # fmt: skip
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 1
    tags = json.loads(out.read_text())["tags"]
    assert tags["tempo"] == "medium" and tags["bpm"] == 128.0
