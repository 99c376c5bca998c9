"""Shot matching for `vmb conform` (bridge/timeline/conform.py): an old and a new cut built
with OTIO and written by its adapter; trimmed, moved, split, deleted and inserted shots are
recognised from the media and source ranges alone (no media file is opened)."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from bridge import timeline as tl

RATE = 24


def cut(path: Path, shots: list[tuple[str, str, float, float]]) -> otio.schema.Timeline:
    """A one-track cut of (clip name, media file, source in s, source out s), round-tripped
    through OTIO's own writer and reader."""
    timeline = otio.schema.Timeline(name="cut")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, media, a, b in shots:
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(target_url=f"file:///media/{media}"),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(round(a * RATE), RATE),
                    otio.opentime.RationalTime(round((b - a) * RATE), RATE),
                ),
            )
        )
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return otio.adapters.read_from_file(str(path))


OLD = [
    ("s1", "A001.mov", 0, 2),
    ("s2", "A001.mov", 2, 7),
    ("s3", "B002.mov", 0, 2),
    ("s4", "A001.mov", 9, 12),
    ("s5", "C003.mov", 4, 6),
]
NEW = [
    ("s1", "A001.mov", 0, 2),  # unchanged
    ("s2", "A001.mov", 2.5, 6),  # head trimmed 0.5, tail trimmed 1
    ("s5", "C003.mov", 4, 6),  # moved earlier (s3 deleted)
    ("x", "D004.mov", 0, 2),  # inserted
    ("s4a", "A001.mov", 9, 10.5),  # s4 split in two ...
    ("s5b", "C003.mov", 10, 11),  # (other material of C003: inserted, shares nothing)
    ("s4b", "A001.mov", 10.5, 12),  # ... around it
]


def test_each_edit_is_recognised(tmp_path: Path) -> None:
    old = tl.shots(cut(tmp_path / "old.otio", OLD))
    new = tl.shots(cut(tmp_path / "new.otio", NEW))
    changes = {c.clip: c for c in tl.match_shots(old, new)}
    assert {k: c.change for k, c in changes.items()} == {
        "s1": "unchanged",
        "s2": "trimmed",
        "s3": "deleted",
        "s4": "split",
        "s5": "moved",
        "x": "inserted",
        "s5b": "inserted",
    }
    assert "head trimmed by 0.50 s" in changes["s2"].reason
    assert "tail trimmed by 1.00 s" in changes["s2"].reason
    assert changes["s5"].reason == "moved -6.50 s"  # from 12.0 to 5.5 on the record clock
    assert [s.record_in_s for s in changes["s4"].new] == [9.5, 12.0]
    assert changes["s3"].new == () and changes["x"].old is None


def test_media_is_matched_by_file_name_across_machines(tmp_path: Path) -> None:
    """The new cut comes from a Windows machine: same file, other folder and case."""
    old = tl.shots(cut(tmp_path / "old.otio", [("s1", "A001.mov", 0, 2)]))
    timeline = cut(tmp_path / "new.otio", [("s1", "A001.mov", 0, 2)])
    clip = next(iter(timeline.find_clips()))
    clip.media_reference.target_url = "file:///D:/Show/Day%201/a001.MOV"
    new = tl.shots(timeline)
    assert [c.change for c in tl.match_shots(old, new)] == ["unchanged"]
    assert tl.same_shots(old, new, 0.0, 0.5 / RATE)
    assert not tl.same_shots(old, new, 1.0, 0.5 / RATE)  # not moved by a second


def test_extended_shot_and_shared_material(tmp_path: Path) -> None:
    old = tl.shots(cut(tmp_path / "old.otio", [("s1", "A001.mov", 1, 3)]))
    new = tl.shots(cut(tmp_path / "new.otio", [("s1", "A001.mov", 0, 4)]))
    (change,) = tl.match_shots(old, new)
    assert change.change == "trimmed"
    assert change.reason == "head extended by 1.00 s, tail extended by 1.00 s, moved +1.00 s"
    assert tl.shared_material_s(old, new) == 2.0


def _piece(clip: str, src: tuple[float, float], rec: float) -> tl.Shot:
    a, b = src
    return tl.Shot(clip, "rushes.mp4", a, b, rec, rec + b - a)


def test_a_razor_cut_is_the_same_picture_and_old_cues_keep_their_runs() -> None:
    old = [_piece("s3", (6, 9), 6), _piece("s4", (9, 12), 9)]
    razor = [_piece("s3", (6, 9), 6), _piece("s4", (9, 10.5), 9), _piece("s4", (10.5, 12), 10.5)]
    assert tl.same_picture(old, razor, 0.02) == 0.0
    assert tl.razor_cuts(razor, 0.02) == [9, 10.5]  # s3 -> s4 plays on in the media too
    assert len(tl.joined(razor, 0.02, old)) == 2  # the edit the old cut has is kept
    moved = [_piece(s.clip, (s.source_in_s, s.source_out_s), s.record_in_s + 3) for s in old]
    assert tl.same_picture(old, moved, 0.02) == 3.0
    trimmed = [_piece("s3", (6, 8), 6), _piece("s4", (9, 12), 8)]
    assert tl.same_picture(old, trimmed, 0.02) is None
    first = [_piece("s1", (0, 3), 0), _piece("s2", (3, 6), 3)]
    pieces = [first[0], _piece("x", (30, 32), 3), *moved]  # s2 gone, x in, [s3 s4] moved
    assert tl.kept_runs([first, old], pieces, 0.02) == [(2, 4)]
