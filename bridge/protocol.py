"""The VMB wire protocol: framing, msgpack limits, command schemas, raw array frames.

A message is a list of ZeroMQ frames: ``[TAG, body, *arrays]``. ``TAG`` names the protocol
and its major version; ``body`` is a msgpack map; each extra frame is the raw bytes of one
array whose dtype and shape the body lists under ``"arrays"``. No pickle anywhere.
Minor versions only add optional fields; a breaking change bumps the major and the tag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from bridge.errors import (
    InvalidRequest,
    MalformedMessage,
    MessageTooLarge,
    UnknownCommand,
    VersionMismatch,
)

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

# Client -> daemon commands and their fields: name -> (type, required).
# Unknown extra fields are ignored (newer clients may add optional ones).
_STR, _INT, _DICT, _BOOL, _NUM, _LIST = str, int, dict, bool, (int, float), list
COMMANDS: dict[str, dict[str, tuple[Any, bool]]] = {
    "hello": {"proto": (_LIST, True), "client": (_STR, False)},
    "ping": {},
    "submit": {
        "kind": (_STR, True),
        "params": (_DICT, True),
        "idempotency_key": (_STR, False),
        "seed": (_INT, False),
    },
    "attach": {"job_id": (_STR, True), "last_seq": (_INT, False)},
    "cancel": {"job_id": (_STR, True)},
    "result": {"job_id": (_STR, True)},
    "close": {"job_id": (_STR, True)},
    "list": {"state": (_STR, False), "limit": (_INT, False), "finished_before": (_NUM, False)},
}
EVENTS = ("accepted", "progress", "done", "failed", "cancelled")
TERMINAL_EVENTS = frozenset({"done", "failed", "cancelled"})
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
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
        raise MalformedMessage(f"array dtype {dtype!r} is not allowed")
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
            raise VersionMismatch(
                f"peer speaks {tag.decode(errors='replace')}; this engine speaks {TAG.decode()}"
            )
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


def validate_command(body: dict[str, Any]) -> str:
    """Check a client command against its schema; return its type."""
    kind = body.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage("message has no 'type'")
    schema = COMMANDS.get(kind)
    if schema is None:
        raise UnknownCommand(f"unknown command {kind!r}; known: {', '.join(sorted(COMMANDS))}")
    for name, (typ, required) in schema.items():
        if name not in body:
            if required:
                raise InvalidRequest(f"'{kind}' needs the field '{name}'")
            continue
        value = body[name]
        if isinstance(value, bool) and typ is not bool:
            raise InvalidRequest(f"'{kind}.{name}' has the wrong type")
        if not isinstance(value, typ):
            raise InvalidRequest(f"'{kind}.{name}' has the wrong type")
    return kind
