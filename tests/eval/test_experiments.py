"""The controllability experiments on real draft cues, `vmb bench tempo`, and `vmb bench all`
going on past a broken benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bridge.errors import WeightsError
from engine import bench, cli, taxonomy
from engine.config import load_settings
from engine.eval import embedders
from engine.eval import experiments as ex


@pytest.fixture(scope="module")
def draft() -> object:
    from engine.generate.draft.generator import (
        DraftGenerator,  # the real draft backend, not a stand-in
    )

    return DraftGenerator(load_settings().draft)


def test_tempo_experiment_on_draft_cues(draft: object, tmp_path: Path) -> None:
    result = ex.run_tempo_experiment(draft, clips=1, variations=1, work_dir=tmp_path)
    assert [r.bucket for r in result.rows] == ["fast", "medium", "slow"]
    assert result.backend == "draft" and result.weights == "none" and len(result.cues) == 3
    for cue in result.cues:
        lo, hi = taxonomy.TEMPO_BUCKETS[cue.bucket]
        assert cue.intended_bpm is not None and lo <= cue.intended_bpm < hi
        assert cue.measured_bpm == pytest.approx(cue.intended_bpm, rel=0.03)
    assert not list(tmp_path.glob("*.wav"))  # cues are discarded unless asked to keep them
    table = result.to_markdown()
    for paper in ("143.55", "122.64", "93.88"):
        assert paper in table
    data = result.to_json()
    assert data["paper"] == ex.PAPER_TEMPO_BPM and data["rows"][0]["cues"] == 1


def test_tempo_experiment_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tempo"
    argv = ["eval", "tempo-experiment", "--clips", "1", "--variations", "1", "--out", str(out)]
    assert cli.main([*argv, "--keep-audio"]) == 0
    printed = capsys.readouterr().out
    assert "| Fast | 143.55 |" in printed and "| Slow | 93.88 |" in printed
    assert (out / "tempo.md").read_text() in printed
    assert json.loads((out / "tempo.json").read_text())["experiment"] == "tempo"
    assert (
        len(list((out / "cues").glob("*.wav"))) == 3
        and len(list((out / "cues").glob("*.mid"))) == 3
    )


def test_full_backend_without_weights_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="full backend cannot run"):
        ex.make_generator("full", load_settings())


def test_attribute_experiment_needs_clap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["eval", "attribute-experiment", "--model-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    assert "vmb models download clap-music" in capsys.readouterr().err


def test_attribute_experiment_with_tiny_random_clap(
    draft: object, tiny_clap_dir: Path, tmp_path: Path
) -> None:
    """The code path end to end (random CLAP: the deltas are meaningless, and say so)."""
    clap = embedders.load("clap", tiny_clap_dir)
    result = ex.run_attribute_experiment(
        draft, clap, clips=1, variations=1, work_dir=tmp_path / "cues", facets=("mood",),
        clip_seconds=(3.0, 3.0),
    )  # fmt: skip
    (row,) = result.rows
    assert row.facet == "mood" and row.pairs == 3 and row.cues == 6 and row.paper_delta == 4.14
    assert -200.0 <= row.delta <= 200.0
    assert "| Mood | +4.14 |" in result.to_markdown()
    assert result.clap["weights"] == "random" and "random weights" in result.notes[0]


def test_bench_tempo_quick(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ex, "QUICK_CLIPS", 1)
    monkeypatch.setattr(ex, "QUICK_VARIATIONS", 1)
    assert cli.main(["bench", "tempo", "--quick", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [f["name"] for f in data["figures"]]
    assert "tempo fast: mean BPM" in names and "draft cue generation" in names
    fast = next(f for f in data["figures"] if f["name"] == "tempo fast: mean BPM")
    assert fast["target"] == "paper 143.55" and fast["ok"] is True
    assert any("no GPU here" in n for n in data["notes"])


def test_bench_all_reports_a_failing_benchmark_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def good(opts: argparse.Namespace) -> dict:
        return {
            "name": "good",
            "figures": [bench.figure("speed", 1.5, "x", ">= 1", True)],
            "notes": ["n1"],
        }

    def broken(opts: argparse.Namespace) -> dict:
        raise RuntimeError("boom")

    funcs = {"broken": broken, "good": good}
    monkeypatch.setattr(bench, "BENCHES", dict.fromkeys(funcs, "unused:unused"))
    monkeypatch.setattr(bench, "load", lambda name: funcs[name])
    assert cli.main(["bench", "all"]) == 1  # a broken benchmark fails the run
    out = capsys.readouterr().out
    assert out.count("== bench all") == 1
    assert "broken     ERROR: RuntimeError: boom" in out
    assert "good       speed" in out and ">= 1" in out and "ok" in out and "note (good): n1" in out
    assert cli.main(["bench", "all", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in data["benchmarks"]] == ["broken", "good"]
    assert data["benchmarks"][0]["error"] == "RuntimeError: boom"
