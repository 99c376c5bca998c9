"""A RIFF/WAVE reader for tests, written from EBU Tech 3285 and the iXML spec, independent of
engine.score.bwf (so a bug in the writer cannot hide in a shared reader)."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path


def chunks(path: Path) -> list[tuple[str, bytes]]:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", f"{path} is not RIFF/WAVE"
    (riff_size,) = struct.unpack_from("<I", data, 4)
    assert riff_size == len(data) - 8, "RIFF size field disagrees with the file size"
    out, pos = [], 12
    while pos < len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        out.append((cid.decode("ascii"), data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size % 2)
    assert pos == len(data)
    return out


def chunk(path: Path, cid: str) -> bytes:
    found = [body for name, body in chunks(path) if name == cid]
    assert len(found) == 1, f"{path}: {len(found)} {cid!r} chunks"
    return found[0]


def bext(path: Path) -> dict[str, object]:
    body = chunk(path, "bext")

    def text(a: int, b: int) -> str:
        return body[a:b].split(b"\0", 1)[0].decode("ascii")

    lo, hi, version = struct.unpack_from("<IIH", body, 338)
    loudness, _, true_peak = struct.unpack_from("<hhh", body, 412)
    return {
        "description": text(0, 256),
        "originator": text(256, 288),
        "originator_reference": text(288, 320),
        "date": text(320, 330),
        "time": text(330, 338),
        "time_reference": lo + (hi << 32),
        "version": version,
        "loudness": loudness,
        "true_peak": true_peak,
        "coding_history": body[602:].decode("ascii"),
    }


def ixml(path: Path) -> ET.Element:
    return ET.fromstring(chunk(path, "iXML"))
