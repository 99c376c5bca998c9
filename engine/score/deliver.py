"""Deliverables of a scored timeline: the mixed soundtrack WAV and the cue sheets.

The HTML cue sheet is for the editor (thumbnails, descriptions); the CSV is the standard
music cue sheet broadcasters and rights societies ask for. Both read the same `PlacedCue`
records, so nothing is typed twice.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bridge.errors import quote
from bridge.timeline import timecode
from engine import __version__
from engine.score.provenance import stamp_mix
from engine.util import atomic

USAGES = {
    "BI": "Background Instrumental",
    "BV": "Background Vocal",
    "VI": "Visual Instrumental",
    "VV": "Visual Vocal",
    "MT": "Main Title",
    "ET": "End Title",
}
DEFAULT_USAGE = "BI"
CSV_COLUMNS = (
    "Production Title",
    "Cue No",
    "Cue Title",
    "In",
    "Out",
    "Duration",
    "Usage",
    "Composer",
    "Publisher / Library",
    "Source",
    "Licence",
    "Weights",  # per stage: "describe none, retrieve random, generate random"
    "Conditioning",  # what reached the model besides the text
)
DEFAULT_COMPOSER = f"VMB Score {__version__} (machine-generated)"
NO_PUBLISHER = "none (generated, no library music)"


@dataclass(frozen=True)
class PlacedCue:
    """A rendered cue and where it sits on the timeline (seconds from the timeline start)."""

    name: str
    audio: Path
    offset_s: float
    record_in_s: float  # on the timeline's own clock (includes its start offset)
    record_out_s: float
    info: dict[str, Any]  # the cue's record (Cue.to_json())
    title: str = ""  # the clip the cue scores
    usage: str = DEFAULT_USAGE  # a USAGES code
    adapted: tuple[str, ...] = ()  # library tracks whose audio conditioned the cue
    thumbnail: str = ""  # the cue sheet's picture of it (base64 PNG) where already drawn


THUMBNAIL = re.compile(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'></td><td><a href='([^']+)'")


def thumbnails_of(sheet: Path) -> dict[str, str]:
    """{stem file name: its thumbnail} from an HTML cue sheet this module wrote (a conform
    re-uses those of the stems it keeps or moves: the same samples, the same picture)."""
    try:
        text = sheet.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return {html.unescape(name): png for png, name in THUMBNAIL.findall(text)}


def change_text(info: dict[str, Any]) -> str:
    """A conformed cue's change in words ("kept: picture and length unchanged"); "" else."""
    if not info.get("change"):
        return ""
    reason = info.get("change_reason")
    return f"{info['change']}: {reason}" if reason else str(info["change"])


def _with_changes(cues: Sequence[PlacedCue]) -> bool:
    """The cue sheets get a "Changes" column for a conformed timeline only."""
    return any(c.info.get("change") for c in cues)


def usage_code(value: str) -> str:
    """'MT', 'mt' or 'main title' -> 'MT'; anything else is an error naming the choices."""
    text = value.strip()
    for code, name in USAGES.items():
        if text.upper() == code or text.lower() == name.lower():
            return code
    choices = ", ".join(f"{c} ({n.lower()})" for c, n in USAGES.items())
    raise ValueError(f"unknown cue usage {quote(value)}; usages: {choices}")


