"""Requests are checked against their schema at the edge (issue 20's outside fuzz): binary
params, integers beyond their range and unbounded strings get a typed `invalid_request`
naming the field, never `internal`; error messages quote only a short prefix of the input."""

from __future__ import annotations

import uuid
from typing import Any

import msgpack
import pytest
import zmq

from bridge import protocol
from bridge.discovery import read_discovery
from support.gateway_http import GatewayHTTP


class Raw:
    """A bare DEALER that sends any msgpack body (the client library would refuse some)."""

    def __init__(self, home: Any) -> None:
        disc = read_discovery(home)
        self.token = disc.token
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IDENTITY, uuid.uuid4().bytes)
        self.sock.connect(disc.endpoint)

    def ask(self, command: str, **fields: Any) -> dict[str, Any]:
        body = {"type": command, "token": self.token, "rid": 7, **fields}
        self.sock.send_multipart([protocol.TAG, msgpack.packb(body, use_bin_type=True)])
        while True:
            assert self.sock.poll(10_000), "the daemon did not answer"
            reply = protocol.decode(self.sock.recv_multipart()).body
            if reply.get("type") != "event":
                return reply


@pytest.fixture
def raw(engine) -> Raw:
    r = Raw(engine.settings.home)
    yield r
    r.sock.close(0)


def _refused(reply: dict[str, Any], field: str) -> str:
    assert reply["type"] == "error", reply
    assert reply["code"] == "invalid_request", reply
    assert field in reply["message"], reply["message"]
    return reply["message"]


def test_binary_params_anywhere_are_refused_naming_the_field(raw: Raw) -> None:
    cases = [
        ({"x": b"abc"}, "submit.params.x"),
        ({"media": b"/etc/passwd"}, "submit.params.media"),
        ({"knobs": {"mood": b"x"}}, "submit.params.knobs.mood"),
        ({"cuts": [1.0, {"deep": [b""]}]}, "submit.params.cuts[1].deep[0]"),
    ]
    for params, field in cases:
        for kind in ("noop", "cue"):
            _refused(raw.ask("submit", kind=kind, params=params), field)
    assert raw.ask("result", job_id="0" * 32)["code"] == "unknown_job"  # still serving


def test_integers_out_of_range_are_refused(raw: Raw) -> None:
    for seed in (2**64 - 1, 2**32, -1):
        _refused(raw.ask("submit", kind="noop", params={}, seed=seed), "submit.seed")
    for big in (2**64 - 1, 2**63):
        _refused(raw.ask("submit", kind="noop", params={"n": [big]}), "submit.params.n[0]")
    _refused(raw.ask("attach", job_id="j", last_seq=2**64 - 1), "attach.last_seq")
    _refused(raw.ask("list", finished_before=2**64 - 1), "list.finished_before")
    # the edges of the documented ranges are accepted
    ok = raw.ask("submit", kind="noop", params={"n": -(2**63), "m": 2**63 - 1}, seed=2**32 - 1)
    assert ok["type"] == "reply" and ok["seed"] == protocol.SEED_MAX, ok


def test_strings_are_bounded_and_errors_quote_a_short_prefix(raw: Raw) -> None:
    msg = _refused(
        raw.ask("submit", kind="noop", params={}, idempotency_key="k" * 100_000),
        "submit.idempotency_key",
    )
    assert len(msg) < 200
    key = "k" * protocol.KEY_MAX_CHARS
    assert raw.ask("submit", kind="noop", params={}, idempotency_key=key)["type"] == "reply"
    for command in ("attach", "cancel", "result", "close"):
        msg = _refused(raw.ask(command, job_id="j" * 10_000), f"{command}.job_id")
        assert len(msg) < 200 and "j" * 50 not in msg
    unknown = raw.ask("result", job_id="u" * protocol.ID_MAX_CHARS)
    assert unknown["code"] == "unknown_job" and "u" * 50 not in unknown["message"]
    kind = raw.ask("submit", kind="z" * protocol.ID_MAX_CHARS, params={})
    assert kind["code"] == "unknown_kind" and "z" * 50 not in kind["message"]
    cmd = raw.ask("q" * 10_000)
    assert cmd["code"] == "unknown_command" and len(cmd["message"]) < 300
    reply = raw.ask("ping", rid="r" * 10_000)  # an oversized request id is not echoed
    assert reply["rid"] is None
    _refused(reply, "ping.rid")


def test_gateway_bodies_go_through_the_same_validator(engine) -> None:
    gw = GatewayHTTP.from_discovery(read_discovery(engine.settings.home))
    cases = [
        ({"kind": "noop", "params": {}, "seed": 2**64 - 1}, "submit.seed"),
        ({"kind": "noop", "params": {"x": {"y": 2**64}}}, "submit.params.x.y"),
        ({"kind": "noop", "params": {}, "idempotency_key": "k" * 100_000}, "idempotency_key"),
        ({"kind": "n" * 10_000, "params": {}}, "submit.kind"),
    ]
    for body, field in cases:
        reply = gw.post("/v1/jobs", body)
        assert reply.status == 400 and reply.error_code == "invalid_request", reply.body[:300]
        assert field in reply.json["error"]["message"]
    raw_body = b'{"kind": "noop", "params": {"x": 1e400}}'  # json reads this as infinity
    reply = gw.raw("POST", "/v1/jobs", raw_body, {"Content-Type": "application/json"})
    assert reply.status == 400 and reply.error_code == "invalid_request"
    reply = gw.post("/v1/cue", {"text": "calm", "duration_s": 4, "knobs": {"x": 2**70}})
    assert reply.status == 400 and "submit.params.knobs.x" in reply.json["error"]["message"]
    long_path = gw.get("/v1/jobs/" + "j" * 10_000)
    assert long_path.status == 404 and len(long_path.json["error"]["message"]) < 200


def test_kind_validators_refuse_odd_params_typed(raw: Raw) -> None:
    """Params the schema lets through but a kind did not foresee (found by the fuzz)."""
    cases = [
        ("cue", {"media": "m" * 5000}),  # a file name too long for the OS
        ("cue", {"text": "calm", "duration_s": 4, "knobs": {"mood": 5}}),
        ("cue", {"text": "calm", "duration_s": 4, "knobs": {"instruments": 3}}),
        ("soundtrack", {"timeline": 5}),
        ("soundtrack", {"otio_json": 5}),
        ("soundtrack", {"timeline": "t" * 5000}),
    ]
    for kind, params in cases:
        reply = raw.ask("submit", kind=kind, params=params)
        assert reply["type"] == "error", (kind, params, reply)
        assert reply["code"] in ("invalid_request", "timeline"), (kind, params, reply)
        assert len(reply["message"]) < 400
