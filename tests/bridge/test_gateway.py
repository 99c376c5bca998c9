"""The host gateway over real HTTP on loopback, relaying to a real daemon (`engine`)."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest
import soundfile as sf

from bridge.discovery import read_discovery
from bridge.errors import InvalidRequest, http_status
from bridge.gateway import Gateway
from bridge.knobs import clean_knobs, knob_definitions
from support.gateway_http import GatewayHTTP

TAGS = {
    "mood": ("calm", "tense"),
    "genre": ("ambient", "rock"),
    "instrument": ("piano", "drums"),
    "tempo": ("slow", "medium", "fast"),
    "energy": ("low", "medium", "high"),
}


def _wait_state(gw: GatewayHTTP, job_id: str, states: set[str], timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = gw.get(f"/v1/jobs/{job_id}").json["job"]
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}")


# -- without an engine -------------------------------------------------------------------
def test_knob_definitions_are_json_and_complete() -> None:
    defs = knob_definitions(TAGS, (40.0, 220.0), backends=("auto", "draft"))
    assert json.loads(json.dumps(defs)) == defs
    by_name = {k["name"]: k for k in defs["knobs"]}
    assert set(by_name) == {"mood", "genre", "tempo", "energy", "instruments"}
    assert by_name["mood"]["values"] == ["auto", "calm", "tense"]
    assert by_name["tempo"]["bpm"] == {"min": 40.0, "max": 220.0}
    assert by_name["instruments"]["type"] == "multi"
    assert by_name["instruments"]["values"] == ["piano", "drums"]
    options = {o["name"]: o for o in defs["options"]}
    assert list(options) == ["backend", "seed", "text", "stems", "ending", "loop"]
    assert options["backend"]["values"] == ["auto", "draft"]  # the registry's, passed in
    assert options["ending"]["values"][0] == options["ending"]["empty"] == "auto"
    assert options["loop"] == {**options["loop"], "type": "boolean", "default": False}


def test_clean_knobs_drops_auto_and_empty_slots() -> None:
    raw = {
        "mood": "auto",
        "genre": "rock",
        "tempo": "",
        "energy": None,
        "instruments": ["none", "piano", "", "auto"],
    }
    assert clean_knobs(raw) == {"genre": "rock", "instruments": ["piano"]}
    assert clean_knobs({"instruments": ["none"]}) == {}
    assert clean_knobs(None) == {}


def test_status_mapping() -> None:
    assert http_status("unauthorized") == 401
    assert http_status("unknown_job") == 404
    assert http_status("invalid_request") == 400
    assert http_status("idempotency_conflict") == 409
    assert http_status("too_large") == 413
    assert http_status("engine_unavailable") == 503
    assert http_status("something_new") == 500


def test_gateway_refuses_non_loopback_host(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="loopback"):
        Gateway(tmp_path, {}, host="0.0.0.0")


def test_gateway_without_engine_says_unavailable(tmp_path: Path, vmb_home: Path) -> None:
    """A standalone gateway whose daemon is gone: 503 engine_unavailable, JSON."""
    from bridge.discovery import Discovery, write_discovery

    write_discovery(vmb_home, Discovery("tcp://127.0.0.1:9", "tok", "b", 1, "0"))
    gw = Gateway(vmb_home, {}, engine_timeout_s=0.2)
    url = gw.start()
    try:
        reply = GatewayHTTP(url, "tok").get("/v1/health")
        assert reply.status == 503 and reply.error_code == "engine_unavailable"
        assert GatewayHTTP(url, "bad").get("/v1/health").status == 401
    finally:
        gw.stop()


# -- with a real daemon --------------------------------------------------------------------
def test_discovery_publishes_a_loopback_gateway(engine) -> None:
    disc = read_discovery()
    assert disc.gateway and disc.gateway.startswith("http://127.0.0.1:")
    health = GatewayHTTP.from_discovery(disc).get("/v1/health")
    assert health.status == 200
    assert health.json["ok"] is True and health.json["engine"]["boot_id"] == disc.boot_id


def test_token_refused(engine) -> None:
    gw = GatewayHTTP.from_discovery()
    for token in (None, "wrong", ""):
        reply = gw.get("/v1/capabilities", token=token)
        assert reply.status == 401, token
        assert reply.headers["content-type"].startswith("application/json")
        assert reply.error_code == "unauthorized"
    basic = gw.get("/v1/health", token=None, headers={"Authorization": f"Basic {gw.token}"})
    assert basic.status == 401
    # unknown routes are not revealed without the token either
    assert gw.get("/v1/nope", token="wrong").status == 401


def test_capabilities_has_kinds_and_taxonomy_knobs(engine) -> None:
    from engine import taxonomy

    caps = GatewayHTTP.from_discovery().get("/v1/capabilities").json
    assert "selfcheck" in caps["kinds"]
    assert caps["limits"]["max_request_bytes"] > 0
    knobs = {k["name"]: k for k in caps["knobs"]["knobs"]}
    assert knobs["mood"]["values"][1:] == list(taxonomy.MOODS)
    assert knobs["genre"]["values"][1:] == list(taxonomy.GENRES)
    assert knobs["instruments"]["values"] == list(taxonomy.INSTRUMENTS)
    assert knobs["tempo"]["bpm"] == {"min": taxonomy.MIN_BPM, "max": taxonomy.MAX_BPM}
    from bridge.client import EngineClient

    with EngineClient(home=engine.settings.home) as client:  # the daemon's hello: the same table
        assert client.hello()["capabilities"]["knobs"] == caps["knobs"]


def test_submit_progress_result_and_file_bytes(engine) -> None:
    gw = GatewayHTTP.from_discovery()
    acc = gw.post(
        "/v1/jobs", {"kind": "selfcheck", "params": {"steps": 6, "step_s": 0.05}, "seed": 5}
    )
    assert acc.status == 202, acc.body
    job_id = acc.json["job_id"]
    assert acc.json["seed"] == 5 and acc.json["kind"] == "selfcheck"
    early = gw.get(f"/v1/jobs/{job_id}/result")
    seen_progress = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = gw.get(f"/v1/jobs/{job_id}").json["job"]
        assert "params" not in job
        if job["progress"] and job["state"] == "running":
            seen_progress = True
            assert {"stage", "step", "of"} <= set(job["progress"])
        if job["state"] == "done":
            break
        time.sleep(0.03)
    assert job["state"] == "done" and seen_progress
    if early.json.get("state") != "done":
        assert early.status == 409 and early.error_code == "job_state"
    res = gw.get(f"/v1/jobs/{job_id}/result")
    assert res.status == 200
    audio = res.json["files"]["audio"]
    assert Path(audio["path"]).is_file() and audio["url"] == f"/v1/jobs/{job_id}/files/audio"
    data = gw.get(audio["url"])
    assert data.status == 200 and data.headers["content-type"] == "audio/wav"
    assert data.body == Path(audio["path"]).read_bytes()
    assert int(data.headers["content-length"]) == audio["bytes"]
    local = Path(engine.settings.home) / "copy.wav"
    local.write_bytes(data.body)
    assert sf.read(local)[0].shape == (44100, 2)
    missing = gw.get(f"/v1/jobs/{job_id}/files/nope")
    assert missing.status == 404 and missing.error_code == "not_found"
    listed = gw.get("/v1/jobs?state=done").json["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]
    assert gw.raw("DELETE", f"/v1/jobs/{job_id}").status == 200
    assert gw.get(f"/v1/jobs/{job_id}").status == 404


def test_cancel(engine) -> None:
    gw = GatewayHTTP.from_discovery()
    job_id = gw.post(
        "/v1/jobs", {"kind": "selfcheck", "params": {"steps": 400, "step_s": 0.05}}
    ).json["job_id"]
    _wait_state(gw, job_id, {"running"})
    reply = gw.post(f"/v1/jobs/{job_id}/cancel")
    assert reply.status == 200
    job = _wait_state(gw, job_id, {"cancelled"})
    assert job["error"]["code"] == "cancelled"
    res = gw.get(f"/v1/jobs/{job_id}/result")
    assert res.status == 409 and "cancelled" in res.json["error"]["message"]


def test_engine_errors_map_to_statuses(engine) -> None:
    gw = GatewayHTTP.from_discovery()
    unknown = gw.post("/v1/jobs", {"kind": "nope", "params": {}})
    assert unknown.status == 400 and unknown.error_code == "unknown_kind"
    bad = gw.post("/v1/jobs", {"kind": "selfcheck", "params": {"steps": -1}})
    assert bad.status == 400 and "steps" in bad.json["error"]["message"]
    assert gw.get("/v1/jobs/" + "0" * 32).status == 404
    first = gw.post(
        "/v1/jobs", {"kind": "selfcheck", "params": {"steps": 1}, "idempotency_key": "k"}
    )
    again = gw.post(
        "/v1/jobs", {"kind": "selfcheck", "params": {"steps": 1}, "idempotency_key": "k"}
    )
    assert again.json["job_id"] == first.json["job_id"] and again.json["duplicate"] is True
    clash = gw.post(
        "/v1/jobs", {"kind": "selfcheck", "params": {"steps": 2}, "idempotency_key": "k"}
    )
    assert clash.status == 409 and clash.error_code == "idempotency_conflict"
    assert gw.post("/v1/jobs", {"kind": "selfcheck", "seed": -3}).status == 400
    assert gw.get("/v1/jobs?limit=zero").status == 400


def test_bad_http_input_gets_clear_4xx(engine) -> None:
    gw = GatewayHTTP.from_discovery()
    cases = [
        (gw.raw("POST", "/v1/jobs", b"{not json", {"Content-Type": "application/json"}), 400),
        (gw.raw("POST", "/v1/jobs", b"[1, 2]", {"Content-Type": "application/json"}), 400),
        (gw.raw("POST", "/v1/jobs", b'{"kind": NaN}', {"Content-Type": "application/json"}), 400),
        (gw.raw("POST", "/v1/jobs", b"\xff\xfe", {"Content-Type": "application/json"}), 400),
        (gw.raw("POST", "/v1/jobs", b"kind=x", {"Content-Type": "text/plain"}), 415),
        (gw.get("/v1/nope"), 404),
        (gw.get("/"), 404),
        (gw.raw("PUT", "/v1/jobs"), 405),
        (gw.get("/v1/cue"), 405),
        (gw.raw("POST", "/v1/jobs", b"[" * 100_000, {"Content-Type": "application/json"}), 400),
    ]
    for reply, status in cases:
        assert reply.status == status, (status, reply.body[:200])
        assert reply.json["error"]["code"] and reply.json["error"]["message"]
        assert b"Traceback" not in reply.body
    # an oversize body is refused from its Content-Length, without reading it
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    conn.putrequest("POST", "/v1/jobs")
    conn.putheader("Authorization", f"Bearer {gw.token}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(64 << 20))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"]["code"] == "too_large"
    conn.close()
    # the gateway is still fine
    assert gw.get("/v1/health").status == 200


def test_cue_route_cleans_knobs_and_relays_engine_validation(engine) -> None:
    gw = GatewayHTTP.from_discovery()
    reply = gw.post(
        "/v1/cue", {"text": "x", "duration_s": 2.0, "knobs": {"mood": "auto", "genre": "polka"}}
    )
    assert reply.status == 400
    assert "genre" in reply.json["error"]["message"]  # auto mood dropped, bad genre refused
    assert gw.post("/v1/cue", {"knobs": ["mood"]}).status == 400
    soundtrack = gw.post("/v1/soundtrack", {"otio_json": 5})
    assert soundtrack.status == 400


def test_large_inline_otio_is_spooled_to_a_file(engine, tmp_path: Path) -> None:
    from bridge.gateway import INLINE_OTIO_MAX_BYTES

    gw_obj = Gateway(Path(engine.settings.home), {})
    text = json.dumps({"OTIO_SCHEMA": "Timeline.1", "pad": "x" * (INLINE_OTIO_MAX_BYTES + 10)})
    path = gw_obj.spool_otio(text)
    assert path.read_text() == text and path.parent.name == "uploads"
    assert gw_obj.spool_otio(text) == path
