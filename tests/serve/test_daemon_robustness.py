"""The daemon survives hostile input on its socket and can be reached over CURVE."""

from __future__ import annotations

import uuid

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import protocol
from bridge.client import EngineClient
from bridge.discovery import read_discovery
from bridge.errors import EngineUnavailable


def _raw(endpoint: str) -> zmq.Socket:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.IDENTITY, uuid.uuid4().bytes)
    s.connect(endpoint)
    return s


def _reply(s: zmq.Socket) -> dict:
    assert s.poll(5000), "the daemon did not answer"
    return protocol.decode(s.recv_multipart()).body


def test_malformed_inputs_get_typed_errors(engine) -> None:
    disc = read_discovery(engine.settings.home)
    s = _raw(disc.endpoint)
    token = disc.token
    cases = [
        ([protocol.TAG, b"\xc1garbage"], "malformed"),
        ([b"VMB/9", protocol.pack({"type": "ping", "token": token})], "version"),
        (
            [protocol.TAG, protocol.pack({"type": "reboot", "token": token, "rid": 1})],
            "unknown_command",
        ),
        ([protocol.TAG, protocol.pack({"type": "ping", "rid": 2})], "unauthorized"),
        (
            [protocol.TAG, protocol.pack({"type": "ping", "token": "x" * 40, "rid": 3})],
            "unauthorized",
        ),
        (
            [protocol.TAG, protocol.pack({"type": "submit", "token": token, "rid": 4})],
            "invalid_request",
        ),
        ([protocol.TAG, protocol.pack({"type": "ping", "token": token})] + [b"x"] * 9, "too_large"),
        (
            [protocol.TAG, msgpack.packb({"type": "result", "token": token, "job_id": "nope"})],
            "unknown_job",
        ),
    ]
    for frames, code in cases:
        s.send_multipart(frames)
        body = _reply(s)
        assert body["type"] == "error" and body["code"] == code, (frames[:2], body)
        assert body["boot_id"] == disc.boot_id
    # an oversize frame is dropped by libzmq (MAXMSGSIZE) and the peer disconnected
    s.send_multipart([protocol.TAG, b"\x00" * (protocol.MAX_FRAME_BYTES + 8192)])
    s.close(0)
    with EngineClient(home=engine.settings.home, timeout_s=5) as c:
        assert c.ping()["pong"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(st.binary(max_size=48), min_size=1, max_size=9))
def test_fuzz_daemon_socket(engine_for_fuzz, frames: list[bytes]) -> None:
    s = engine_for_fuzz["sock"]
    s.send_multipart(frames)
    if s.poll(300):
        s.recv_multipart()


@pytest.fixture(scope="module")
def engine_for_fuzz(tmp_path_factory: pytest.TempPathFactory):
    """One daemon for all fuzz examples (hypothesis reuses the fixture)."""
    import os

    from support.engine import engine_env, start_engine

    home = tmp_path_factory.mktemp("fuzz-home")
    env = engine_env()
    saved = {k: os.environ.get(k) for k in (*env, "VMB_HOME")}
    os.environ.update(env)
    os.environ["VMB_HOME"] = str(home)
    eng = start_engine(home, env)
    sock = _raw(read_discovery(home).endpoint)
    try:
        yield {"engine": eng, "sock": sock}
        sock.close(0)
        with EngineClient(home=home, timeout_s=5) as c:
            assert c.ping()["pong"], "the daemon died under fuzzing"
    finally:
        eng.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_curve_encrypted_engine(vmb_home, monkeypatch: pytest.MonkeyPatch) -> None:
    import zmq.auth

    from support.engine import engine_env, start_engine

    keys = vmb_home / "keys"
    keys.mkdir()
    _, secret = zmq.auth.create_certificates(keys, "engine")
    (vmb_home / "config.toml").write_text(f'[server]\ncurve_secret_key_file = "{secret}"\n')
    env = engine_env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    eng = start_engine(vmb_home, env)
    try:
        disc = read_discovery(vmb_home)
        assert disc.server_public_key
        with EngineClient(home=vmb_home) as c:
            job = c.submit("selfcheck", {"steps": 1, "step_s": 0})["job_id"]
            assert c.wait(job, timeout_s=30)["files"]
        plain = type(disc)(**{**disc.to_json(), "server_public_key": None})
        with EngineClient(plain, timeout_s=1, retries=0) as c, pytest.raises(EngineUnavailable):
            c.ping()  # a client without the server key cannot talk to it
    finally:
        eng.stop()
