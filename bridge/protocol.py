"""The VMB wire protocol: framing, msgpack limits, command schemas, raw array frames.

A message is a list of ZeroMQ frames: ``[TAG, body, *arrays]``. ``TAG`` names the protocol
and its major version; ``body`` is a msgpack map; each extra frame is the raw bytes of one
array whose dtype and shape the body lists under ``"arrays"``. No pickle anywhere.
Minor versions only add optional fields; a breaking change bumps the major and the tag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from bridge.errors import (
    QUOTE_CHARS,
    InvalidRequest,
    MalformedMessage,
    MessageTooLarge,
    UnknownCommand,
    VersionMismatch,
    quote,
)
from bridge.knobs import MAX_SEED

PROTO_MAJOR = 1
PROTO_MINOR = 0
TAG = b"VMB/%d" % PROTO_MAJOR
TAG_PREFIX = b"VMB/"

MAX_FRAMES = 8  # tag + body + up to 6 arrays
MAX_BODY_BYTES = 1 << 20  # 1 MiB of msgpack
MAX_FRAME_BYTES = 64 << 20  # per raw array frame; the socket enforces it too (MAXMSGSIZE)
MAX_DEPTH = 16
MAX_CONTAINER_LEN = 4096
ARRAY_DTYPES = frozenset({"|u1", "|i1", "<u2", "<i2", "<i4", "<i8", "<f2", "<f4", "<f8"})

# Documented bounds of every request field (docs/protocol-limits.md, for client authors).
SEED_MAX = MAX_SEED  # one limit: the knob table's
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # any other integer, params included: signed 64-bit
ID_MAX_CHARS = 64  # job ids (the engine makes 32 hex digits), kind names
KEY_MAX_CHARS = 200  # idempotency keys, client names, rids given as strings
TOKEN_MAX_CHARS = 256
PARAM_KEY_MAX_CHARS = 128  # map keys inside params
# The params a job keeps (msgpack-packed): well under MAX_BODY_BYTES, so a `result` or
# `attach` reply that carries them (and the job's result) always fits in one message.
PARAMS_MAX_BYTES = 512 << 10
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class Field:
    """One request field: its type, whether it must be there, and its bounds.

    kind: "str" (lo..hi characters, optional `choices`), "int" (lo..hi), "num" (finite, lo..hi),
    "ints" (a list of lo..hi ints, each 0..65535), "params" (a map of JSON values),
    "rid" (a request id: a signed 64-bit integer or a string of at most KEY_MAX_CHARS).
    """

    kind: str
    required: bool = False
    lo: float = 0
    hi: float = 0
    choices: tuple[str, ...] = ()


_JOB_ID = Field("str", True, 1, ID_MAX_CHARS)
# Fields every command may carry (checked first: an error reply echoes a valid rid only).
COMMON: dict[str, Field] = {
    "rid": Field("rid"),
    "token": Field("str", False, 0, TOKEN_MAX_CHARS),
}
# Client -> daemon commands: the one schema table. Unknown extra fields are ignored (newer
# clients may add optional ones); known fields are checked before anything else reads them.
COMMANDS: dict[str, dict[str, Field]] = {
    "hello": {
        "proto": Field("ints", True, 1, 4),
        "client": Field("str", False, 0, KEY_MAX_CHARS),
        # 1: have the worker work out its compute block (it imports torch once, lazily)
        "compute": Field("int", False, 0, 1),
    },
    "ping": {},
    "submit": {
        "kind": Field("str", True, 1, ID_MAX_CHARS),
        "params": Field("params", True),
        "idempotency_key": Field("str", False, 1, KEY_MAX_CHARS),
        "seed": Field("int", False, 0, SEED_MAX),
    },
    "attach": {"job_id": _JOB_ID, "last_seq": Field("int", False, 0, INT_MAX)},
    "cancel": {"job_id": _JOB_ID},
    "result": {"job_id": _JOB_ID},
    "close": {"job_id": _JOB_ID},
    "list": {
        "state": Field("str", False, 1, 16, choices=JOB_STATES),
        "limit": Field("int", False, 1, 1000),
        "finished_before": Field("num", False, -(2.0**53), 2.0**53),
    },
}
EVENTS = ("accepted", "progress", "done", "failed", "cancelled")
TERMINAL_EVENTS = frozenset({"done", "failed", "cancelled"})
TERMINAL_STATES = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class Message:
    """A decoded message: the body map and any raw arrays."""

    body: dict[str, Any]
    arrays: tuple[np.ndarray, ...] = field(default_factory=tuple)


def _reject_ext(code: int, data: bytes) -> Any:
    raise MalformedMessage(f"msgpack extension type {code} is not allowed")


def _check_depth(obj: Any) -> None:
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedMessage(f"message nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise MalformedMessage("non-finite numbers are not allowed")


def pack(body: dict[str, Any]) -> bytes:
    data = msgpack.packb(body, use_bin_type=True)
    if len(data) > MAX_BODY_BYTES:
        raise MessageTooLarge(f"message body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}")
    return data


def unpack(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_BODY_BYTES:
        raise MessageTooLarge(f"message body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        body = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_reject_ext,
            max_array_len=MAX_CONTAINER_LEN,
            max_map_len=MAX_CONTAINER_LEN,
        )
    except MalformedMessage:
        raise
    except Exception as exc:  # msgpack raises many types (ExtraData, StackError, ValueError...)
        raise MalformedMessage(f"undecodable msgpack body: {type(exc).__name__}: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("message body must be a map")
    if any(not isinstance(k, str) for k in body):
        raise MalformedMessage("message keys must be strings")
    _check_depth(body)
    return body


def array_meta(arr: np.ndarray) -> dict[str, Any]:
    dtype = arr.dtype.newbyteorder("<").str if arr.dtype.byteorder == ">" else arr.dtype.str
    if dtype not in ARRAY_DTYPES:
        raise InvalidRequest(f"array dtype {arr.dtype} is not allowed on the wire")
    return {"dtype": dtype, "shape": list(arr.shape)}


def encode(
    body: dict[str, Any], arrays: tuple[np.ndarray, ...] | list[np.ndarray] = ()
) -> list[bytes]:
    """Frames for one message. Arrays are copied into fresh buffers (never reused after send)."""
    if len(arrays) + 2 > MAX_FRAMES:
        raise MessageTooLarge(f"at most {MAX_FRAMES - 2} arrays per message")
    if arrays:
        body = {**body, "arrays": [array_meta(a) for a in arrays]}
    frames = [TAG, pack(body)]
    for arr in arrays:
        buf = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        if len(buf) > MAX_FRAME_BYTES:
            raise MessageTooLarge(f"array of {len(buf)} bytes exceeds {MAX_FRAME_BYTES}")
        frames.append(buf)
    return frames


def _decode_array(meta: Any, buf: bytes) -> np.ndarray:
    if not isinstance(meta, dict) or set(meta) != {"dtype", "shape"}:
        raise MalformedMessage("array header must be {dtype, shape}")
    dtype, shape = meta["dtype"], meta["shape"]
    if dtype not in ARRAY_DTYPES:
        raise MalformedMessage(f"array dtype {quote(dtype)} is not allowed")
    if (
        not isinstance(shape, list)
        or len(shape) > 8
        or any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in shape)
    ):
        raise MalformedMessage("array shape must be a list of at most 8 non-negative ints")
    itemsize = np.dtype(dtype).itemsize
    expected = math.prod(shape) * itemsize
    if expected != len(buf):
        raise MalformedMessage(f"array frame has {len(buf)} bytes; shape {shape} needs {expected}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def decode(frames: list[bytes]) -> Message:
    """Decode and bound-check one message (without the ROUTER identity frame)."""
    if len(frames) < 2:
        raise MalformedMessage("a message needs a protocol tag frame and a body frame")
    if len(frames) > MAX_FRAMES:
        raise MessageTooLarge(f"{len(frames)} frames; the limit is {MAX_FRAMES}")
    tag = bytes(frames[0])
    if tag != TAG:
        if tag.startswith(TAG_PREFIX):
            raise VersionMismatch(f"peer speaks {quote(tag)}; this engine speaks {TAG.decode()}")
        raise MalformedMessage("missing protocol tag (not a VMB peer)")
    body = unpack(bytes(frames[1]))
    raw = [bytes(f) for f in frames[2:]]
    metas = body.get("arrays", [])
    if not isinstance(metas, list) or len(metas) != len(raw):
        raise MalformedMessage("array headers do not match the array frames")
    for buf in raw:
        if len(buf) > MAX_FRAME_BYTES:
            raise MessageTooLarge(f"frame of {len(buf)} bytes exceeds {MAX_FRAME_BYTES}")
    arrays = tuple(_decode_array(m, b) for m, b in zip(metas, raw, strict=True))
    return Message(body=body, arrays=arrays)


def is_unicode(text: str) -> bool:
    """Whether `text` can be encoded at all: JSON's \\ud800 escapes give lone surrogates,
    which no peer (msgpack, SQLite, a file name) can take."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def packed_size(value: Any) -> int:
    """Bytes of `value` as msgpack (what it costs inside a message)."""
    return len(msgpack.packb(value, use_bin_type=True))


