"""How deeply a JSON text nests, found without parsing it.

OTIO's C++ JSON reader recurses once per level and overflows its stack at about 50,000
levels: `[[[[...` in a timeline would kill the process that reads it (the daemon validates
timelines). So every OTIO JSON text, inline or in a .otio/.otioz/.otiod file, is scanned
first: one linear pass over string tokens and brackets, brackets inside strings ignored.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from bridge.errors import PATH_QUOTE_CHARS, TimelineError, quote

MAX_JSON_DEPTH = 256  # real timelines nest about 20 levels; OTIO's reader fails near 50,000
MAX_TIMELINE_FILE_BYTES = 256 << 20  # a timeline file the engine reads at all
# A string token (its closing quote optional, so a match never fails and the scan stays
# linear even on an unterminated string) or one bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)


def json_depth(text: str, stop_at: int = MAX_JSON_DEPTH) -> int:
    """The deepest bracket nesting of `text` outside strings (stops counting past `stop_at`)."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def check_json_depth(text: str, what: str) -> None:
    """Refuse a JSON text that nests deeper than MAX_JSON_DEPTH, before any parser sees it."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise TimelineError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")


def _otio_text(path: Path) -> str | None:
    """The JSON text inside an OTIO file (.otio, .otioz bundle, .otiod folder), or None for
    other formats (their readers are not OTIO's C++ JSON parser)."""
    suffix = path.suffix.lower()
    if suffix not in (".otio", ".otioz", ".otiod"):
        return None
    if suffix == ".otiod":
        path = path / "content.otio"
    name = quote(str(path), PATH_QUOTE_CHARS)
    if not path.is_file():  # a FIFO or a device would block the reader
        raise TimelineError(f"{name} is not a regular file")
    try:
        if suffix != ".otioz":
            if path.stat().st_size > MAX_TIMELINE_FILE_BYTES:
                raise TimelineError(f"{name} is too large")
            return path.read_text(encoding="utf-8", errors="replace")
        with zipfile.ZipFile(path) as bundle:
            info = bundle.getinfo("content.otio")
            if info.file_size > MAX_TIMELINE_FILE_BYTES:
                raise TimelineError(f"{name} holds too large a timeline")
            return bundle.read(info).decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None  # not readable as such: the adapter reports what is wrong


def check_timeline_file_depth(path: str | Path) -> None:
    """Refuse an OTIO file whose JSON nests too deeply (see the module docstring)."""
    text = _otio_text(Path(path))
    if text is not None:
        check_json_depth(text, quote(str(path), PATH_QUOTE_CHARS))
