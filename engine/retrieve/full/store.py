"""Files of the full music library besides SQLite: the append-only float16 embedding
matrices and the writer's lock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.retrieve.full.schema import LibraryError


class Matrix:
    """An append-only float16 matrix file; the committed row count is kept by the caller."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim

    def rows_on_disk(self) -> int:
        return self.path.stat().st_size // (2 * self.dim) if self.path.exists() else 0

    def truncate(self, rows: int) -> None:
        if self.path.exists() and self.path.stat().st_size != rows * 2 * self.dim:
            with open(self.path, "r+b") as fh:
                fh.truncate(rows * 2 * self.dim)
                os.fsync(fh.fileno())

    def append(self, block: np.ndarray) -> None:
        data = np.ascontiguousarray(block, dtype=np.float16)
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise LibraryError(
                f"{self.path.name}: rows of width {self.dim} expected, got {data.shape}"
            )
        with open(self.path, "ab") as fh:
            fh.write(data.tobytes())
            fh.flush()
            os.fsync(fh.fileno())

    def view(self, rows: int) -> np.ndarray:
        if rows == 0:
            return np.zeros((0, self.dim), np.float16)
        return np.memmap(self.path, dtype=np.float16, mode="r", shape=(rows, self.dim))


class WriterLock:
    """One writing process at a time (an advisory lock on a file; a crash drops it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def acquire(self) -> None:
        self.fh = open(self.path, "a+")  # noqa: SIM115 - held for the writer's lifetime
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self.fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            raise LibraryError(
                f"another process is writing the library in {self.path.parent} "
                "(a `vmb library add` still running?)"
            ) from None

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()  # closing drops the lock (and a crash drops it too)
            self.fh = None
