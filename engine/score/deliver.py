"""Deliverables of a scored timeline: the mixed soundtrack WAV and the HTML cue sheet."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.util import atomic


@dataclass(frozen=True)
class PlacedCue:
    """A rendered cue and where it sits on the timeline (seconds from the timeline start)."""

    name: str
    audio: Path
    offset_s: float
    record_in_s: float  # on the timeline's own clock (includes its start offset)
    record_out_s: float
    info: dict[str, Any]


def mix(cues: Sequence[PlacedCue], length_s: float, out: Path, sample_rate: int = 44100) -> Path:
    """Sum every cue at its offset into one stereo WAV of the timeline's length (atomic)."""
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
    tmp = atomic.temp_path(out)
    sf.write(tmp, total, sample_rate, subtype="PCM_24", format="WAV")
    return atomic.publish(tmp, out)


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


def cue_sheet(cues: Sequence[PlacedCue], title: str, out: Path) -> Path:
    """An HTML cue sheet: each cue's time, description, attributes and a thumbnail."""
    rows = []
    for i, cue in enumerate(cues, 1):
        attrs = cue.info.get("attributes", {})
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
            f"weights: {html.escape(str(cue.info.get('weights')))}</div></td>"
            f"<td><img alt='waveform and spectrogram' src='data:image/png;base64,"
            f"{_thumbnail(cue.audio)}'></td>"
            f"<td><a href='{html.escape(cue.audio.name)}'>{html.escape(cue.audio.name)}</a></td>"
            "</tr>"
        )
    doc = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Cue sheet: {html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}}
.a{{color:#666;font-size:.85em;margin-top:.3em}}
.n{{color:#a35200;font-size:.85em;margin-top:.3em}}</style></head><body>
<h1>Cue sheet: {html.escape(title)}</h1>
<p>{len(cues)} cue(s), made by VMB Score.</p>
<table><tr><th>#</th><th>cue</th><th>in / out</th><th>description</th><th>audio</th>
<th>file</th></tr>
{"".join(rows)}
</table></body></html>
"""
    return atomic.write_text(out, doc)
