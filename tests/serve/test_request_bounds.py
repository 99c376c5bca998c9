"""Requests are checked against their schema at the edge (issue 20's outside fuzz): binary
params, integers beyond their range and unbounded strings get a typed `invalid_request`
naming the field, never `internal`; error messages quote only a short prefix of the input."""

from __future__ import annotations

import json
import sqlite3
import uuid
import zipfile
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
    for seed in (2**64 - 1, 2**32, protocol.SEED_MAX + 1, -1):
        _refused(raw.ask("submit", kind="noop", params={}, seed=seed), "submit.seed")
    for big in (2**64 - 1, 2**63):
        _refused(raw.ask("submit", kind="noop", params={"n": [big]}), "submit.params.n[0]")
    _refused(raw.ask("attach", job_id="j", last_seq=2**64 - 1), "attach.last_seq")
    _refused(raw.ask("list", finished_before=2**64 - 1), "list.finished_before")
    # the edges of the documented ranges are accepted
    edges = {"n": -(2**63), "m": 2**63 - 1}
    ok = raw.ask("submit", kind="noop", params=edges, seed=protocol.SEED_MAX)
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
        ("conform", {"old_otio": 5}),
        ("conform", {"old_otio": "t" * 5000}),
        ("conform", {"old_otio": "a\x00b.otio"}),
        ("conform", {"timeline": "new.otio"}),
        ("conform", {"old_otio": "old.otio", "per": "scene"}),
    ]
    for kind, params in cases:
        reply = raw.ask("submit", kind=kind, params=params)
        assert reply["type"] == "error", (kind, params, reply)
        assert reply["code"] in ("invalid_request", "timeline"), (kind, params, reply)
        assert len(reply["message"]) < 400


# -- the sceptical review of issue 20 -----------------------------------------------------------
def test_params_are_bounded_per_job_and_list_always_fits_one_reply(raw: Raw, engine) -> None:
    """Two 600 KB jobs then `list` used to kill the daemon (the reply was over 1 MiB), and
    again after every restart. Params are bounded per job; replies too big are typed."""
    big = raw.ask("submit", kind="noop", params={"blob": "p" * 600_000})
    assert big["type"] == "error" and big["code"] == "too_large", big
    assert str(protocol.PARAMS_MAX_BYTES) in big["message"]
    boot = big["boot_id"]
    near = "p" * (protocol.PARAMS_MAX_BYTES - 100)
    ids = []
    for i in range(2):
        acc = raw.ask("submit", kind="noop", params={"blob": near, "i": i})
        assert acc["type"] == "reply", acc
        ids.append(acc["job_id"])
    listing = raw.ask("list", limit=1000)
    assert listing["type"] == "reply" and listing["truncated"] is False, listing.get("message")
    assert {j["job_id"] for j in listing["jobs"]} >= set(ids)
    assert all("params" not in j for j in listing["jobs"])
    assert raw.ask("result", job_id=ids[0])["job"]["params"]["blob"] == near
    # a job stored before the bound (an older engine) whose reply cannot fit: typed, served
    old_id = "f" * 32
    db = sqlite3.connect(engine.settings.jobs_db, timeout=10)
    with db:
        db.execute(
            "INSERT INTO jobs(job_id, kind, params, seed, state, created_at, seq)"
            " VALUES (?, 'noop', ?, 1, 'done', 1.0, 1)",
            (old_id, json.dumps({"blob": "q" * 1_100_000})),
        )
    db.close()
    reply = raw.ask("result", job_id=old_id)
    assert reply["type"] == "error" and reply["code"] == "too_large", reply
    assert raw.ask("list", limit=1000)["type"] == "reply"
    assert raw.ask("ping")["boot_id"] == boot  # the same daemon all along


