"""Reading and writing timelines with every installed OTIO adapter.

.otio natively, FCP 7 .xml, .fcpxml and CMX 3600 .edl through their adapter packages,
.otiod and .otioz bundles with their media (an .otioz is unpacked once into a cache folder).
An EDL does not state its frame rate: without `rate` the common rates are tried and the
lowest one its timecodes fit is taken, with a note saying so. What was assumed while
reading comes back as notes (load_timeline).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime

from bridge.errors import PATH_QUOTE_CHARS, TimelineError, quote
from bridge.jsondepth import check_timeline_file_depth
from bridge.timeline.clock import tc_rate, timeline_rate

META = "vmb"  # our metadata namespace (score clips, what a scored timeline relinked)
COMMON_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)
_TC = re.compile(r"(?<!\d)\d\d:\d\d:\d\d([:;.])(\d\d)(?!\d)")
_SCHEMA = re.compile(r'"OTIO_SCHEMA"\s*:\s*"([A-Za-z0-9_]+)\.(\d+)"')


@dataclass(frozen=True)
class Loaded:
    """A timeline and what reading it assumed (a guessed EDL rate, an unpacked bundle)."""

    timeline: otio.schema.Timeline
    notes: tuple[str, ...] = ()
    edl_rate: float | None = None  # the rate an EDL was read at


def read_timeline(path: str | Path, rate: float | None = None) -> otio.schema.Timeline:
    """The timeline in `path`; `rate` is the frame rate of an EDL (guessed when None)."""
    return load_timeline(path, rate).timeline


def load_timeline(path: str | Path, rate: float | None = None) -> Loaded:
    """read_timeline, with the notes of what was assumed."""
    p = Path(path)
    try:
        found = p.exists()
    except (OSError, ValueError):  # a name too long or with a NUL: not a file we can read
        found = False
    if not found:
        raise TimelineError(f"{_name(p)}: no such file")
    check_timeline_file_depth(p)  # before OTIO's C++ reader, which a deep file would crash
    suffix = p.suffix.lower()
    notes: list[str] = []
    if suffix == ".edl":
        result, used = _read_edl(p, rate, notes)
    else:
        result, used = _read_other(p, suffix, notes), None
    if isinstance(result, otio.schema.SerializableCollection):  # FCPX: a library of them
        found = list(result.find_children(descended_from_type=otio.schema.Timeline))
        result = found[0] if found else None
    if type(result).__name__ == "UnknownSchema":
        raise _newer(p, _schemas_of(p))
    if not isinstance(result, otio.schema.Timeline):
        raise TimelineError(f"{_name(p)}: holds no timeline")
    if used is not None and result.global_start_time is None:
        result.global_start_time = _edl_start(p, used)
    if rate is not None and used is None and abs(timeline_rate(result) - rate) > 0.01:
        notes.append(f"--rate {rate:g} ignored: the timeline states {timeline_rate(result):g} fps")
    return Loaded(result, tuple(notes), used)


def _name(p: Path) -> str:
    """A client's path as error messages quote it (bounded)."""
    return quote(str(p), PATH_QUOTE_CHARS)


def write_timeline(timeline: otio.schema.Timeline, path: str | Path) -> None:
    """Write with the adapter the suffix names (.otio, .xml, .fcpxml, ...)."""
    try:
        otio.adapters.write_to_file(timeline, str(path))
    except Exception as exc:
        raise TimelineError(f"{path}: cannot write the timeline ({exc})") from exc


# -- the formats -----------------------------------------------------------------------


def _adapter_read(p: Path, **kwargs: object) -> object:
    try:
        return otio.adapters.read_from_file(str(p), **kwargs)
    except Exception as exc:  # adapters raise anything from ValueError to KeyError
        text = str(exc)
        if "unsupported schema version" in text or "UnknownSchema" in text:
            raise _newer(p, _schemas_of(p)) from None
        why = f"{type(exc).__name__}: {quote(text, PATH_QUOTE_CHARS)}"
        raise TimelineError(f"{_name(p)}: not a readable timeline ({why})") from exc


def _read_other(p: Path, suffix: str, notes: list[str]) -> object:
    if suffix == ".otiod":
        return _adapter_read(p, absolute_media_reference_paths=True)
    if suffix == ".otioz":
        folder = _unpacked(p)
        notes.append(f"media of the bundle unpacked to {folder}")
        return _adapter_read(folder, adapter_name="otiod", absolute_media_reference_paths=True)
    return _adapter_read(p)


