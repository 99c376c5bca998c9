"""What a cue is asked to be at its edges: its ending (ring, button, fade, cut, none), a
seamless loop, per-part stems, and the picture rate a button or cut ending lands on; and the
note a backend that cannot do one of these adds to the cue's output."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bridge.errors import InvalidRequest, quote
from engine.types import ENDINGS, GeneratedAudio

if TYPE_CHECKING:
    from engine.score.cue_spec import CueSpec


def parse_finish_params(params: dict[str, Any]) -> tuple[str | None, bool, bool, float | None]:
    """(ending, loop, stems, frame_rate) of cue or soundtrack params, checked."""
    ending = params.get("ending")
    if ending is not None and ending not in ENDINGS:
        raise InvalidRequest(f"unknown ending {quote(ending)}; endings: {', '.join(ENDINGS)}")
    flags = []
    for key in ("loop", "stems"):
        v = params.get(key, False)
        if not isinstance(v, bool):
            raise InvalidRequest(f"'{key}' must be true or false")
        flags.append(v)
    if flags[0] and ending is not None:
        raise InvalidRequest("a loop has no ending: give 'loop' or 'ending', not both")
    rate = params.get("frame_rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 1 <= rate <= 240
    ):
        raise InvalidRequest("'frame_rate' must be 1-240 frames per second")
    return ending, flags[0], flags[1], float(rate) if rate is not None else None


def frame_rate_of(spec: CueSpec) -> float:
    """The picture's frame rate (button and cut endings hit the last frame); 25 without one."""
    if spec.frame_rate:
        return spec.frame_rate
    if spec.media is not None:
        from engine import media

        rate = media.probe(spec.media).rate
        if 1.0 <= rate <= 240.0:
            return float(rate)
    return 25.0


def say_unsupported(audio: GeneratedAudio, spec: CueSpec) -> GeneratedAudio:
    """A backend that cannot do what was asked says so in the cue's output."""
    notes = []
    if spec.stems and "stems" not in audio.extra:
        notes.append(f"the {audio.backend} backend renders one mixed track: it has no stems")
    if spec.loop and "loop" not in audio.extra:
        notes.append(f"the {audio.backend} backend cannot loop: the cue is not a seamless loop")
    if spec.ending and "ending" not in audio.extra:
        notes.append(f"the {audio.backend} backend has no '{spec.ending}' ending: its own was used")
    if not notes:
        return audio
    return replace(audio, extra={**audio.extra, "unsupported": notes})