def mix(
    cues: Sequence[PlacedCue],
    length_s: float,
    out: Path,
    sample_rate: int = 44100,
    title: str = "timeline",
    start_s: float = 0.0,
) -> Path:
    """Sum every cue at its offset into one stereo WAV of the timeline's length (atomic),
    with bext (time reference: the timeline's start, `start_s` on its own clock) and iXML
    naming its cues."""
    total = np.zeros((max(1, round(length_s * sample_rate)), 2), np.float32)
    for cue in cues:
        audio, sr = sf.read(cue.audio, dtype="float32", always_2d=True)
        if sr != sample_rate:
            raise ValueError(f"{cue.audio} is {sr} Hz, the mix is {sample_rate} Hz")
        if audio.shape[1] == 1:
            audio = np.repeat(audio, 2, axis=1)
        start = round(cue.offset_s * sample_rate)
        end = min(len(total), start + len(audio))
        if end > start >= 0:
            total[start:end] += audio[: end - start, :2]
    peak = float(np.max(np.abs(total))) if total.size else 0.0
    if peak > 0.99:  # overlapping cues: keep the mix from clipping
        total *= 0.99 / peak
    tmp = out.with_name(f".{out.name}.{os.getpid()}.pcm")
    try:
        sf.write(tmp, total, sample_rate, subtype="PCM_24", format="WAV")
        records = [{**c.info, "cue_id": c.name, "record_in_s": c.record_in_s} for c in cues]
        licences = [str(c.info.get("licence", "")) for c in cues]
        return stamp_mix(tmp, out, title, sample_rate, records, licences, start_s)
    finally:
        tmp.unlink(missing_ok=True)


def _thumbnail(path: Path) -> str:
    """A waveform over a spectrogram, as an inline PNG (no external files to lose)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(4.8, 1.9), dpi=80, sharex=True)
    t = np.arange(len(mono)) / sr
    step = max(1, len(mono) // 2000)
    ax1.plot(t[::step], mono[::step], linewidth=0.5, color="#3a6ea5")
    ax1.set_ylim(-1, 1)
    ax1.axis("off")
    ax2.specgram(mono, NFFT=1024, Fs=sr, noverlap=512, cmap="magma")
    ax2.set_ylim(0, 8000)
    ax2.axis("off")
    fig.subplots_adjust(0, 0, 1, 1, 0, 0.05)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _tc(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h:02d}:{m:02d}:{s:06.3f}"


def conditioning_summary(cond: dict[str, Any]) -> str:
    """Which references conditioned a full cue and the weights each stage ran on, in words."""
    control = "no ControlFormer input"
    if cond["control"]:
        control = f"ControlFormer from {cond['control_from']}"
    style = f"style from {cond['style_from']}" if cond["style"] else "no style input"
    stages = ", ".join(f"{k} {v}" for k, v in cond["weights"].items())
    return f"{control}; {style}; weights: {stages}"


def _references_text(cond: dict[str, Any]) -> str:
    broad = ", ".join(cond.get("broad") or []) or "none"
    targeted = ", ".join(
        f"{t['id']} ({t['partition']})" if t.get("partition") else t["id"]
        for t in cond.get("targeted") or []
    )
    return f"broad references: {broad}; targeted: {targeted or 'none'}"


def _conditioning_html(info: dict[str, Any]) -> str:
    cond = info.get("conditioning")
    if not cond:
        return ""
    return (
        f"<div class=a>model text: {html.escape(str(cond['text']))}</div>"
        f"<div class=a>{html.escape(_references_text(cond))}</div>"
        f"<div class=a>{html.escape(conditioning_summary(cond))}</div>"
    )


def _weights_cell(info: dict[str, Any]) -> str:
    """The weights each stage ran on (full cues), else the cue's one label."""
    stages = (info.get("conditioning") or {}).get("weights")
    if stages:
        return ", ".join(f"{k} {v}" for k, v in stages.items())
    return str(info.get("weights", ""))


def _conditioning_cell(info: dict[str, Any]) -> str:
    cond = info.get("conditioning")
    if not cond:
        return "description and attributes (no reference conditioning)"
    control = f"ControlFormer from {cond['control_from']}" if cond["control"] else "no control"
    style = f"style from {cond['style_from']}" if cond["style"] else "no style"
    cut = "; text cut at the encoder limit" if cond.get("text_cut") else ""
    return f"{control}; {style}; {_references_text(cond)}{cut}"