def _unpacked(p: Path) -> Path:
    """An .otioz unpacked (once per file version) into a cache folder: the media inside
    must stay files while they are scored."""
    if not zipfile.is_zipfile(p):
        raise TimelineError(f"{p}: not a readable timeline (an .otioz must be a zip file)")
    stat = p.stat()
    key = hashlib.sha1(f"{p.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    folder = Path(tempfile.gettempdir()) / "vmb-otioz" / f"{key[:16]}.otiod"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".unpack-"))
    try:
        with zipfile.ZipFile(p) as zf:
            for name in zf.namelist():  # no member may leave the folder
                if name.startswith("/") or ".." in Path(name).parts:
                    raise TimelineError(f"{p}: the bundle holds an unsafe path: {name}")
            zf.extractall(tmp)
        os.replace(tmp, folder)
    except (OSError, zipfile.BadZipFile) as exc:
        if folder.is_dir():  # another reader unpacked it first
            return folder
        raise TimelineError(f"{p}: cannot unpack the bundle ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _read_edl(p: Path, rate: float | None, notes: list[str]) -> tuple[object, float]:
    if rate is not None:
        try:
            return _adapter_read(p, rate=tc_rate(rate)), rate
        except TimelineError as exc:
            raise TimelineError(f"{exc}; is --rate {rate:g} the EDL's frame rate?") from None
    text = p.read_text(errors="replace")
    frames = [int(m.group(2)) for m in _TC.finditer(text)]
    drop = any(m.group(1) == ";" for m in _TC.finditer(text)) or bool(
        re.search(r"^FCM:\s*DROP FRAME", text, re.MULTILINE)
    )
    top = max(frames, default=0)
    tried: list[str] = []
    for candidate in _candidates(top, drop):
        try:
            result = otio.adapters.read_from_file(str(p), rate=tc_rate(candidate))
        except Exception as exc:  # noqa: BLE001 - the next rate may fit
            tried.append(f"{candidate:g} ({exc})")
            continue
        if top >= 23:
            notes.append(
                f"EDL frame rate {candidate:g} fps: the lowest common rate its timecodes fit "
                f"(frames up to {top:02d}); pass --rate if it is another"
            )
        else:
            notes.append(
                f"EDL frame rate assumed {candidate:g} fps: its timecodes fit any common rate; "
                "pass --rate if it is another"
            )
        return result, candidate
    detail = "; ".join(tried) if tried else f"frames up to {top:02d}"
    raise TimelineError(
        f"{p}: the EDL's timecodes fit none of the common frame rate(s) "
        f"({', '.join(f'{r:g}' for r in COMMON_RATES)}: {detail}); give its rate with --rate FPS"
    )


def _candidates(top_frame: int, drop: bool) -> list[float]:
    """Common rates whose frame numbers reach `top_frame`, lowest first; 23.976 reads as 24
    (the same timecodes), 29.97 and 59.94 only for drop-frame timecode."""
    out = []
    for rate in COMMON_RATES:
        nominal = round(rate)
        ntsc = nominal != rate
        if nominal <= top_frame or (ntsc and (nominal == 24 or not drop)):
            continue
        if drop and not ntsc and nominal in (30, 60):
            continue
        out.append(rate)
    return out


def _edl_start(path: Path, rate: float) -> RationalTime | None:
    """The cmx_3600 reader starts the timeline at its first event; the EDL's record
    timecodes are the timeline clock, so the first record-in is the global start."""
    tc = r"(\d\d:\d\d:\d\d[:;.]\d\d)"
    event = re.compile(rf"^\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+{tc}\s+{tc}\s+{tc}\s+{tc}")
    for line in path.read_text(errors="replace").splitlines():
        match = event.match(line.strip())
        if match:
            return otio.opentime.from_timecode(match.group(3), tc_rate(rate))
    return None


# -- a file from a newer OpenTimelineIO ------------------------------------------------


def _schemas_of(p: Path) -> str:
    """The OTIO JSON text of a file or bundle ("" when there is none to read)."""
    try:
        if p.is_dir():
            return (p / "content.otio").read_text(errors="replace")
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                return zf.read("content.otio").decode("utf-8", "replace")
        return p.read_text(errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return ""


def _newer(p: Path, text: str) -> TimelineError:
    known = otio.core.type_version_map()
    newer = sorted(
        {
            f"{name}.{version}"
            for name, version in _SCHEMA.findall(text)
            if name not in known or int(version) > known[name]
        }
    )
    what = f" (it uses {', '.join(newer[:6])})" if newer else ""
    return TimelineError(
        f"{p}: made by a newer OpenTimelineIO than the installed {otio.__version__}{what}; "
        "update OpenTimelineIO, or export the timeline for an older OTIO version"
    )
