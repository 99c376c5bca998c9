"""The Resolve plugin's shipped scripts and small helpers, shared by the Resolve plugin tests."""

from __future__ import annotations

import wave
from pathlib import Path

import vmb_resolve as vr

START = 86400  # 01:00:00:00 at 24 fps
SCRIPT = Path(__file__).resolve().parents[2] / "plugins" / "davinci" / "VMB Score.py"
WHOLE = Path(__file__).resolve().parents[2] / "plugins" / "davinci" / "VMB Score whole timeline.py"


def wav(path: Path, seconds: float) -> str:
    """A silent 48 kHz stereo WAV of `seconds` (Resolve's usual project rate)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"\0\0\0\0" * int(48000 * seconds))
    return str(path)


def session(host: dict, **kw) -> vr.ResolveSession:
    return vr.ResolveSession(
        host["resolve"], host["fusion"], host["bmd"], config=kw.get("config", {})
    )
