"""ZeroMQ client for the engine daemon (used by the CLI, the gateway and any Python caller).

DEALER socket (never REQ: a lost reply would lock it). Requests carry an id and the token;
a request that times out is retried after re-reading the discovery file (the daemon may
have restarted on another port). Every reply carries the daemon's boot id: when it
changes, `events()` re-attaches and continues from the last sequence number it saw.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from bridge import protocol
from bridge.discovery import Discovery, read_discovery
from bridge.errors import (
    EngineUnavailable,
    JobCancelled,
    JobError,
    ProtocolError,
    error_from_wire,
)
from bridge.protocol import PROTO_MAJOR, PROTO_MINOR, TERMINAL_EVENTS


@dataclass(frozen=True)
class Event:
    """One job event: accepted | progress | done | failed | cancelled."""

    event: str
    job_id: str
    seq: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS


def _snapshot_events(job: dict[str, Any], last_seq: int) -> list[Event]:
    """Events a client missed, rebuilt from a job snapshot (Clone pattern)."""
    seq, state = job["seq"], job["state"]
    if state in ("done", "failed", "cancelled"):
        data: dict[str, Any] = {"state": state}
        if state == "done":
            data["result"] = job["result"]
        elif job.get("error"):
            data.update(job["error"])
        return [Event(state, job["job_id"], seq, data)]
    if seq > last_seq and job.get("progress"):
        return [Event("progress", job["job_id"], seq, dict(job["progress"]))]
    return []


class EngineClient:
    def __init__(
        self,
        discovery: Discovery | None = None,
        home: Path | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        heartbeat_s: float = 1.0,
    ) -> None:
        self.home = home
        self.discovery = discovery or read_discovery(home)
        self.timeout_s = timeout_s
        self.retries = retries
        self.heartbeat_s = heartbeat_s
        self.boot_id: str | None = None
        self._rid = itertools.count(1)
        self._events: dict[str, deque[Event]] = {}
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._connect()

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        s = self._ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES + 4096)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        s.setsockopt(zmq.HEARTBEAT_IVL, int(self.heartbeat_s * 1000))
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.heartbeat_s * 3000))
        s.setsockopt(zmq.IDENTITY, uuid.uuid4().bytes)
        if self.discovery.server_public_key:
            public, secret = zmq.curve_keypair()
            s.curve_serverkey = self.discovery.server_public_key.encode()
            s.curve_publickey, s.curve_secretkey = public, secret
        s.connect(self.discovery.endpoint)
        self._sock = s

    def _refresh(self) -> None:
        """Re-read the discovery file and reconnect (a restarted daemon may have moved)."""
        try:
            self.discovery = read_discovery(self.home)
        except EngineUnavailable:
            pass
        self._connect()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request / reply -------------------------------------------------------------------
    def _recv(self, wait_s: float) -> dict[str, Any] | None:
        assert self._sock is not None
        if not self._sock.poll(int(wait_s * 1000), zmq.POLLIN):
            return None
        frames = self._sock.recv_multipart()
        try:
            body = protocol.decode(frames).body
        except ProtocolError:
            return {}
        if isinstance(body.get("boot_id"), str):
            self.boot_id = body["boot_id"]
        if body.get("type") == "event":
            ev = Event(body["event"], body["job_id"], body["seq"], body)
            self._events.setdefault(ev.job_id, deque()).append(ev)
        return body

    def request(self, command: str, /, **fields: Any) -> dict[str, Any]:
        """Send a command and return its reply; retries with a fresh connection on timeout."""
        for attempt in range(self.retries + 1):
            rid = next(self._rid)
            body = {"type": command, "rid": rid, "token": self.discovery.token, **fields}
            assert self._sock is not None
            deadline = time.monotonic() + self.timeout_s
            # IMMEDIATE: nothing queues for a peer that is not connected; wait for one.
            if self._sock.poll(int(self.timeout_s * 1000), zmq.POLLOUT):
                self._sock.send_multipart(protocol.encode(body), zmq.NOBLOCK)
            else:
                deadline = 0.0
            while (left := deadline - time.monotonic()) > 0:
                reply = self._recv(left)
                if reply is None:
                    break
                if reply.get("rid") != rid or reply.get("type") not in ("reply", "error"):
                    continue
                if reply["type"] == "error":
                    raise error_from_wire(reply.get("code", "internal"), reply.get("message", ""))
                return reply
            if attempt < self.retries:
                self._refresh()
        raise EngineUnavailable(
            f"the engine at {self.discovery.endpoint} did not answer '{command}' "
            f"({self.retries + 1} tries of {self.timeout_s:g} s); check `vmb engine status`"
        )

    # -- commands --------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        return self.request("hello", proto=[PROTO_MAJOR, PROTO_MINOR], client="vmb-python")

    def ping(self) -> dict[str, Any]:
        return self.request("ping")

    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        idempotency_key: str | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Submit a job; the key (generated if absent) makes retries safe."""
        fields: dict[str, Any] = {
            "kind": kind,
            "params": params,
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        if seed is not None:
            fields["seed"] = seed
        return self.request("submit", **fields)

    def attach(self, job_id: str, last_seq: int = 0) -> dict[str, Any]:
        return self.request("attach", job_id=job_id, last_seq=last_seq)["job"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("cancel", job_id=job_id)["job"]

    def result(self, job_id: str) -> dict[str, Any]:
        return self.request("result", job_id=job_id)["job"]

    def close_job(self, job_id: str) -> None:
        self.request("close", job_id=job_id)

    def list_jobs(
        self, state: str | None = None, limit: int = 100, finished_before: float | None = None
    ) -> list[dict[str, Any]]:
        fields: dict[str, Any] = {"limit": limit}
        if state:
            fields["state"] = state
        if finished_before is not None:
            fields["finished_before"] = finished_before
        return self.request("list", **fields)["jobs"]

    # -- events ----------------------------------------------------------------------------
    def events(
        self, job_id: str, last_seq: int = 0, timeout_s: float | None = None
    ) -> Iterator[Event]:
        """Progress then exactly one terminal event; survives daemon restarts (re-attach)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        queue = self._events.setdefault(job_id, deque())
        while True:
            for ev in _snapshot_events(self.attach(job_id, last_seq), last_seq):
                last_seq = ev.seq
                yield ev
                if ev.terminal:
                    self._events.pop(job_id, None)
                    return
            boot = self.boot_id
            idle_until = time.monotonic() + self.heartbeat_s
            while self.boot_id == boot:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout_s} s")
                if queue:
                    ev = queue.popleft()
                    idle_until = time.monotonic() + self.heartbeat_s
                    if ev.seq <= last_seq and not ev.terminal:
                        continue
                    last_seq = max(last_seq, ev.seq)
                    yield ev
                    if ev.terminal:
                        self._events.pop(job_id, None)
                        return
                    continue
                left = idle_until - time.monotonic()
                if left <= 0:
                    break  # quiet for a heartbeat: re-attach (also a liveness check)
                self._recv(min(left, 0.25))

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[Event], None] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Block until the job ends; return its result or raise its typed error."""
        for ev in self.events(job_id, timeout_s=timeout_s):
            if ev.event == "progress" and on_progress:
                on_progress(ev)
            elif ev.event == "done":
                return ev.data.get("result") or {}
            elif ev.event == "cancelled":
                raise JobCancelled(f"job {job_id} was cancelled")
            elif ev.event == "failed":
                raise error_from_wire(ev.data.get("code", "job_failed"), ev.data.get("message", ""))
        raise JobError(f"job {job_id}: no terminal event")
