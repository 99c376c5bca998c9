"""Editor markers sent with a cue or a soundtrack (the Blender extension sends the scene's
timeline markers as hit points): checked and kept with the job, bad ones refused clearly."""

from __future__ import annotations

import pytest

from bridge.errors import InvalidRequest
from engine.config import load_settings
from engine.score.cue_spec import parse_cue_params
from engine.score.soundtrack import parse_soundtrack_params


def test_cue_keeps_markers_sorted_in_its_params() -> None:
    params = {
        "text": "calm piano",
        "duration_s": 4.0,
        "markers": [{"time_s": 2.5, "name": "door"}, {"time_s": 1, "name": "hit"}],
    }
    spec = parse_cue_params(params, load_settings())
    assert sorted(spec.marker_times_s) == [1.0, 2.5]
    again = parse_cue_params(spec.to_params(), load_settings())  # the daemon re-reads them
    assert again.marker_times_s == spec.marker_times_s


@pytest.mark.parametrize(
    "markers",
    [
        "1.0",
        [{"time_s": "1"}],
        [{"time_s": float("nan"), "name": "x"}],
        [{"time_s": True, "name": "x"}],
        [{"time_s": 1.0, "name": 3}],
        [{"time_s": 1.0, "name": "x", "extra": 1}],
        [[1.0, "x"]],
    ],
)
def test_bad_markers_are_refused_with_the_expected_shape(markers: object) -> None:
    with pytest.raises(InvalidRequest, match="marker"):
        parse_cue_params({"text": "x", "duration_s": 4.0, "markers": markers}, load_settings())


def test_soundtrack_checks_markers_before_reading_the_timeline() -> None:
    with pytest.raises(InvalidRequest, match="marker"):
        parse_soundtrack_params({"otio_json": "{}", "markers": [{"time_s": "x"}]}, load_settings())
