"""Shared pieces of the Resolve plugin: feature-detected calls, frame helpers, the selection.

Standard library only, Python 3.6 syntax (see vmb_resolve.py).
"""

import wave
from typing import Any, Optional


# -- small helpers ----------------------------------------------------------------------------
def has(obj: Any, name: str) -> bool:
    """Whether obj has a callable `name`. Resolve's Python bridge may answer yes for any
    name (davinci-resolve-mcp api-limitations.md: it fabricates callables), so calls that
    depend on the version are gated on the version too (VERSION_GATED in vmb_resolve)."""
    return obj is not None and callable(getattr(obj, name, None))


def call(obj: Any, name: str, *args: Any) -> Any:
    """obj.name(*args), or None when the method is missing or fails (a dead handle)."""
    if not has(obj, name):
        return None
    try:
        return getattr(obj, name)(*args)
    except Exception:  # noqa: BLE001 - Resolve raises odd types for odd states
        return None


def alive(item: Any) -> bool:
    """A dead handle is truthy but every method answers None (a Resolve append quirk)."""
    return item is not None and isinstance(call(item, "GetStart"), (int, float))


def to_float(value: Any, default: float = 0.0) -> float:
    try:
        return float(str(value).strip().split()[0])
    except (ValueError, IndexError):
        return default


def timecode(frame: int, fps: float) -> str:
    rate = max(int(round(fps)), 1)
    f = int(frame)
    return (
        f"{f // (3600 * rate):02d}:{(f // (60 * rate)) % 60:02d}:"
        f"{(f // rate) % 60:02d}:{f % rate:02d}"
    )


def audio_seconds(path: str) -> float:
    """Length of a WAV (stdlib `wave`); 0 if unreadable."""
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except Exception:  # noqa: BLE001
        return 0.0


class Selection:
    """What the user picked: an absolute frame range and the clip that best shows it."""

    def __init__(self, source: str, rec_in: int, rec_out: int) -> None:
        self.source = source  # "clips" | "range" | "playhead"
        self.rec_in = int(rec_in)  # absolute timeline frame
        self.rec_out = int(rec_out)  # exclusive
        self.item = None  # type: Any
        self.media = None  # type: Optional[str]
        self.src_in_s = None  # type: Optional[float]
        self.src_out_s = None  # type: Optional[float]
        self.name = "cue"

    @property
    def frames(self) -> int:
        return self.rec_out - self.rec_in


def media_of(item: Any) -> Optional[str]:
    """The file behind a timeline item (None for titles and generators)."""
    path = call(call(item, "GetMediaPoolItem"), "GetClipProperty", "File Path")
    return path if isinstance(path, str) and path else None
