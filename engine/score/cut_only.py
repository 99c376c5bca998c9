"""Scoring a cue from the cut alone, when its picture is not on this machine.

An EDL has no media, and a timeline from another machine often points at media that is not
here. The edit still says a lot: the clip names ("beach sunset", "car chase") and the cut
rhythm (a cut every second is a different scene from one shot held for twenty). Both become
the describe stage's text, after the user's own text; the knobs win over all of it as always.
The cue's cuts and markers are still hit.
"""

from __future__ import annotations

import re

from bridge import timeline as tl

MAX_NAME_WORDS = 24
_MEDIA_SUFFIX = re.compile(r"\.(mov|mp4|mxf|avi|mkv|m4v|r3d|braw|ari|dng|exr|wav|aif+)$", re.I)


def _words(name: str) -> list[str]:
    """Words of a clip name; reel and take codes (A001, C0003_02, V1-0004) say nothing."""
    name = _MEDIA_SUFFIX.sub("", name)
    name = re.sub(r"[A-Za-z0-9]*\d[A-Za-z0-9]*", " ", name)
    return [w.lower() for w in re.split(r"[^A-Za-z]+", name) if len(w) >= 3]


def rhythm(cue: tl.PlannedCue) -> tuple[int, float, str]:
    """Shots, mean shot length and the pace they suggest, in the describer's own words."""
    shots = len(cue.cut_times_s) + 1
    mean = cue.duration_s / shots
    if mean < 2.0:
        pace = "fast, energetic"
    elif mean < 5.0:
        pace = "mid-tempo"
    else:
        pace = "slow, gentle"
    return shots, mean, pace


def text(cue: tl.PlannedCue, user_text: str | None = None) -> str:
    """The describe stage's text for a cue without picture."""
    words: list[str] = []
    for segment in cue.segments:
        words.extend(w for w in _words(segment.clip_name) if w not in words)
    names = " ".join(words[:MAX_NAME_WORDS])
    parts = [user_text.strip() if user_text else "", names, rhythm(cue)[2]]
    return "; ".join(p for p in parts if p)[:1000]  # the cue text limit


def note(cue: tl.PlannedCue) -> str:
    shots, mean, _ = rhythm(cue)
    return (
        f"scored without picture: the media is missing, so the music follows the knobs, "
        f"the clip names and the cut rhythm ({shots} shot(s), {mean:.1f} s each on average)"
    )
