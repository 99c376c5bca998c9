"""`conform` on a real re-edit: an old cut rendered by the draft backend (a continuous run),
a new cut with one shot trimmed, one deleted, one split by an inserted one (the shots after
it move as a block), and a marker moved; checked on the stems: kept ones byte-identical,
moved ones the same samples at their new BWF position, re-fitted ones of the new length in
the same key and tempo (measured on the audio) hitting the new marker, the run still one
piece, and the change list."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf

from bridge import timeline as tl
from bridge.errors import InvalidRequest, TimelineError
from engine.bench.hits import stem_hit_share
from engine.config import load_settings
from engine.eval.boundary import boundary_dips
from engine.eval.tempo import estimate_tempo
from engine.retrieve import dsp
from engine.score import bwf
from engine.score.conform import parse_conform_params, run_conform
from engine.score.deliver import thumbnails_of
from engine.score.soundtrack import parse_soundtrack_params, render_soundtrack
from engine.serve.kinds import JobContext
from support.media import color_clip, draft_config, tiny_library

RATE = 24
OLD = [("s1", 0, 2), ("s2", 2, 8), ("s3", 8, 10), ("s4", 10, 18), ("s5", 18, 20), ("s6", 20, 22)]
NEW = [  # s2's tail trimmed by 1 s, s3 deleted, s4 split by x inserted; s5, s6 move up 1 s
    ("s1", 0, 2),
    ("s2", 2, 7),
    ("s4a", 10, 14),
    ("x", 23, 25),
    ("s4b", 14, 18),
    ("s5", 18, 20),
    ("s6", 20, 22),
]


def cue(a: float, b: float) -> str:
    return tl.cue_id(a, b, RATE)


EXPECTED = [  # (change, new cue, old cue)
    ("kept", cue(0, 2), cue(0, 2)),
    ("re-fitted", cue(2, 7), cue(2, 8)),
    ("re-fitted", cue(7, 11), cue(10, 18)),
    ("new", cue(11, 13), None),
    ("re-fitted", cue(13, 17), cue(10, 18)),
    ("moved", cue(17, 19), cue(18, 20)),  # follows on from part 2 of s4 as it did from s4
    ("moved", cue(19, 21), cue(20, 22)),
    ("removed", None, cue(8, 10)),
]


def _cut(clip: Path, path: Path, shots: list, marker_s: float) -> Path:
    timeline = otio.schema.Timeline(name="re-edit")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, a, b in shots:
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(
                    target_url=otio.url_utils.url_from_filepath(str(clip))
                ),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(round(a * RATE), RATE),
                    otio.opentime.RationalTime(round((b - a) * RATE), RATE),
                ),
            )
        )
    timeline.tracks.append(track)
    at = otio.opentime.RationalTime(round(marker_s * RATE), RATE)
    timeline.tracks.markers.append(
        otio.schema.Marker(name="door", marked_range=otio.opentime.TimeRange(at))
    )
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _ctx(settings: Any, out: Path, seed: int) -> JobContext:
    out.mkdir(parents=True, exist_ok=True)
    return JobContext("job", seed, 1, out, out, settings, lambda *a: None, lambda: False)


@pytest.fixture(scope="module")
def edit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The old cut rendered, the new cut conformed (once for the module)."""
    root = tmp_path_factory.mktemp("conform")
    home = root / "home"
    home.mkdir()
    draft_config(home, tiny_library(root / "lib"))
    settings = load_settings(home)
    colours = ["navy", "orange", "green", "red", "purple", "yellow", "gray", "white", "black"]
    colours += ["teal", "maroon", "olive", "pink"]
    clip = color_clip(root / "rushes.mp4", [(c, 2.0) for c in colours])
    old_cut = _cut(clip, root / "old.otio", OLD, marker_s=5.0)  # inside s2
    new_cut = _cut(clip, root / "new.otio", NEW, marker_s=4.0)  # inside s2, moved
    params = parse_soundtrack_params(
        {
            "timeline": str(old_cut),
            "min_length_s": 1.0,
            "continuous": True,
            "backend": "draft",
            "knobs": {"genre": "pop", "energy": "high"},
        },
        settings,
    )
    old = render_soundtrack(params, _ctx(settings, root / "old", 5))
    request = {"old_otio": str(root / "old" / "scored.otio"), "timeline": str(new_cut)}
    result = run_conform(parse_conform_params(request, settings), _ctx(settings, root / "new", 9))
    return {"root": root, "settings": settings, "old": old, "new": result, "new_cut": new_cut}