def test_deeply_nested_otio_is_refused_before_otio_reads_it(raw: Raw, engine, tmp_path) -> None:
    """`[` * 100000 overflowed OTIO's C++ reader's stack: a segfault of the daemon."""
    boot = raw.ask("ping")["boot_id"]
    deep = "[" * 100_000
    for text in (deep, '{"a":' * 100_000):
        reply = raw.ask("submit", kind="soundtrack", params={"otio_json": text})
        assert reply["code"] == "timeline" and "nests deeper" in reply["message"], reply
    (tmp_path / "deep.otio").write_text(deep)
    with zipfile.ZipFile(tmp_path / "deep.otioz", "w") as zf:
        zf.writestr("content.otio", deep)
    (tmp_path / "deep.otiod").mkdir()
    (tmp_path / "deep.otiod" / "content.otio").write_text(deep)
    for name in ("deep.otio", "deep.otioz", "deep.otiod"):
        reply = raw.ask("submit", kind="soundtrack", params={"timeline": str(tmp_path / name)})
        assert reply["code"] == "timeline" and "nests deeper" in reply["message"], reply
    gw = GatewayHTTP.from_discovery(read_discovery(engine.settings.home))
    for text in (deep, deep + " " * (300 << 10)):  # relayed inline, and spooled to a file
        reply = gw.post("/v1/soundtrack", {"otio_json": text})
        assert reply.status == 422 and "nests deeper" in reply.json["error"]["message"]
    assert raw.ask("ping")["boot_id"] == boot


SURROGATE_BODIES = [
    ("/v1/jobs", b'{"kind":"noop","params":{"x":"\\ud800"}}', "submit.params.x"),
    ("/v1/jobs", b'{"kind":"noop","params":{},"idempotency_key":"\\udfff"}', "idempotency_key"),
    ("/v1/jobs", b'{"kind":"\\ud800","params":{}}', "submit.kind"),
    ("/v1/jobs", b'{"kind":"noop","params":{"\\ud800":1}}', "submit.params"),
    ("/v1/jobs", b'{"kind":"noop","params":{"a":["\\ud83c\\udfb5","\\udc00"]}}', "params.a[1]"),
    ("/v1/cue", b'{"text":"calm \\ud800","duration_s":5}', "submit.params.text"),
    ("/v1/soundtrack", b'{"otio_json":"\\ud800"}', "submit.params.otio_json"),
]


@pytest.mark.parametrize(("route", "body", "field"), SURROGATE_BODIES)
def test_lone_surrogates_are_invalid_requests_not_internal(engine, route, body, field) -> None:
    gw = GatewayHTTP.from_discovery(read_discovery(engine.settings.home))
    reply = gw.raw("POST", route, body, {"Content-Type": "application/json"})
    assert reply.status == 400 and reply.error_code == "invalid_request", reply.body[:300]
    assert field in reply.json["error"]["message"]
    ok = gw.raw("POST", "/v1/jobs", b'{"kind":"noop","params":{"x":"\\ud83c\\udfb5"}}')
    assert ok.status == 202  # a surrogate pair is one real character


def test_cue_params_are_bounded_at_the_edge(raw: Raw) -> None:
    """Left to the worker before: continue_from "x" failed the job with AttributeError."""
    base = {"text": "calm", "duration_s": 5}
    cases = [
        ({"continue_from": "x"}, "continue_from"),
        ({"continue_from": {"bpm": "fast"}}, "continue_from.bpm"),
        ({"continue_from": {"tonic": "C"}}, "continue_from"),
        ({"name": "a" * 100_000}, "'name'"),
        ({"variations": True}, "'variations'"),
        ({"knobs": {"text": "x" * 500_000}}, "knob 'text'"),
        ({"knobs": {"mood": "m" * 5000}}, "knob value"),
        ({"knobs": {"instruments": ["i" * 3000]}}, "knob value"),
        ({"knobs": {"instruments": ["piano"] * 100}}, "'instruments'"),
        ({"cut_times_s": [True]}, "cut_times_s"),
    ]
    for extra, what in cases:
        msg = _refused(raw.ask("submit", kind="cue", params={**base, **extra}), "")
        assert what in msg and len(msg) < 200, (extra, msg)
    prev = {"bpm": 96.0, "key": "D", "mode": "minor"}
    ok = raw.ask("submit", kind="cue", params={**base, "continue_from": prev, "name": "n" * 128})
    assert ok["type"] == "reply", ok


