"""The nesting scan that keeps deep JSON away from OTIO's C++ reader (it overflows its stack
near 50,000 levels and takes the reading process down)."""

from __future__ import annotations

import os
import zipfile

import opentimelineio as otio
import pytest

from bridge import timeline as tl
from bridge.errors import InvalidRequest, TimelineError
from bridge.jsondepth import MAX_JSON_DEPTH, check_json_depth, json_depth
from bridge.protocol import validate_fields


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth("{}") == 1
    assert json_depth('{"a": [1, {"b": []}]}') == 4
    assert json_depth('{"a": "[[[[{{{{", "b": "\\"[[["}') == 1  # escaped quote stays in
    assert json_depth('"' + '\\"' * 50_000) == 0  # an unterminated string: one token
    assert json_depth("[" * 100_000) == MAX_JSON_DEPTH + 1  # stops counting past the limit
    assert json_depth("[" * 100_000, stop_at=10**6) == 100_000


def test_real_timelines_pass_and_deep_ones_are_refused() -> None:
    timeline = otio.schema.Timeline(name="t", tracks=otio.schema.Stack())
    text = otio.adapters.write_to_string(timeline, "otio_json")
    check_json_depth(text, "ok")
    check_json_depth("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "at the limit")
    with pytest.raises(TimelineError, match="nests deeper than 256"):
        check_json_depth("[" * (MAX_JSON_DEPTH + 1), "inline OTIO JSON")


@pytest.mark.parametrize("suffix", [".otio", ".otioz", ".otiod"])
def test_deep_timeline_files_are_refused_before_otio_reads_them(tmp_path, suffix) -> None:
    deep = '{"OTIO_SCHEMA": "Timeline.1", "x": ' + "[" * 100_000
    path = tmp_path / f"deep{suffix}"
    if suffix == ".otio":
        path.write_text(deep)
    elif suffix == ".otioz":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("content.otio", deep)
    else:
        path.mkdir()
        (path / "content.otio").write_text(deep)
    with pytest.raises(TimelineError, match="nests deeper"):
        tl.read_timeline(path)  # before the scan: a segfault of this very process


def test_lone_surrogates_are_refused_naming_the_field() -> None:
    bad = [
        ({"kind": "\ud800", "params": {}}, "submit.kind"),
        ({"kind": "noop", "params": {"x": ["ok", "\udfff"]}}, "submit.params.x[1]"),
        ({"kind": "noop", "params": {"\ud800": 1}}, "submit.params"),
        ({"kind": "noop", "params": {}, "idempotency_key": "k\ud800"}, "submit.idempotency_key"),
        ({"kind": "noop", "params": {}, "rid": "\ud800"}, "submit.rid"),
    ]
    for body, field in bad:
        with pytest.raises(InvalidRequest, match=field.replace("[", r"\[").replace(".", r"\.")):
            validate_fields("submit", body)
    validate_fields("submit", {"kind": "noop", "params": {"x": "\U0001f3b5"}})


def test_a_fifo_named_like_a_timeline_is_refused_not_read(tmp_path) -> None:
    fifo = tmp_path / "pipe.otio"
    os.mkfifo(fifo)  # reading it would block the daemon until someone writes
    with pytest.raises(TimelineError, match="not a regular file"):
        tl.read_timeline(fifo)
