"""JSONL manifests for training and dataset tools: one record per line, bad lines reported
with their line number, fatal or skipped by flag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from bridge.errors import InvalidRequest

T = TypeVar("T")
OnError = Literal["fail", "skip"]


def read_jsonl(
    path: Path, parse: Callable[[str, int], T], on_error: OnError = "fail", what: str = "file"
) -> tuple[list[T], list[str]]:
    """Records parsed by `parse(line, number)` and the messages of the lines skipped."""
    if on_error not in ("fail", "skip"):
        raise InvalidRequest(f"on_error must be fail or skip, not {on_error!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequest(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {what} {path}: {exc}") from None
    records: list[T] = []
    skipped: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            records.append(parse(raw, number))
        except InvalidRequest as exc:
            if on_error == "fail":
                raise
            skipped.append(exc.message)
    return records, skipped


def json_object(raw: str, where: str, known: frozenset[str] | set[str]) -> dict:
    """One line as a JSON object with only known keys, or InvalidRequest naming the line."""
    import json

    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where}: each line must be a JSON object")
    unknown = set(data) - set(known)
    if unknown:
        raise InvalidRequest(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return data
