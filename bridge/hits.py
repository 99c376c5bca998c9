"""Hit points of a request: what the music hits (cuts, markers) and a host's markers.

No OpenTimelineIO here: the cue validator imports this in every worker, and the timeline
package's markers (bridge.timeline.markers) are made of the same HitMarker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.errors import InvalidRequest

MAX_MARKERS = 1000
HITS = ("cuts", "markers")


@dataclass(frozen=True)
class HitMarker:
    time_s: float  # timeline clock
    name: str = ""
    comment: str = ""
    where: str = "request"  # "timeline", "track Video 1", "clip A001", "request"

    @property
    def wanted(self) -> bool:
        """Not marked "no hit" in its name or comment."""
        text = " ".join(f"{self.name} {self.comment}".lower().replace("-", " ").split())
        return "no hit" not in text

    def to_json(self) -> dict[str, object]:
        return {"time_s": round(self.time_s, 6), "name": self.name, "where": self.where}


def parse_markers(raw: Any) -> list[HitMarker]:
    """Markers a host sends: [{"time_s": seconds on the timeline clock, "name"?, "comment"?}]."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_MARKERS:
        raise InvalidRequest(f"'markers' must be a list of at most {MAX_MARKERS} markers")
    out = []
    for item in raw:
        t = item.get("time_s") if isinstance(item, dict) else None
        if isinstance(t, bool) or not isinstance(t, int | float) or t != t or abs(t) > 1e7:
            raise InvalidRequest('each marker must be {"time_s": seconds, "name": text}')
        unknown = set(item) - {"time_s", "name", "comment"}
        if unknown:
            raise InvalidRequest(f"unknown marker field(s): {', '.join(sorted(unknown))}")
        name, comment = item.get("name") or "", item.get("comment") or ""
        if not isinstance(name, str) or not isinstance(comment, str):
            raise InvalidRequest("a marker's name and comment must be text")
        out.append(HitMarker(float(t), name[:200], comment[:200], "request"))
    return out


def parse_hits(raw: Any) -> tuple[str, ...]:
    """What the music hits: "cuts,markers" (default), "cuts", "markers" or "none"."""
    if raw is None:
        return HITS
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise InvalidRequest("'hits' must be cuts,markers, cuts, markers or none")
    words = {i.strip().lower() for i in items if i.strip()}
    if words == {"none"}:
        return ()
    if not words or not words <= set(HITS):
        raise InvalidRequest(f"'hits' must be cuts,markers, cuts, markers or none, not {raw!r}")
    return tuple(h for h in HITS if h in words)
