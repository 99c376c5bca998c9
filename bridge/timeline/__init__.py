"""Timelines through OpenTimelineIO: a selection in, cue requests and a cue plan out, the
generated stems back onto a "VMB Score" audio track.

Light on purpose (no torch, no engine): the CLI, the gateway and tests use it, and scene cut
detection comes in as a callback. The modules, each one responsibility:

  reading   every installed OTIO adapter, bundles, EDL frame rates, newer-OTIO errors
  clock     frame rate, start, extent, timecode of a timeline
  relink    where a clip's media is: found, relinked under --media-root, or missing
  select    a selection -> one cue request per visible clip piece
  markers   timeline, track and clip markers as hit points
  plan      cue requests -> cues (split, merged, chained), with their cuts and markers
  takes     generated stems onto the "VMB Score" track and back
  conform   which shots of a re-edited cut are which shots of the old one

`from bridge import timeline as tl` gives the public names of all of them.
"""

from bridge.hits import HITS, HitMarker, parse_hits, parse_markers
from bridge.timeline.clock import (
    parse_range,
    parse_time,
    timecode,
    timeline_extent,
    timeline_rate,
)
from bridge.timeline.conform import (
    Shot,
    ShotChange,
    is_join,
    joined,
    kept_runs,
    match_shots,
    razor_cuts,
    same_picture,
    same_shots,
    shared_material_s,
    shots,
    trims,
)
from bridge.timeline.markers import timeline_markers
from bridge.timeline.plan import (
    CuePlan,
    Keep,
    PlannedCue,
    PlanOptions,
    SceneCuts,
    cue_id,
    plan_cues,
    plan_selection,
)
from bridge.timeline.reading import (
    COMMON_RATES,
    META,
    Loaded,
    load_timeline,
    read_timeline,
    write_timeline,
)
from bridge.timeline.relink import Located, MediaFinder, parse_url
from bridge.timeline.select import CueRequest, Kind, Selection, cue_requests
from bridge.timeline.takes import SCORE_TRACK, Take, place_takes, plain, score_takes

__all__ = [
    "COMMON_RATES",
    "HITS",
    "META",
    "SCORE_TRACK",
    "CuePlan",
    "CueRequest",
    "HitMarker",
    "Kind",
    "Loaded",
    "Located",
    "MediaFinder",
    "Keep",
    "PlanOptions",
    "PlannedCue",
    "SceneCuts",
    "Selection",
    "Shot",
    "ShotChange",
    "Take",
    "cue_id",
    "cue_requests",
    "parse_hits",
    "parse_markers",
    "parse_range",
    "parse_time",
    "parse_url",
    "place_takes",
    "plain",
    "plan_cues",
    "plan_selection",
    "load_timeline",
    "match_shots",
    "is_join",
    "joined",
    "kept_runs",
    "razor_cuts",
    "same_picture",
    "same_shots",
    "shared_material_s",
    "shots",
    "trims",
    "read_timeline",
    "score_takes",
    "timecode",
    "timeline_extent",
    "timeline_markers",
    "timeline_rate",
    "write_timeline",
]