def _rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["cue_id"]: c for c in result["cues"]}


def test_the_change_list(edit: dict[str, Any]) -> None:
    result = edit["new"]
    got = [(c["change"], c["cue_id"], c["from_cue"]) for c in result["changes"]]
    assert got == EXPECTED
    reasons = {c["cue_id"] or c["from_cue"]: c["reason"] for c in result["changes"]}
    assert "tail trimmed by 1.00 s" in reasons[cue(2, 7)]
    assert "markers changed" in reasons[cue(2, 7)]
    assert reasons[cue(17, 19)] == "moved from 18.00-20.00 s by -1.00 s (shots s5)"
    assert reasons[cue(8, 10)] == "its shots are not in the new cut: s3"
    whole = "the old cue at 10.00-18.00 s"
    assert reasons[cue(7, 11)].startswith(f"part 1 of 2 of {whole}; shot s4 tail")
    assert reasons[cue(13, 17)].startswith(f"part 2 of 2 of {whole}; shot s4 head")
    shots = {s["clip"]: s["change"] for s in result["shots"]}
    assert shots == {
        "s1": "unchanged",
        "s2": "trimmed",
        "s3": "deleted",
        "s4": "split",
        "s5": "moved",
        "s6": "moved",
        "x": "inserted",
    }
    assert result["summary"] == {
        "kept": 1, "moved": 2, "re-fitted": 3, "new": 1, "removed": 1, "rendered": 4
    }  # fmt: skip
    assert [c["change"] for c in result["cues"]] == [c for c, _, _ in EXPECTED[:-1]]


def test_kept_stems_are_the_same_bytes_and_moved_ones_the_same_samples(
    edit: dict[str, Any],
) -> None:
    root = edit["root"]
    for change, new_id, old_id in EXPECTED:
        if change == "kept":
            assert (root / "new" / f"{new_id}.wav").read_bytes() == (
                root / "old" / f"{old_id}.wav"
            ).read_bytes()
        if change == "moved":
            moved, sr = sf.read(root / "new" / f"{new_id}.wav", dtype="int32")
            was, _ = sf.read(root / "old" / f"{old_id}.wav", dtype="int32")
            assert np.array_equal(moved, was)
            new_in = _rows(edit["new"])[new_id]["record_in_s"]
            assert bwf.read(root / "new" / f"{new_id}.wav")["time_reference"] == round(new_in * sr)


def _measured(path: Path) -> tuple[float, str | None, int]:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    key = dsp.analyse_audio(mono, sr, loop=True)
    return estimate_tempo(mono, sr, bpm_range=(60, 180)).bpm, f"{key.key} {key.mode}", len(audio)


_PITCHES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def _fifths(key: str) -> set[str]:
    """The key and its fifth neighbours (IV, V): what a key estimate on a few seconds of
    one key's music confuses it with (the same chords)."""
    tonic, mode = key.split()
    at = _PITCHES.index(tonic)
    return {f"{_PITCHES[(at + step) % 12]} {mode}" for step in (0, 5, 7)}


