"""`conform` with the default render options (cues at least 4 s, so 2-5 s shots are grouped
into cues): one edit re-scores only the cues it touches, not every cue after it. Each re-edit
of the old cut (a lift, a ripple trim, an insert, a move, a razor split) is conformed from the
same old render (draft backend) and checked on the change list and the stems' bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import opentimelineio as otio
import pytest

from bridge import timeline as tl
from engine.config import load_settings
from engine.score.conform import parse_conform_params, run_conform
from engine.score.soundtrack import parse_soundtrack_params, render_soundtrack
from engine.serve.kinds import JobContext
from support.media import color_clip, draft_config, tiny_library

RATE = 24
# 3 s colour blocks; each shot shows one block (the inserted one is 2 s)
OLD = [("s1", 0, 3), ("s2", 3, 6), ("s3", 6, 9), ("s4", 9, 12), ("s5", 12, 15), ("s6", 15, 18),
       ("s7", 18, 21)]  # fmt: skip
# old cues (min 4 s): [s1 s2] 0-6, [s3 s4] 6-12, [s5 s6 s7] 12-21
EDITS: dict[str, tuple[list, dict[str, int]]] = {
    "lift": (  # s3's tail lifted out: a 1 s gap, every later shot where it was
        [("s1", 0, 3), ("s2", 3, 6), ("s3", 6, 8), (None, 0, 1), *OLD[3:]],
        {"kept": 2, "moved": 0, "re-fitted": 1, "new": 0, "removed": 0},
    ),
    "trim": (  # s3's tail trimmed by 1 s (ripple): the last cue moves up as a block
        [("s1", 0, 3), ("s2", 3, 6), ("s3", 6, 8), *OLD[3:]],
        {"kept": 1, "moved": 1, "re-fitted": 1, "new": 0, "removed": 0},
    ),
    "insert": (  # x (2 s) after s3: its cue grows, the last one moves down as a block
        [*OLD[:3], ("x", 30, 32), *OLD[3:]],
        {"kept": 1, "moved": 1, "re-fitted": 1, "new": 0, "removed": 0},
    ),
    "move": (  # s6 moved after s1: [s3 s4] moves as a block; the two around it re-fitted
        [OLD[0], OLD[5], *OLD[1:5], OLD[6]],
        {"kept": 0, "moved": 1, "re-fitted": 2, "new": 0, "removed": 0},
    ),
    "split": (  # a razor cut in s4, no picture change: nothing is re-scored
        [*OLD[:3], ("s4", 9, 10.5), ("s4", 10.5, 12), *OLD[4:]],
        {"kept": 3, "moved": 0, "re-fitted": 0, "new": 0, "removed": 0},
    ),
}


def _cut(clip: Path, path: Path, shots: list, url: str | None = None) -> Path:
    timeline = otio.schema.Timeline(name="grouped")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    url = url or otio.url_utils.url_from_filepath(str(clip))
    for name, a, b in shots:
        span = otio.opentime.TimeRange(
            otio.opentime.RationalTime(round(a * RATE), RATE),
            otio.opentime.RationalTime(round((b - a) * RATE), RATE),
        )
        if name is None:
            track.append(otio.schema.Gap(source_range=span))
            continue
        ref = otio.schema.ExternalReference(target_url=url)
        track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=span))
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _ctx(settings: Any, out: Path, seed: int) -> JobContext:
    out.mkdir(parents=True, exist_ok=True)
    return JobContext("job", seed, 1, out, out, settings, lambda *a: None, lambda: False)


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("grouped")
    home = root / "home"
    home.mkdir()
    draft_config(home, tiny_library(root / "lib"))
    settings = load_settings(home)
    colours = ["navy", "orange", "green", "red", "purple", "yellow", "gray", "white", "black"]
    colours += ["teal", "maroon", "olive"]
    clip = color_clip(root / "rushes.mp4", [(c, 3.0) for c in colours])
    out = {"root": root, "settings": settings, "clip": clip}
    for name, continuous in (("old", False), ("old-run", True)):
        params = {"timeline": str(_cut(clip, root / f"{name}.otio", OLD)), "backend": "draft",
                  "continuous": continuous, "knobs": {"genre": "pop"}}  # fmt: skip
        checked = parse_soundtrack_params(params, settings)
        out[name] = render_soundtrack(checked, _ctx(settings, root / name, 5))
    return out


def _conform(
    old: dict[str, Any], name: str, shots: list, which: str = "old", url: str | None = None
) -> dict[str, Any]:
    root, settings = old["root"], old["settings"]
    new_cut = _cut(old["clip"], root / f"{which}-{name}.otio", shots, url)
    request = {"old_otio": str(root / which / "scored.otio"), "timeline": str(new_cut)}
    out = root / f"{which}-{name}"
    return run_conform(parse_conform_params(request, settings), _ctx(settings, out, 9))


def test_the_old_render_grouped_the_shots(old: dict[str, Any]) -> None:
    ids = [c["cue_id"] for c in old["old"]["cues"]]
    assert ids == [tl.cue_id(a, b, RATE) for a, b in ((0, 6), (6, 12), (12, 21))]


@pytest.mark.parametrize("name", list(EDITS))
def test_one_edit_re_scores_only_the_cues_it_touches(old: dict[str, Any], name: str) -> None:
    shots, want = EDITS[name]
    result = _conform(old, name, shots)
    summary = {k: v for k, v in result["summary"].items() if k != "rendered"}
    assert summary == want, result["changes"]
    rendered = [c for c in result["changes"] if c["rendered"]]
    assert result["summary"]["rendered"] == len(rendered) == want["re-fitted"] + want["new"]
    root = old["root"]
    for c in result["changes"]:
        if c["change"] in ("kept", "moved"):  # the same samples (moved: BWF position differs)
            new = Path(c["audio"]).read_bytes()
            was = (root / "old" / f"{c['from_cue']}.wav").read_bytes()
            assert (new == was) if c["change"] == "kept" else (len(new) == len(was))


def test_a_razor_cut_says_so_and_is_not_hit(old: dict[str, Any]) -> None:
    result = _conform(old, "split-reason", EDITS["split"][0])
    middle = result["changes"][1]
    assert middle["change"] == "kept"
    assert middle["reason"] == "split at 10.50 s (picture unchanged)"
    was = old["root"] / "old" / f"{middle['from_cue']}.wav"
    assert Path(middle["audio"]).read_bytes() == was.read_bytes()  # the old music: no hit


def test_moved_cues_say_where_they_were(old: dict[str, Any]) -> None:
    result = _conform(old, "move-reason", EDITS["move"][0])
    moved = next(c for c in result["changes"] if c["change"] == "moved")
    assert moved["reason"] == "moved from 6.00-12.00 s by +3.00 s (shots s3, s4)"


def test_a_cue_that_no_longer_follows_on_is_re_fitted(old: dict[str, Any]) -> None:
    """Continuous run: after s4's tail is lifted, the last cue starts after 1 s of silence,
    not playing on from [s3 s4] as it was composed to; it is re-fitted, the first cue kept."""
    lifted = [*OLD[:3], ("s4", 9, 11), (None, 0, 1), *OLD[4:]]  # a gap before [s5 s6 s7]
    result = _conform(old, "lift", lifted, which="old-run")
    got = [(c["change"], c["reason"]) for c in result["changes"]]
    assert got[0] == ("kept", "picture and length unchanged")
    assert got[1][0] == "re-fitted" and "now ends its run" in got[1][1]
    assert got[2][0] == "re-fitted" and got[2][1].startswith("now starts its run"), got


def test_a_re_edit_from_another_machine_is_scored_with_picture(old: dict[str, Any]) -> None:
    """The re-edit's media is on a Mac's drive under another case; it relinks by file name
    to where the old render found its picture."""
    url = "file:///Volumes/EditSSD/Project/Rushes/RUSHES.MP4"
    result = _conform(old, "other-machine", EDITS["trim"][0], url=url)
    assert result["summary"]["rendered"] == 1
    for row in result["cues"]:
        assert row["media_status"] == "relinked" and not row["scored_without_picture"], row


def test_a_swap_keeps_both_cues_identities(old: dict[str, Any]) -> None:
    """s2 and s3 swapped: each new cue shares 3 s with each old cue; each takes a different
    old cue (seed and description), none is removed, the last cue is kept."""
    swapped = [OLD[0], OLD[2], OLD[1], *OLD[3:]]
    result = _conform(old, "swap", swapped)
    got = [(c["change"], c["from_cue"]) for c in result["changes"]]
    first, second, third = (c["cue_id"] for c in old["old"]["cues"])
    assert got == [("re-fitted", first), ("re-fitted", second), ("kept", third)], got
    seeds = {c["cue_id"]: c["seed"] for c in old["old"]["cues"]}
    assert [c["seed"] for c in result["changes"][:2]] == [seeds[first], seeds[second]]


def test_a_cue_that_now_starts_the_run_is_re_fitted(old: dict[str, Any]) -> None:
    """Continuous run: s1 and s2 deleted, so [s3 s4] (composed to play on from [s1 s2]) now
    starts the run: it is re-fitted to start; [s5 s6 s7] still follows it and only moves."""
    result = _conform(old, "head-cut", OLD[2:], which="old-run")
    got = [(c["change"], c["reason"]) for c in result["changes"]]
    assert got[0][0] == "re-fitted" and got[0][1].startswith("now starts its run"), got
    assert got[1][0] == "moved", got
    assert got[2][0] == "removed", got