def test_soundtrack_lengths_and_strings_are_bounded(raw: Raw) -> None:
    """A negative min_length_s made the planner loop forever; these are refused first."""
    cases = [
        ({"min_length_s": -5}, "min_length_s"),
        ({"min_length_s": 0}, "min_length_s"),
        ({"min_length_s": 10, "max_length_s": 5}, "max_length_s"),
        ({"max_length_s": 1e9}, "max_length_s"),
        ({"selection": {"clip": "c" * 5000}}, "selection.clip"),
        ({"title": "t" * 5000}, "title"),
        ({"continuous": "yes"}, "continuous"),
    ]
    for extra, what in cases:
        msg = _refused(
            raw.ask("submit", kind="soundtrack", params={"otio_json": "{}", **extra}), ""
        )
        assert what in msg and len(msg) < 200, (extra, msg)


def test_errors_quote_client_input_briefly(raw: Raw, engine) -> None:
    """Every echo of client input goes through bridge.errors.quote (40 chars; paths 200)."""
    asks = [
        ("cue", {"text": "calm", "duration_s": 5, "backend": "b" * 5000}),
        ("cue", {"text": "calm", "duration_s": 5, "knobs": {"genre": "g" * 60}}),
        ("cue", {"text": "calm", "duration_s": 5, "knobs": {"tempo": "t" * 60}}),
        ("cue", {"text": "calm", "duration_s": 5, **{f"k{i:03d}" * 10: 1 for i in range(100)}}),
        ("soundtrack", {("q" * 128) + str(i): 1 for i in range(30)}),
        ("soundtrack", {"otio_json": "{}", "backend": "z" * 3000}),
    ]
    for kind, params in asks:
        reply = raw.ask("submit", kind=kind, params=params)
        assert reply["type"] == "error", reply
        assert len(reply["message"]) < 300 and "k001" * 20 not in reply["message"], reply
        assert not any(c * 41 in reply["message"] for c in "bgtkqz"), reply["message"]
    path = raw.ask("submit", kind="cue", params={"media": "/no/" + "m" * 5000})
    assert path["code"] == "invalid_request" and len(path["message"]) < 300
    raw.sock.send_multipart([b"VMB/" + b"9" * 50_000, msgpack.packb({"type": "ping"})])
    assert raw.sock.poll(10_000)
    tag = protocol.decode(raw.sock.recv_multipart()).body
    assert tag["code"] == "version" and len(tag["message"]) < 200, tag


def test_gateway_and_zeromq_agree_on_knobs_and_required_params(raw: Raw, engine) -> None:
    """ "auto" and empty instrument slots mean unset on both paths; params are required."""
    gw = GatewayHTTP.from_discovery(read_discovery(engine.settings.home))
    knobs = {"mood": "auto", "genre": "", "instruments": [None, "piano", "none"]}
    params = {"text": "calm", "duration_s": 5, "knobs": knobs}
    assert gw.post("/v1/cue", params).status == 202
    acc = raw.ask("submit", kind="cue", params=params)
    assert acc["type"] == "reply", acc
    stored = raw.ask("result", job_id=acc["job_id"])["job"]["params"]["knobs"]
    assert stored["mood"] is None and stored["instruments"] == ["piano"]
    reply = gw.post("/v1/jobs", {"kind": "noop"})
    assert reply.status == 400 and "'params'" in reply.json["error"]["message"]
    _refused(raw.ask("submit", kind="noop"), "'params'")
    # an optional field sent as null is absent on both paths
    assert gw.post("/v1/jobs", {"kind": "noop", "params": {}, "seed": None}).status == 202
    assert raw.ask("submit", kind="noop", params={}, seed=None)["type"] == "reply"


def test_the_token_is_checked_before_the_schema(raw: Raw) -> None:
    raw.token = "wrong"
    for command, fields in (("submit", {"kind": "noop", "params": {}, "seed": 2**64 - 1}),
                            ("list", {"limit": 0}), ("nosuch", {})):  # fmt: skip
        reply = raw.ask(command, **fields)
        assert reply["code"] == "unauthorized", reply
        assert "seed" not in reply["message"] and "list" not in reply["message"]


def test_job_error_messages_are_clipped() -> None:
    from bridge.errors import MAX_MESSAGE_CHARS, InvalidRequest
    from engine.serve.worker import _error_payload

    for exc in (ValueError("v" * 100_000), InvalidRequest("i" * 100_000), MemoryError("m" * 5000)):
        payload = _error_payload(exc)
        assert len(payload["message"]) < MAX_MESSAGE_CHARS + 40, payload["code"]
