"""One write transaction on SQLite: BEGIN IMMEDIATE serialises writers across processes,
and anything raised inside rolls the whole transaction back."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def immediate(
    conn: sqlite3.Connection, lock: threading.Lock | threading.RLock | None = None
) -> Iterator[sqlite3.Connection]:
    with lock if lock is not None else contextlib.nullcontext():
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