def _pitch_profile(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    profile = dsp.chroma(dsp.to_analysis_rate(audio.mean(axis=1), sr))
    return (profile - profile.mean()) / (profile.std() + 1e-9)


def _untransposed_share(new: Path, old: Path) -> float:
    """How well the new stem's pitch classes line up with the old one's untransposed, as a
    share of the best transposition's fit, measured on the audio: 1 when the re-fit kept the
    key. A few seconds of the same key can favour a neighbouring shift by a hair (4 s of other
    chords: 0.95); a transposed re-fit puts the untransposed fit far under the best (seen
    0.1-0.6 for the other shifts of these stems)."""
    a, b = _pitch_profile(new), _pitch_profile(old)
    scores = [float(np.dot(np.roll(a, -k), b)) for k in range(12)]
    return scores[0] / max(scores)


def test_refitted_stems_have_the_new_length_same_key_and_tempo(edit: dict[str, Any]) -> None:
    root, old_rows, new_rows = edit["root"], _rows(edit["old"]), _rows(edit["new"])
    for change, new_id, old_id in EXPECTED:
        if change != "re-fitted":
            continue
        new, old = new_rows[new_id], old_rows[old_id]
        bpm, key, n = _measured(root / "new" / f"{new_id}.wav")
        old_bpm, old_key, _ = _measured(root / "old" / f"{old_id}.wav")
        assert n == round((new["record_out_s"] - new["record_in_s"]) * new["sample_rate"])
        played = f"{new['extra']['key']} {new['extra']['mode']}"  # what the generator played
        assert played == f"{old['extra']['key']} {old['extra']['mode']}"
        assert key == old_key or {key, old_key} <= _fifths(played), (key, old_key, played)
        share = _untransposed_share(root / "new" / f"{new_id}.wav", root / "old" / f"{old_id}.wav")
        assert share >= 0.9, share
        assert abs(bpm / old_bpm - 1) < 0.04, (bpm, old_bpm)
        assert new["seed"] == old["seed"]
        assert new["description"] == old["description"]
        assert new["attributes"]["key"] == old["attributes"]["key"]


def test_refitted_cue_hits_the_moved_marker(edit: dict[str, Any]) -> None:
    root = edit["root"]
    assert stem_hit_share(root / "new" / f"{cue(2, 7)}.wav", [2.0]) == 1.0  # 4.0 s on the cut
    assert stem_hit_share(root / "old" / f"{cue(2, 8)}.wav", [3.0]) == 1.0  # 5.0 s before


def test_the_run_stays_one_piece(edit: dict[str, Any]) -> None:
    cues = edit["new"]["cues"]
    assert [c["extra"]["ending"] for c in cues] == ["none"] * 6 + ["ring"]
    mix, sr = sf.read(edit["root"] / "new" / "soundtrack.wav", always_2d=True)
    assert len(mix) == round(21.0 * sr)
    dips = boundary_dips(mix, sr, [2.0, 7.0, 11.0, 13.0, 17.0, 19.0])
    assert all(d["dip_db"] > -10.0 for d in dips), dips


def test_the_scored_otio_and_cue_sheet_say_where_each_cue_came_from(
    edit: dict[str, Any],
) -> None:
    root = edit["root"]
    takes = {t["cue_id"]: t for t in tl.score_takes(tl.read_timeline(root / "new" / "scored.otio"))}
    refit = takes[cue(2, 7)]
    assert refit["conform"]["change"] == "re-fitted"
    assert refit["conform"]["from_cue"] == cue(2, 8)
    assert refit["take"] == 2 and refit["takes"][0]["cue_id"] == cue(2, 8)
    assert takes[cue(0, 2)]["take"] == 1 and takes[cue(0, 2)]["conform"]["change"] == "kept"
    with (root / "new" / "cue-sheet.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["Changes"] == "kept: picture and length unchanged"
    assert rows[3]["Changes"].startswith("new: new material: x")
    assert "changes" in (root / "new" / "cue-sheet.html").read_text()
    old_pics = thumbnails_of(root / "old" / "cue-sheet.html")
    new_pics = thumbnails_of(root / "new" / "cue-sheet.html")
    assert len(new_pics) == 7 and new_pics[f"{cue(0, 2)}.wav"] == old_pics[f"{cue(0, 2)}.wav"]
    assert new_pics[f"{cue(17, 19)}.wav"] == old_pics[f"{cue(18, 20)}.wav"]  # moved: same audio


def test_conforming_the_same_cut_again_renders_nothing(
    edit: dict[str, Any], tmp_path: Path
) -> None:
    settings, root = edit["settings"], edit["root"]
    request = {"old_otio": str(root / "new" / "scored.otio"), "timeline": str(edit["new_cut"])}
    again = run_conform(parse_conform_params(request, settings), _ctx(settings, tmp_path, 1))
    assert again["summary"]["rendered"] == 0
    assert {c["change"] for c in again["changes"]} == {"kept"}
    for row in edit["new"]["cues"]:
        name = Path(row["audio"]).name
        assert (tmp_path / name).read_bytes() == (root / "new" / name).read_bytes()


def test_bad_input_is_refused_before_anything_is_written(
    edit: dict[str, Any], tmp_path: Path
) -> None:
    settings, root = edit["settings"], edit["root"]
    new_cut = str(edit["new_cut"])

    def check(request: dict[str, Any]) -> None:
        parse_conform_params(request, settings)

    with pytest.raises(TimelineError, match="not a readable timeline"):
        check({"old_otio": str(root / "rushes.mp4"), "timeline": new_cut})
    with pytest.raises(TimelineError, match="not scored by VMB Score"):
        check({"old_otio": new_cut, "timeline": new_cut})
    with pytest.raises(InvalidRequest, match="unknown conform parameter 'per'"):
        check({"old_otio": new_cut, "timeline": new_cut, "per": "scene"})
    garbage = tmp_path / "garbage.otio"
    garbage.write_text("{not json")
    with pytest.raises(TimelineError):
        check({"old_otio": str(root / "old" / "scored.otio"), "timeline": str(garbage)})
    copy = tmp_path / "old"
    shutil.copytree(root / "old", copy)
    scored = tl.read_timeline(copy / "scored.otio")
    for clip in scored.find_clips():  # the copy's stems, not the original render's
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url.endswith(".wav"):
            name = Path(otio.url_utils.filepath_from_url(ref.target_url)).name
            ref.target_url = otio.url_utils.url_from_filepath(str(copy / name))
            clip.metadata["vmb"]["audio"] = str(copy / name)
    tl.write_timeline(scored, copy / "scored.otio")
    (copy / f"{cue(2, 8)}.wav").unlink()
    with pytest.raises(InvalidRequest, match=f"the stem of {cue(2, 8)} is missing"):
        check({"old_otio": str(copy / "scored.otio"), "timeline": new_cut})
    scored.metadata["vmb"]["render"]["selection"] = {"range": [0.0, 4.0]}
    tl.write_timeline(scored, copy / "range.otio")
    (copy / f"{cue(2, 8)}.wav").write_bytes((root / "old" / f"{cue(2, 8)}.wav").read_bytes())
    with pytest.raises(InvalidRequest, match="whole-timeline render"):
        check({"old_otio": str(copy / "range.otio"), "timeline": new_cut})


def test_a_cut_moved_inside_a_cue_is_hit_where_it_now_is(edit: dict[str, Any]) -> None:
    """Two shots scored as one cue (the first is under the minimum length); the re-edit
    trims the first shot's tail by half a second, so the cut inside moves from 1.5 to 1.0 s."""
    settings, root = edit["settings"], edit["root"]
    clip = root / "rushes.mp4"
    old_cut = _cut(clip, root / "cuts-old.otio", [("p1", 0, 1.5), ("p2", 2, 4.5)], 3.9)
    new_cut = _cut(clip, root / "cuts-new.otio", [("p1", 0, 1.0), ("p2", 2, 4.5)], 3.4)
    params = {"timeline": str(old_cut), "min_length_s": 3.0, "backend": "draft",
              "hits": "cuts", "knobs": {"genre": "pop", "energy": "high"}}  # fmt: skip
    old = render_soundtrack(parse_soundtrack_params(params, settings),
                            _ctx(settings, root / "cuts-old", 2))  # fmt: skip
    assert [c["cue_id"] for c in old["cues"]] == [cue(0, 4)]
    request = {"old_otio": str(root / "cuts-old" / "scored.otio"), "timeline": str(new_cut)}
    out = root / "cuts-new"
    result = run_conform(parse_conform_params(request, settings), _ctx(settings, out, 3))
    (change,) = result["changes"]
    assert change["change"] == "re-fitted" and "cuts moved inside" in change["reason"]
    assert stem_hit_share(out / f"{cue(0, 3.5)}.wav", [1.0]) == 1.0
    assert stem_hit_share(root / "cuts-old" / f"{cue(0, 4)}.wav", [1.5]) == 1.0