def cue_sheet(
    cues: Sequence[PlacedCue], title: str, out: Path, licence_lines: Sequence[str] = ()
) -> Path:
    """An HTML cue sheet: each cue's time, description, attributes and a thumbnail, and
    what the user may do with the music (`licence_lines`, from engine.score.licence)."""
    rows = []
    changes = _with_changes(cues)
    for i, cue in enumerate(cues, 1):
        attrs = cue.info.get("attributes", {})
        change = f"<td>{html.escape(change_text(cue.info))}</td>" if changes else ""
        attr_text = ", ".join(
            f"{k}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in attrs.items()
            if v not in (None, [], "")
        )
        # "scored without picture", relinked media: said where the cue is listed
        notes = "".join(f"<div class=n>{html.escape(n)}</div>" for n in cue.info.get("notes", []))
        rows.append(
            "<tr>"
            f"<td>{i}</td><td>{html.escape(cue.name)}</td>"
            f"<td>{_tc(cue.record_in_s)}<br>{_tc(cue.record_out_s)}</td>"
            f"<td>{html.escape(cue.info.get('description', ''))}"
            f"<div class=a>{html.escape(attr_text)}</div>{notes}"
            f"<div class=a>seed {cue.info.get('seed')} · "
            f"{html.escape(str(cue.info.get('backend')))} · "
            f"weights: {html.escape(str(cue.info.get('weights')))} · "
            f"{html.escape(USAGES[cue.usage].lower())}</div>"
            f"{_conditioning_html(cue.info)}"
            f"<div class=a>licence: {html.escape(str(cue.info.get('licence', '')))}</div></td>"
            f"<td><img alt='waveform and spectrogram' src='data:image/png;base64,"
            f"{cue.thumbnail or _thumbnail(cue.audio)}'></td>"
            f"<td><a href='{html.escape(cue.audio.name)}'>{html.escape(cue.audio.name)}</a></td>"
            f"{change}</tr>"
        )
    changes_head = "<th>changes</th>" if changes else ""
    doc = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Cue sheet: {html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}}
.a{{color:#666;font-size:.85em;margin-top:.3em}}
.n{{color:#a35200;font-size:.85em;margin-top:.3em}}</style></head><body>
<h1>Cue sheet: {html.escape(title)}</h1>
<p>{len(cues)} cue(s), made by VMB Score.</p>
<h2>What you may do with this music</h2>
{"".join(f"<p>{html.escape(line)}</p>" for line in licence_lines)}
<table><tr><th>#</th><th>cue</th><th>in / out</th><th>description</th><th>audio</th>
<th>file</th>{changes_head}</tr>
{"".join(rows)}
</table></body></html>
"""
    return atomic.write_text(out, doc)


def _mmss(seconds: float) -> str:
    """Cue-sheet duration: whole seconds, never 00:00 for a real cue."""
    total = max(1, math.floor(seconds + 0.5))  # half up: 4.5 s is 00:05
    return f"{total // 60:02d}:{total % 60:02d}"


def _source(cue: PlacedCue) -> str:
    backend = str(cue.info.get("backend", ""))
    if cue.adapted:
        return f"{backend}; adapts library track(s): {', '.join(cue.adapted)}"
    return backend


def music_cue_sheet(
    cues: Sequence[PlacedCue],
    title: str,
    rate: float,
    out: Path,
    composer: str = "",
    publisher: str = "",
    drop_frame: bool | None = None,
) -> Path:
    """The standard music cue sheet as CSV (UTF-8 with BOM, so spreadsheet apps read it)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    changes = _with_changes(cues)
    writer.writerow(CSV_COLUMNS + (("Changes",) if changes else ()))
    for i, cue in enumerate(cues, 1):
        library = f"library: {', '.join(cue.adapted)}" if cue.adapted else ""
        pub = "; ".join(p for p in (publisher, library) if p) or NO_PUBLISHER
        writer.writerow(
            (
                title,
                i,
                cue.title or cue.name,
                timecode(cue.record_in_s, rate, drop_frame),
                timecode(cue.record_out_s, rate, drop_frame),
                _mmss(cue.record_out_s - cue.record_in_s),
                USAGES[cue.usage],
                composer or DEFAULT_COMPOSER,
                pub,
                _source(cue),
                cue.info.get("licence", ""),
                _weights_cell(cue.info),
                _conditioning_cell(cue.info),
                *((change_text(cue.info),) if changes else ()),
            )
        )
    return atomic.write_bytes(out, buf.getvalue().encode("utf-8-sig"))
