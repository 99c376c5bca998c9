"""Extra RIFF chunks appended to a finished WAV (standard library only).

A `smpl` chunk carries loop points that samplers, REAPER, Resolve and most DAWs read: a looped
cue placed on a timeline can be stretched and repeats seamlessly. Other chunk writers (bext,
iXML) can live beside this one: they all append a chunk and fix the RIFF size.
"""

from __future__ import annotations

import struct
from pathlib import Path

from bridge.errors import JobError


def append_chunk(path: Path, chunk_id: bytes, payload: bytes) -> None:
    """Append one chunk (padded to an even length) and update the RIFF size, in place."""
    if len(chunk_id) != 4:
        raise ValueError("a RIFF chunk id has four bytes")
    with open(path, "r+b") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise JobError(f"{path} is not a RIFF WAVE file; cannot add a {chunk_id!r} chunk")
        f.seek(0, 2)
        size = f.tell()
        if size % 2:
            f.write(b"\0")
            size += 1
        data = chunk_id + struct.pack("<I", len(payload)) + payload
        if len(payload) % 2:
            data += b"\0"
        f.write(data)
        new_riff = size + len(data) - 8
        if new_riff > 0xFFFFFFFF:
            raise JobError(f"{path} is too large for a RIFF WAVE file")
        f.seek(4)
        f.write(struct.pack("<I", new_riff))


def smpl_payload(sample_rate: int, loop_start: int, loop_end: int, unity_note: int = 60) -> bytes:
    """A `smpl` chunk with one forward loop over sample frames [loop_start, loop_end]
    (inclusive, as the format counts), repeating forever."""
    if not 0 <= loop_start <= loop_end:
        raise ValueError(f"bad loop points {loop_start}..{loop_end}")
    period_ns = round(1e9 / sample_rate)
    header = struct.pack(
        "<9I",
        0,  # manufacturer
        0,  # product
        period_ns,  # sample period in nanoseconds
        unity_note,  # MIDI unity note
        0,  # pitch fraction
        0,  # SMPTE format
        0,  # SMPTE offset
        1,  # one sample loop
        0,  # no sampler-specific data
    )
    # cue point id, type (0 = forward), start, end, fraction, play count (0 = forever)
    loop = struct.pack("<6I", 0, 0, loop_start, loop_end, 0, 0)
    return header + loop


def add_loop_points(path: Path, sample_rate: int, num_samples: int) -> None:
    """Mark the whole file as one seamless loop."""
    append_chunk(path, b"smpl", smpl_payload(sample_rate, 0, max(0, num_samples - 1)))


def read_chunk(path: Path, chunk_id: bytes) -> bytes | None:
    """The payload of the first chunk with this id, or None (a file rewritten by an audio
    library loses chunks it does not know: the caller appends this one again)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            cid, size = struct.unpack("<4sI", header)
            if cid == chunk_id:
                payload = f.read(size)
                return payload if len(payload) == size else None
            f.seek(size + (size & 1), 1)
