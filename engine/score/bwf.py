"""Broadcast WAV provenance: a `bext` chunk and an `iXML` block inside every stem and mix.

A file found on a drive months later says what made it and how to make it again, and hosts
that read BWF time references (REAPER, Resolve/Fairlight, Pro Tools) place it at its position.
`bext` follows EBU Tech 3285 v2 (602 fixed bytes + coding history); iXML is the iXML 2.x
`BWFXML` document with a `VMB_SCORE` block holding the cue's request, seed, knobs, description,
references and the output's licence. Chunks are added by copying the RIFF chunks the audio
writer made (libsndfile) and replacing any earlier `bext`/`iXML`: the samples are untouched.
"""

from __future__ import annotations

import json
import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from bridge.errors import InvalidRequest
from engine import __version__
from engine.util import atomic

ORIGINATOR = f"VMB Score {__version__}"
BEXT_FIXED = "<256s32s32s10s8sIIH64shhhhh180s"  # EBU Tech 3285 v2, 602 bytes
BEXT_UNSET_LOUDNESS = 0x7FFF  # "not measured" in bext v2's loudness fields
MAX_IXML = 1 << 20  # a provenance block is a few KiB; refuse to read anything huge
MAX_RIFF = 0xFFFFFFFF
_REPLACED = {b"bext", b"iXML"}


@dataclass(frozen=True)
class Provenance:
    """What a WAV says about itself: the bext fields and the VMB_SCORE iXML block."""

    description: str
    time_reference: int  # samples from the timeline start (0: no timeline)
    sample_rate: int
    vmb: dict[str, Any]  # backend, weights, seed, knobs, description, references, licence, ...
    project: str = ""
    scene: str = ""
    originator_reference: str = ""
    created: datetime = field(default_factory=lambda: datetime.now().astimezone())
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size]


def _centi(value: float | None) -> int:
    if value is None:
        return BEXT_UNSET_LOUDNESS
    return max(-32768, min(32767, round(value * 100)))


def bext_chunk(p: Provenance, channels: int, bits: int) -> bytes:
    """The `bext` payload (EBU Tech 3285 v2)."""
    stereo = "stereo" if channels == 2 else "mono" if channels == 1 else f"{channels}ch"
    history = f"A=PCM,F={p.sample_rate},W={bits},M={stereo},T={ORIGINATOR}\r\n"
    fixed = struct.pack(
        BEXT_FIXED,
        _ascii(p.description, 256),
        _ascii(ORIGINATOR, 32),
        _ascii(p.originator_reference, 32),
        p.created.strftime("%Y-%m-%d").encode(),
        p.created.strftime("%H:%M:%S").encode(),
        p.time_reference & 0xFFFFFFFF,
        p.time_reference >> 32,
        2,
        b"",
        _centi(p.loudness_lufs),
        BEXT_UNSET_LOUDNESS,
        _centi(p.true_peak_dbtp),
        BEXT_UNSET_LOUDNESS,
        BEXT_UNSET_LOUDNESS,
        b"",
    )
    return fixed + history.encode("ascii")


def _text(parent: ET.Element, tag: str, value: Any) -> None:
    """A text element; anything but a string is JSON, marked so a reader decodes it."""
    el = ET.SubElement(parent, tag)
    if isinstance(value, str):
        el.text = value
    else:
        el.text = json.dumps(value, default=str)
        el.set("format", "json")


def ixml_chunk(p: Provenance) -> bytes:
    """An iXML document: the standard PROJECT/SCENE/NOTE/BEXT fields plus VMB_SCORE."""
    root = ET.Element("BWFXML")
    _text(root, "IXML_VERSION", "2.10")
    _text(root, "PROJECT", p.project)
    _text(root, "SCENE", p.scene)
    _text(root, "NOTE", p.description)
    bext = ET.SubElement(root, "BEXT")
    _text(bext, "BWF_DESCRIPTION", p.description[:256])
    _text(bext, "BWF_ORIGINATOR", ORIGINATOR)
    _text(bext, "BWF_ORIGINATION_DATE", p.created.strftime("%Y-%m-%d"))
    _text(bext, "BWF_ORIGINATION_TIME", p.created.strftime("%H:%M:%S"))
    _text(bext, "BWF_TIME_REFERENCE_LOW", str(p.time_reference & 0xFFFFFFFF))
    _text(bext, "BWF_TIME_REFERENCE_HIGH", str(p.time_reference >> 32))
    vmb = ET.SubElement(root, "VMB_SCORE", {"version": "1"})
    for key, value in p.vmb.items():
        _text(vmb, key.upper(), value)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8")


