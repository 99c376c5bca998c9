"""Finding a clip's media the way editors relink: as written, else under --media-root.

A timeline from another machine names its media in that machine's terms: `D:/media/x.mov`,
`S:\\show\\x.mov`, `\\\\server\\share\\x.mov`, `file://localhost/Volumes/x.mov`,
`file:///C:/x%20y.mov`. Each is split into path components; under the media roots the
file whose trailing components match the most (case-insensitively) wins: the path's tail
first (at least the folder and the name), then the file name alone. Two equally good
matches are reported as ambiguous, never guessed. Nothing here changes the timeline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import opentimelineio as otio

from bridge.errors import InvalidRequest

Status = Literal["found", "relinked", "missing"]
_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_MAX_FILES = 200_000  # a media root this large is probably a whole disk


@dataclass(frozen=True)
class Located:
    """Where a clip's media is: found as written, relinked under a media root, or missing."""

    status: Status
    path: str  # the file to read; for missing media, the path as written (decoded)
    original: str = ""  # the reference's URL exactly as the timeline has it
    how: str = ""  # "path tail" or "file name" for relinked media
    note: str = ""  # why it is missing (no reference, ambiguous, ...)
    candidates: tuple[str, ...] = field(default=())  # ambiguous matches


@dataclass(frozen=True)
class ForeignPath:
    """A media path as another machine wrote it."""

    text: str  # decoded, for people
    parts: tuple[str, ...]  # folders and file name, without drive, host or root
    local: str | None  # the same path on this machine, where it can be one


def parse_url(url: str, base_dir: Path | None = None) -> ForeignPath:
    """file:// URLs (localhost, a host = UNC, /C:/ drives), Windows and POSIX paths."""
    text = url.strip()
    if text.lower().startswith("file:"):
        parts = urlsplit(text)
        path = unquote(parts.path)
        host = parts.netloc if parts.netloc.lower() not in ("", "localhost") else ""
        if re.match(r"^/[A-Za-z][:|]", path):  # file:///C:/media/x.mov
            path = path[1] + ":" + path[3:]
        elif host:  # file://server/share/x.mov is \\server\share\x.mov
            return _split(f"//{host}{path}", None)
        return _split(path, None if _DRIVE.match(path) else path)
    if _DRIVE.match(text) or text.startswith(("\\\\", "//")):
        return _split(text, None)
    local = text if os.path.isabs(text) or base_dir is None else str(base_dir / text)
    return _split(text, local)


def _split(path: str, local: str | None) -> ForeignPath:
    pieces = [p for p in re.split(r"[\\/]+", path) if p]
    if pieces and _DRIVE.match(pieces[0]):
        pieces = pieces[1:]
    if path.startswith(("\\\\", "//")) and len(pieces) >= 2:
        pieces = pieces[2:]  # \\server\share
    return ForeignPath(text=path, parts=tuple(pieces), local=local)


def reference_url(clip: otio.schema.Clip) -> str:
    ref = clip.media_reference
    if isinstance(ref, otio.schema.ExternalReference):
        return ref.target_url or ""
    return ""


class MediaFinder:
    """Locates media for every clip of one timeline; results are cached per URL."""

    def __init__(self, roots: Sequence[str | Path] = (), base_dir: str | Path | None = None):
        self.roots = [_root(r) for r in roots]
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self._index: dict[str, list[tuple[Path, tuple[str, ...]]]] | None = None
        self._cache: dict[str, Located] = {}

    def locate(self, clip: otio.schema.Clip) -> Located:
        url = reference_url(clip)
        if not url:
            ref = clip.media_reference
            what = type(ref).__name__ if ref is not None else "no reference"
            return Located("missing", "", note=f"no media path ({what})")
        if url not in self._cache:
            self._cache[url] = self._locate(url)
        return self._cache[url]

    def _locate(self, url: str) -> Located:
        foreign = parse_url(url, self.base_dir)
        for local in {foreign.local, unquote(foreign.local or "")} - {None, ""}:
            if Path(local).is_file():
                return Located("found", local, original=url)
        if not foreign.parts:
            return Located("missing", foreign.text, original=url, note="an empty path")
        if not self.roots:
            return Located("missing", foreign.text, original=url, note="not on this machine")
        best, depth = self._matches(foreign.parts)
        if len(best) == 1:
            how = "path tail" if depth > 1 else "file name"
            return Located("relinked", str(best[0]), original=url, how=how)
        if best:
            note = f"ambiguous: {len(best)} files match {foreign.parts[-1]!r} equally well"
            shown = tuple(str(p) for p in best[:8])
            return Located("missing", foreign.text, original=url, note=note, candidates=shown)
        return Located("missing", foreign.text, original=url, note="not under the media root(s)")

    def _matches(self, parts: tuple[str, ...]) -> tuple[list[Path], int]:
        """Files named like parts[-1] whose trailing components match the most of `parts`."""
        names = {parts[-1].lower(), unquote(parts[-1]).lower()}
        wanted = [p.lower() for p in parts]
        scored: list[tuple[int, Path]] = []
        for name in names:
            for path, rel in self.index().get(name, []):
                depth = 0
                for a, b in zip(reversed(rel), reversed(wanted), strict=False):
                    if a.lower() != b and a.lower() != unquote(b):
                        break
                    depth += 1
                scored.append((depth, path))
        if not scored:
            return [], 0
        top = max(d for d, _ in scored)
        return sorted({p for d, p in scored if d == top}), top

    def index(self) -> dict[str, list[tuple[Path, tuple[str, ...]]]]:
        """Every file under the roots by lower-case name, with its path below its root."""
        if self._index is None:
            index: dict[str, list[tuple[Path, tuple[str, ...]]]] = {}
            count = 0
            for root in self.roots:
                for folder, dirs, files in os.walk(root):
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                    rel = Path(folder).relative_to(root).parts
                    for name in files:
                        index.setdefault(name.lower(), []).append(
                            (Path(folder) / name, (*rel, name))
                        )
                    count += len(files)
                    if count > _MAX_FILES:
                        raise InvalidRequest(
                            f"media root {root} holds over {_MAX_FILES} files; "
                            "give the folder the media is in"
                        )
            self._index = index
        return self._index


def _root(raw: str | Path) -> Path:
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise InvalidRequest(f"media root is not a folder: {raw}")
    return root.resolve()
