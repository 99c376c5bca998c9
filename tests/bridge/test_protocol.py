"""Wire protocol: framing, limits, schemas, arrays; fuzzed with hypothesis."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import protocol
from bridge.errors import (
    InvalidRequest,
    MalformedMessage,
    MessageTooLarge,
    UnknownCommand,
    VersionMismatch,
    VMBError,
    error_from_wire,
)


def test_round_trip_with_arrays() -> None:
    frames_ = np.arange(2 * 4 * 3 * 3, dtype=np.uint8).reshape(2, 4, 3, 3)
    audio = np.linspace(-1, 1, 10, dtype=np.float32)
    frames = protocol.encode({"type": "submit", "x": [1, "a", {"b": 2.5}]}, [frames_, audio])
    msg = protocol.decode(frames)
    assert msg.body["x"] == [1, "a", {"b": 2.5}]
    np.testing.assert_array_equal(msg.arrays[0], frames_)
    np.testing.assert_array_equal(msg.arrays[1], audio)


def test_tag_and_version() -> None:
    body = protocol.pack({"type": "ping"})
    with pytest.raises(VersionMismatch):
        protocol.decode([b"VMB/2", body])
    with pytest.raises(MalformedMessage):
        protocol.decode([b"HTTP/1.1", body])
    with pytest.raises(MalformedMessage):
        protocol.decode([protocol.TAG])


def test_limits() -> None:
    body = protocol.pack({"type": "ping"})
    with pytest.raises(MessageTooLarge):
        protocol.decode([protocol.TAG, body] + [b""] * 10)
    with pytest.raises(MessageTooLarge):
        protocol.unpack(b"\x00" * (protocol.MAX_BODY_BYTES + 1))
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(MalformedMessage, match="deeper"):
        protocol.unpack(msgpack.packb({"a": deep}))
    # an array header claiming 2^32-1 elements is refused without allocating
    with pytest.raises(MalformedMessage):
        protocol.unpack(b"\xdd\xff\xff\xff\xff")


def test_strict_keys_ext_and_nan() -> None:
    with pytest.raises(MalformedMessage):
        protocol.unpack(msgpack.packb({1: 2}))
    with pytest.raises(MalformedMessage, match="extension"):
        protocol.unpack(msgpack.packb({"a": msgpack.ExtType(5, b"xx")}))
    with pytest.raises(MalformedMessage):
        protocol.unpack(msgpack.packb({"a": float("nan")}))
    with pytest.raises(MalformedMessage):
        protocol.unpack(msgpack.packb([1, 2]))


def test_array_checks() -> None:
    body = {"type": "x", "arrays": [{"dtype": "|O", "shape": [1]}]}
    with pytest.raises(MalformedMessage, match="dtype"):
        protocol.decode([protocol.TAG, protocol.pack(body), b"12345678"])
    body = {"type": "x", "arrays": [{"dtype": "<f4", "shape": [3]}]}
    with pytest.raises(MalformedMessage, match="needs"):
        protocol.decode([protocol.TAG, protocol.pack(body), b"1234"])
    with pytest.raises(InvalidRequest):
        protocol.encode({"type": "x"}, [np.array(["a"], dtype=object)])


def test_command_schemas() -> None:
    assert protocol.validate_command({"type": "ping"}) == "ping"
    with pytest.raises(UnknownCommand):
        protocol.validate_command({"type": "format_disk"})
    with pytest.raises(InvalidRequest, match="needs the field 'kind'"):
        protocol.validate_command({"type": "submit", "params": {}})
    with pytest.raises(InvalidRequest, match="wrong type"):
        protocol.validate_command({"type": "submit", "kind": "x", "params": []})
    with pytest.raises(InvalidRequest):
        protocol.validate_command({"type": "attach", "job_id": "j", "last_seq": True})


def test_errors_round_trip_by_code() -> None:
    err = error_from_wire("unknown_job", "no job")
    assert type(err).__name__ == "UnknownJob" and err.message == "no job"
    assert error_from_wire("brand_new_code", "x").code == "brand_new_code"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=10))
def test_fuzz_decode_raises_only_typed_errors(frames: list[bytes]) -> None:
    for candidate in (frames, [protocol.TAG, *frames]):
        try:
            msg = protocol.decode(candidate)
            protocol.validate_command(msg.body)
        except VMBError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.text(max_size=8)
        | st.binary(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=4), children, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_fuzz_structured_bodies(value: object) -> None:
    try:
        msg = protocol.decode([protocol.TAG, msgpack.packb({"type": "submit", "params": value})])
        protocol.validate_command(msg.body)
    except VMBError:
        pass
