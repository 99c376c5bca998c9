"""Durable file replacement: write a temp file in the same folder, fsync it, rename it over
the target, fsync the folder. A reader (or a host NLE) sees the old file or the new one,
never half of one, even after a crash."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make renames in `path` durable (POSIX); a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def temp_path(path: Path) -> Path:
    """A hidden sibling name, unique per process (two writers never share a temp file)."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def publish(tmp: Path, path: Path) -> Path:
    """fsync `tmp`, rename it to `path`, fsync the folder."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    tmp = temp_path(path)
    tmp.write_bytes(data)
    return publish(tmp, path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
