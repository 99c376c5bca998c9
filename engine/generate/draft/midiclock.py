"""Where FluidSynth's MIDI player sends a file's events: the 64-frame blocks, found by reading
the file and running the player's clock (FluidSynth 2.3, ``player.timing-source=sample``).

Why: FluidSynth runs the player at the start of every block, but one ``write_float`` call of
several blocks runs it for all of them before rendering any, so an event due in the call's
third block would sound from its first. The CLI writes one block a call; the in-process
renderer writes from one event block to the next, which keeps every event in its block (the
same timing, the same audio to float rounding: libfluid's doc) in a twentieth of the calls,
provided each event block is known. The clock below is the player's arithmetic:
block b is at ``msec = int(1000 * 64 b / rate)``, the player's tick there is
``start_ticks + int((msec - start_msec) / deltatime + 0.5)`` with ``deltatime`` the tempo
in float32 ms per tick, and a tempo event moves ``start_*`` to the block it is sent in.
The renderer checks the player's tick after every call against this clock and falls back to
one block a call if they ever disagree.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TEMPO = 500000  # microseconds a beat before the first tempo event (the player's too)


class NotPlain(ValueError):
    """A file this reader does not time (SMPTE division, a malformed chunk, a tempo of 0): pull
    per block."""


def _varlen(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = data[i]
        i += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i
    raise NotPlain("variable-length number longer than 4 bytes")


def _track_events(data: bytes, i: int, end: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Absolute ticks of every event in one track, and its tempo events (tick, us a beat)."""
    ticks, tempos, tick, status = [], [], 0, 0
    while i < end:
        delta, i = _varlen(data, i)
        tick += delta
        byte = data[i]
        if byte >= 0x80:
            status, i = byte, i + 1
        elif status == 0:
            raise NotPlain("running status without a status byte")
        if status == 0xFF:
            kind = data[i]
            length, i = _varlen(data, i + 1)
            if kind == 0x51 and length == 3:
                tempos.append((tick, int.from_bytes(data[i : i + 3], "big")))
            i += length
            status = 0  # meta and sysex events cancel running status
        elif status in (0xF0, 0xF7):
            length, i = _varlen(data, i)
            i += length
            status = 0
        elif status > 0xF0:  # not in a MIDI file: rather one block a call than a wrong plan
            raise NotPlain(f"status byte {status:#x} in a track")
        else:
            i += 1 if (status & 0xF0) in (0xC0, 0xD0) else 2
        ticks.append(tick)
    return ticks, tempos


def read_events(data: bytes) -> tuple[int, list[int], list[tuple[int, int]]]:
    """(ticks a beat, sorted distinct ticks of all events, tempo events in the order the player
    meets them in one block: by track, then by time)."""
    if data[:4] != b"MThd" or len(data) < 14:
        raise NotPlain("no MThd header")
    ntracks, division = int.from_bytes(data[10:12], "big"), int.from_bytes(data[12:14], "big")
    if division == 0 or division & 0x8000:
        raise NotPlain("SMPTE or zero division")
    i = 8 + int.from_bytes(data[4:8], "big")
    ticks: set[int] = set()
    tempos: list[tuple[int, int]] = []
    for _ in range(ntracks):
        length = int.from_bytes(data[i + 4 : i + 8], "big")
        if data[i : i + 4] != b"MTrk" or i + 8 + length > len(data):
            raise NotPlain("truncated or missing MTrk chunk")
        t, tp = _track_events(data, i + 8, i + 8 + length)
        ticks.update(t)
        tempos.extend(tp)
        i += 8 + length
    return division, sorted(ticks), tempos


def _deltatime(tempo: int, division: int) -> float:
    """ms a tick as the player holds it: float32 ``tempo / division / 1000``. A tempo of 0 has
    no ticks a ms (the player divides by it), so such a file is pulled a block a call."""
    if tempo <= 0:
        raise NotPlain("a tempo of 0 microseconds a beat")
    f = np.float32
    return float(f(f(tempo) / f(division)) / f(1000.0))


class PlayerClock:
    """The player's tick at each block, following the tempo events it has sent."""

    def __init__(self, division: int, sample_rate: float, block: int) -> None:
        self.division, self.rate, self.block = division, float(sample_rate), block
        self.dt = _deltatime(DEFAULT_TEMPO, division)
        self.start_msec, self.start_ticks = 0, 0

    def msec(self, b: int) -> int:
        return int(1000.0 * float(b * self.block) / self.rate)

    def tick(self, b: int) -> int:
        return self.start_ticks + int((self.msec(b) - self.start_msec) / self.dt + 0.5)

    def first_block(self, tick: int, after: int) -> int:
        """The first block from ``after`` whose player tick reaches ``tick``."""
        want = self.start_msec + (tick - self.start_ticks - 0.5) * self.dt
        b = max(after, int(want * self.rate / (1000.0 * self.block)) - 2)
        while self.tick(b) < tick:
            b += 1
        return b

    def tempo(self, b: int, tempo: int) -> None:
        """A tempo event sent in block ``b``."""
        self.start_ticks, self.start_msec = self.tick(b), self.msec(b)
        self.dt = _deltatime(tempo, self.division)


def event_blocks(data: bytes, sample_rate: float, block: int) -> list[tuple[int, int]]:
    """The blocks after block 0 in which the player sends events (ascending), each with the
    player's tick one block before it (what the renderer checks after writing up to it).
    Raises NotPlain for files it does not time."""
    division, ticks, tempos = read_events(data)
    clock = PlayerClock(division, sample_rate, block)
    tempo_at: dict[int, int] = {}
    for tick, tempo in tempos:
        tempo_at[tick] = tempo  # several at one tick: the player keeps the last it meets
    blocks: list[tuple[int, int]] = []
    b = reached = 0
    for tick in ticks:
        if tick > reached:
            nb = clock.first_block(tick, b + 1)
            blocks.append((nb, clock.tick(nb - 1)))
            b, reached = nb, clock.tick(nb)
        if tick in tempo_at:
            clock.tempo(b, tempo_at[tick])
    return blocks
