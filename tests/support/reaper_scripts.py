"""The REAPER plugin's shipped scripts and a silent WAV, shared by the REAPER plugin tests."""

from __future__ import annotations

import wave
from pathlib import Path

REAPER_DIR = Path(__file__).resolve().parents[2] / "plugins" / "reaper"
GENERATE = REAPER_DIR / "VMB Generate score for selection.py"
WHOLE = REAPER_DIR / "VMB Score whole project.py"
CONTROLS = REAPER_DIR / "VMB Insert controls.py"
JSFX = REAPER_DIR / "VMB Controls.jsfx"


def wav(path: Path, seconds: float) -> str:
    """A silent 44.1 kHz stereo WAV of `seconds` (REAPER's usual project rate)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\0\0\0\0" * int(44100 * seconds))
    return str(path)