def _chunks(fh: BinaryIO, path: Path) -> list[tuple[bytes, int, int]]:
    """(id, payload offset, payload size) of every chunk in a RIFF/WAVE file."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise InvalidRequest(f"{path} is not a RIFF/WAVE file")
    end = min(os.fstat(fh.fileno()).st_size, 8 + struct.unpack("<I", head[4:8])[0])
    out, pos = [], 12
    while pos + 8 <= end:
        fh.seek(pos)
        cid, size = struct.unpack("<4sI", fh.read(8))
        if pos + 8 + size > end:
            raise InvalidRequest(f"{path}: chunk {cid!r} runs past the end of the file")
        out.append((cid, pos + 8, size))
        pos += 8 + size + (size & 1)
    return out


def _fmt(fh: BinaryIO, chunks: list[tuple[bytes, int, int]], path: Path) -> tuple[int, int]:
    for cid, off, size in chunks:
        if cid == b"fmt " and size >= 16:
            fh.seek(off)
            _, channels, _, _, _, bits = struct.unpack("<HHIIHH", fh.read(16))
            return channels, bits
    raise InvalidRequest(f"{path} has no fmt chunk")


def _write_chunk(out: BinaryIO, cid: bytes, payload: bytes) -> None:
    out.write(
        struct.pack("<4sI", cid, len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")
    )


def stamp(src: Path, provenance: Provenance, dst: Path | None = None) -> Path:
    """Write `src` with bext first and iXML last to `dst` (default: over `src`), atomically.

    Where `dst` differs, `src` (a temp file of the caller's) is removed once `dst` is published.
    """
    dst = dst or src
    tmp = atomic.temp_path(dst) if dst == src else atomic.temp_path(dst).with_suffix(".bwf")
    with open(src, "rb") as fh:
        chunks = _chunks(fh, src)
        channels, bits = _fmt(fh, chunks, src)
        bext, ixml = bext_chunk(provenance, channels, bits), ixml_chunk(provenance)
        with open(tmp, "wb") as out:
            out.write(b"RIFF\0\0\0\0WAVE")
            _write_chunk(out, b"bext", bext)
            for cid, off, size in chunks:
                if cid in _REPLACED:
                    continue
                out.write(struct.pack("<4sI", cid, size))
                fh.seek(off)
                left = size
                while left:
                    block = fh.read(min(left, 1 << 20))
                    if not block:
                        raise InvalidRequest(f"{src} ends inside its {cid!r} chunk")
                    out.write(block)
                    left -= len(block)
                if size & 1:
                    out.write(b"\0")
            _write_chunk(out, b"iXML", ixml)
            riff = out.tell() - 8
            if riff > MAX_RIFF:
                raise InvalidRequest(f"{dst.name} would be over 4 GiB, the RIFF limit")
            out.seek(4)
            out.write(struct.pack("<I", riff))
    atomic.publish(tmp, dst)
    if dst != src:
        src.unlink(missing_ok=True)
    return dst


def read(path: Path) -> dict[str, Any]:
    """The provenance a VMB Score WAV carries: {"time_reference", "description", "vmb": {...}}.

    VMB_SCORE values marked as JSON are decoded; errors are clear messages.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        chunks = {cid: (off, size) for cid, off, size in _chunks(fh, path)}
        if b"iXML" not in chunks:
            raise InvalidRequest(f"{path} carries no iXML provenance (not made by VMB Score?)")
        off, size = chunks[b"iXML"]
        if size > MAX_IXML:
            raise InvalidRequest(f"{path}: its iXML block is over {MAX_IXML >> 10} KiB")
        fh.seek(off)
        raw = fh.read(size)
        time_reference = 0
        if b"bext" in chunks and chunks[b"bext"][1] >= 346:
            fh.seek(chunks[b"bext"][0] + 338)
            lo, hi = struct.unpack("<II", fh.read(8))
            time_reference = lo | hi << 32
    try:
        root = ET.fromstring(raw.rstrip(b"\0"))
    except ET.ParseError as exc:
        raise InvalidRequest(f"{path}: its iXML block is not valid XML ({exc})") from None
    block = root.find("VMB_SCORE")
    if block is None:
        raise InvalidRequest(f"{path} has iXML but no VMB_SCORE block (not made by VMB Score)")
    vmb: dict[str, Any] = {}
    for el in block:
        text = el.text or ""
        if el.get("format") != "json":
            vmb[el.tag.lower()] = text
            continue
        try:
            vmb[el.tag.lower()] = json.loads(text)
        except ValueError:
            raise InvalidRequest(f"{path}: VMB_SCORE/{el.tag} is not valid JSON") from None
    return {
        "time_reference": time_reference,
        "description": root.findtext("NOTE") or "",
        "project": root.findtext("PROJECT") or "",
        "scene": root.findtext("SCENE") or "",
        "vmb": vmb,
    }