def _check_params(value: Any, where: str) -> str | None:
    """Only JSON values in params: maps with short string keys, lists, strings, finite
    numbers, 64-bit integers, booleans and null -- never binary, extension or huge values."""
    if not isinstance(value, dict):
        return f"'{where}' has the wrong type: a map is needed"
    stack: list[tuple[Any, str, int]] = [(value, where, 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"'{path}' nests deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            if len(item) > MAX_CONTAINER_LEN:
                return f"'{path}' has more than {MAX_CONTAINER_LEN} entries"
            for key, sub in item.items():
                if not isinstance(key, str) or len(key) > PARAM_KEY_MAX_CHARS:
                    return f"'{path}' keys must be strings of at most {PARAM_KEY_MAX_CHARS} chars"
                if not is_unicode(key):
                    return f"'{path}' has a key that is not valid Unicode: {quote(key)}"
                stack.append((sub, f"{path}.{key[:QUOTE_CHARS]}", depth + 1))
        elif isinstance(item, list):
            if len(item) > MAX_CONTAINER_LEN:
                return f"'{path}' has more than {MAX_CONTAINER_LEN} entries"
            stack.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
        elif isinstance(item, bytes | bytearray | memoryview):
            return f"'{path}' is binary; params hold only JSON values (send text or numbers)"
        elif isinstance(item, str):
            if not is_unicode(item):
                return f"'{path}' is not valid Unicode (a lone surrogate)"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                return f"'{path}' is an integer outside the signed 64-bit range"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"'{path}' is not a finite number"
        else:
            return f"'{path}' is a {type(item).__name__}; params hold only JSON values"
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check(spec: Field, value: Any, where: str) -> str | None:
    """What is wrong with one field's value, or None."""
    if spec.kind == "params":
        return _check_params(value, where)
    if spec.kind == "rid":
        if isinstance(value, str):
            ok = len(value) <= KEY_MAX_CHARS and is_unicode(value)
            return None if ok else f"'{where}' is too long or not valid Unicode"
        spec = Field("int", lo=INT_MIN, hi=INT_MAX)
    if spec.kind == "str":
        if not isinstance(value, str):
            return f"'{where}' has the wrong type: a string is needed"
        if not spec.lo <= len(value) <= spec.hi:
            return f"'{where}' must have {_num(spec.lo)}-{_num(spec.hi)} chars, not {len(value)}"
        if not is_unicode(value):
            return f"'{where}' is not valid Unicode (a lone surrogate)"
        if spec.choices and value not in spec.choices:
            return f"'{where}' is {quote(value)}; one of {', '.join(spec.choices)} is needed"
        return None
    if spec.kind == "ints":
        if not isinstance(value, list) or not spec.lo <= len(value) <= spec.hi:
            return f"'{where}' has the wrong type: a list of {_num(spec.lo)}-{_num(spec.hi)} ints"
        bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int)]
        if bad or any(not 0 <= v <= 0xFFFF for v in value):
            return f"'{where}' must hold integers 0-65535"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"'{where}' has the wrong type: a number is needed"
    if spec.kind == "int" and not isinstance(value, int):
        return f"'{where}' has the wrong type: an integer is needed"
    if not (math.isfinite(value) and spec.lo <= value <= spec.hi):
        return f"'{where}' is out of range: {_num(spec.lo)} to {_num(spec.hi)}"
    return None


def valid_rid(value: Any) -> bool:
    """Whether a request id may be echoed back in a reply."""
    return value is not None and _check(COMMON["rid"], value, "rid") is None


def validate_fields(command: str, body: Mapping[str, Any]) -> None:
    """Check `body` against the schema of `command` (and the common fields): the one
    validator of the daemon and the gateway. Raises InvalidRequest naming the field.
    An optional field sent as null counts as absent (JSON clients write null for "unset")."""
    for name, spec in (*COMMON.items(), *COMMANDS[command].items()):
        if name not in body or (body[name] is None and not spec.required):
            if spec.required:
                raise InvalidRequest(f"'{command}' needs the field '{name}'")
            continue
        problem = _check(spec, body[name], f"{command}.{name}")
        if problem:
            raise InvalidRequest(problem)


def validate_command(body: dict[str, Any]) -> str:
    """Check a client command against its schema; return its type."""
    kind = body.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage("message has no 'type'")
    if kind not in COMMANDS:
        raise UnknownCommand(f"unknown command {quote(kind)}; known: {', '.join(sorted(COMMANDS))}")
    validate_fields(kind, body)
    return kind
