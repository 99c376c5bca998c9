"""`vmb eval`: the report from generated audio, and the bad inputs it must explain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import cli

SR = 44100


def write_set(folder: Path, kind: str, ids: list[str], seconds: float = 2.5) -> Path:
    """A few short WAVs: stereo chords (``tones``) or mono noise (``noise``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(ids) + len(kind))
    t = np.arange(int(seconds * SR)) / SR
    for k, i in enumerate(ids):
        if kind == "tones":
            f = 220.0 * (1 + 0.25 * k)
            x = 0.3 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 1.5 * f * t)
            sf.write(folder / f"{i}.wav", np.stack([x, 0.8 * x], axis=1), SR)
        else:
            sf.write(folder / f"{i}.flac", rng.normal(0, 0.2, t.size), SR)
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["eval", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_from_generated_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = ["cue-a", "cue-b", "cue-c"]
    gen = write_set(tmp_path / "gen", "tones", ids)
    ref = write_set(tmp_path / "ref", "noise", ids)
    out = tmp_path / "report"
    code, stdout, _ = run(
        capsys, "--generated", str(gen), "--reference", str(ref), "--out", str(out)
    )
    assert code == 0, stdout
    assert "FD_aisfx" in stdout and "KL_aisfx" in stdout and "report.html" in stdout

    data = json.loads((out / "report.json").read_text())
    fd, kl = data["metrics"]["fd_aisfx"], data["metrics"]["kl_aisfx"]
    assert fd["value"] > 0 and fd["model"]["weights"] == "real"
    assert fd["details"]["generated_frames"] == 3 and fd["details"]["rank_deficient"]
    assert set(kl["per_file"]) == set(ids) and kl["value"] == pytest.approx(
        np.mean(list(kl["per_file"].values()))
    )
    # the paper's models are not installed here: auto mode says why each was skipped
    assert "pip install openl3" in data["skipped"]["fd_openl3"]
    assert "hear21passt" in data["skipped"]["kl_passt"]
    assert "--text" in data["skipped"]["clap_score"]
    assert [f["file_id"] for f in data["files"]] == ids
    assert data["files"][0]["generated_s"] == pytest.approx(2.5)

    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # metric bars + embedding scatter
    assert "cue-b" in html and "FD_aisfx" in html and "skipped kl_passt" in html
    for png in ("metrics.png", "embeddings.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clap_score_with_tiny_random_clap(
    tiny_clap_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tiny_clap_dir
    gen = write_set(tmp_path / "gen", "tones", ["a", "b"])
    csv = tmp_path / "texts.csv"
    csv.write_text('id,text\na,"a calm piano piece"\nb.wav,fast rock with drums\n')
    out = tmp_path / "report"
    code, stdout, stderr = run(
        capsys, "--generated", str(gen), "--text", str(csv), "--metrics", "clap_score",
        "--model-dir", str(model_dir), "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)
    clap = data["metrics"]["clap_score"]
    assert clap["model"]["weights"] == "random" and clap["unit"] == "x100"
    assert set(clap["per_file"]) == {"a", "b"}
    assert all(-100.0 <= v <= 100.0 for v in clap["per_file"].values())
    assert any("random weights" in n for n in data["notes"])


def test_mismatched_folders_name_the_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = write_set(tmp_path / "gen", "tones", ["a", "b", "c"], seconds=0.5)
    ref = write_set(tmp_path / "ref", "noise", ["a", "b", "d", "e"], seconds=0.5)
    code, _, err = run(
        capsys, "--generated", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "has 3 files" in err and "has 4" in err
    assert (
        "only in generated: c" in err and "only in reference: d, e" in err and "--unpaired" in err
    )


def test_unreadable_audio_is_a_media_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = write_set(tmp_path / "gen", "tones", ["a", "b"], seconds=0.5)
    ref = write_set(tmp_path / "ref", "noise", ["a"], seconds=0.5)
    (ref / "b.wav").write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file")
    code, _, err = run(
        capsys, "--generated", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o")
    )
    assert code == 1
    assert "b.wav" in err and "cannot read audio" in err


def test_too_few_frames_for_a_covariance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = write_set(tmp_path / "gen", "tones", ["a"], seconds=1.0)
    ref = write_set(tmp_path / "ref", "noise", ["z"], seconds=1.0)
    code, _, err = run(
        capsys, "--generated", str(gen), "--reference", str(ref), "--unpaired",
        "--metrics", "fd_aisfx", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert "1 embedding frame" in err and "at least 2" in err and "N - 1" in err


def test_missing_weights_for_a_chosen_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = write_set(tmp_path / "gen", "tones", ["a"], seconds=0.5)
    ref = write_set(tmp_path / "ref", "noise", ["a"], seconds=0.5)
    common = ["--generated", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o")]
    code, _, err = run(capsys, *common, "--metrics", "fd_openl3", "--model-dir", str(tmp_path))
    assert code == 1
    assert "fd_openl3 needs the openl3 model" in err and "pip install openl3==0.4.2" in err
    code, _, err = run(
        capsys, *common, "--metrics", "clap_score", "--text", str(tmp_path / "t.csv")
    )
    assert code == 2 and "t.csv" in err
    code, _, err = run(capsys, *common, "--metrics", "clap_score")
    assert code == 2 and "needs --text" in err
    code, _, err = run(capsys, *common, "--metrics", "kl_aisfx", "--unpaired")
    assert code == 2 and "cannot run --unpaired" in err
    code, _, err = run(capsys, *common, "--metrics", "fad")
    assert code == 2 and "unknown metric fad" in err
