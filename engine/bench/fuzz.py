"""`vmb bench fuzz [--messages N]`: hostile input at a real daemon and its gateway, counted.

A private daemon (temporary VMB home, 127.0.0.1 only) gets N hostile ZeroMQ messages from
four DEALER sockets, pipelined, and its host gateway N/10 hostile HTTP requests from four
threads (engine.bench.fuzz_messages makes them). Then the daemon must still answer with the
same boot id, its job store must pass `PRAGMA integrity_check`, and no reply may be
`internal`. Accepted jobs meet the real validators but run nothing (engine.bench.fuzz_kinds).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from bridge import protocol
from bridge.client import EngineClient
from bridge.discovery import read_discovery
from bridge.errors import InvalidRequest
from engine.bench import figure
from engine.bench import fuzz_messages as fm
from engine.bench.protocol import private_engine
from engine.serve import control

DEFAULT_MESSAGES = 100_000
QUICK_MESSAGES = 5_000
SOCKETS = 4
WINDOW = 200  # requests in flight per socket: well under the ROUTER's per-peer send HWM
HTTP_THREADS = 4
STALL_S = 15.0  # no reply for this long: stop waiting and count the rest unanswered
ZMQ_PHASE_MAX_S = 900.0
HTTP_PHASE_MAX_S = 600.0
FAILING_HTTP = {"internal", "engine_unavailable", "no_response"}


@contextlib.contextmanager
def _fuzz_kinds() -> Iterator[None]:
    """The private daemon loads the cheap stand-ins of every kind (real validators)."""
    old = os.environ.get("VMB_JOB_KIND_MODULES")
    os.environ["VMB_JOB_KIND_MODULES"] = "engine.bench.fuzz_kinds"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("VMB_JOB_KIND_MODULES", None)
        else:
            os.environ["VMB_JOB_KIND_MODULES"] = old


def _dealer(zctx: zmq.Context, endpoint: str) -> zmq.Socket:
    s = zctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    s.connect(endpoint)
    return s


def _reply_code(frames: list[bytes], ctx: fm.FuzzContext) -> str | None:
    """The reply's code ("ok" or an error code); None for a job event (not a reply)."""
    try:
        body = protocol.decode(frames).body
    except Exception:  # noqa: BLE001 - a reply the client cannot read is what we count
        return "undecodable_reply"
    if body.get("type") == "event":
        return None
    if body.get("type") == "error":
        return str(body.get("code"))
    if body.get("re") == "submit":
        ctx.note_job(body.get("job_id"))
    return "ok"


def zmq_phase(endpoint: str, ctx: fm.FuzzContext, n: int, rng: random.Random) -> dict[str, Any]:
    """Send n messages over SOCKETS dealers, at most WINDOW unanswered each; count replies
    by code and by message class (replies to one peer come back in order)."""
    zctx = zmq.Context()
    socks = [_dealer(zctx, endpoint) for _ in range(SOCKETS)]
    pending: list[deque[str]] = [deque() for _ in socks]
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    codes: Counter[str] = Counter()
    by_class: dict[str, Counter[str]] = {}
    sent, last_reply = 0, time.monotonic()
    t0 = time.monotonic()
    try:
        while sent < n or any(pending):
            for i, s in enumerate(socks):
                while sent < n and len(pending[i]) < WINDOW:
                    cls = fm.pick(rng, fm.ZMQ_CLASSES)
                    s.send_multipart(fm.ZMQ_CLASSES[cls][1](rng, ctx))
                    pending[i].append(cls)
                    sent += 1
            ready = dict(poller.poll(100))
            for i, s in enumerate(socks):
                while s in ready and pending[i]:
                    try:
                        frames = s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    code = _reply_code(frames, ctx)
                    if code is None:
                        continue
                    cls = pending[i].popleft()
                    codes[code] += 1
                    by_class.setdefault(cls, Counter())[code] += 1
                    last_reply = time.monotonic()
            now = time.monotonic()
            if now - last_reply > STALL_S or now - t0 > ZMQ_PHASE_MAX_S:
                break
    finally:
        for s in socks:
            s.close(0)
        zctx.term()
    unanswered = sum(len(p) for p in pending) + (n - sent)
    return {
        "sent": sent,
        "unanswered": unanswered,
        "seconds": time.monotonic() - t0,
        "codes": dict(codes),
        "by_class": {k: dict(v) for k, v in sorted(by_class.items())},
    }


def _http_code(status: int, data: bytes) -> str:
    try:
        err = json.loads(data).get("error")
    except (ValueError, AttributeError):
        return f"http_{status}"
    if not err:
        return "ok" if status < 300 else f"http_{status}"
    return str(err.get("code"))


def _http_one(host: str, port: int, token: str, req: fm.HttpRequest) -> tuple[str, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=40)
    try:
        conn.putrequest(req.method, req.path, skip_accept_encoding=True)
        for name, val in req.headers:
            conn.putheader(name, val)
        if req.auth:
            conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Length", str(len(req.body)))
        conn.endheaders(req.body or None)
        resp = conn.getresponse()
        data = resp.read()
        return _http_code(resp.status, data), data
    except (OSError, http.client.HTTPException):
        return "no_response", b""
    finally:
        conn.close()


def http_phase(url: str, ctx: fm.FuzzContext, n: int, seed: int) -> dict[str, Any]:
    """n hostile requests from HTTP_THREADS threads, each a fresh loopback connection."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    assert host == "127.0.0.1", "the fuzz only targets 127.0.0.1"
    codes: Counter[str] = Counter()
    by_class: dict[str, Counter[str]] = {}
    lock = threading.Lock()
    samples: list[str] = []
    deadline = time.monotonic() + HTTP_PHASE_MAX_S
    counts = [n // HTTP_THREADS + (i < n % HTTP_THREADS) for i in range(HTTP_THREADS)]

    def worker(count: int, rng: random.Random) -> None:
        for _ in range(count):
            if time.monotonic() > deadline:
                return
            cls = fm.pick(rng, fm.HTTP_CLASSES)
            code, data = _http_one(host, int(port), ctx.token, fm.HTTP_CLASSES[cls][1](rng, ctx))
            if code == "ok" and data:
                with contextlib.suppress(ValueError, AttributeError):
                    ctx.note_job(json.loads(data).get("job_id"))
            with lock:
                if code in FAILING_HTTP and len(samples) < 5:
                    samples.append(f"{cls}: {data[:300]!r}")
                codes[code] += 1
                by_class.setdefault(cls, Counter())[code] += 1

    t0 = time.monotonic()
    threads = [
        threading.Thread(target=worker, args=(c, random.Random(seed + 1 + i)))
        for i, c in enumerate(counts)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = sum(codes.values())
    return {
        "sent": done,
        "unsent": n - done,
        "seconds": time.monotonic() - t0,
        "codes": dict(codes),
        "by_class": {k: dict(v) for k, v in sorted(by_class.items())},
        "failure_samples": samples,
    }


def integrity(db: Path) -> str:
    """`PRAGMA integrity_check` on the job store, read-only beside the running daemon."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


def _after(settings: Any, boot_id: str, pid: int) -> dict[str, Any]:
    """Is the same daemon still up and answering, and is its store sound?"""
    out: dict[str, Any] = {"answers": False, "same_boot": False, "pid_alive": False}
    with contextlib.suppress(Exception), EngineClient(home=settings.home, timeout_s=10) as c:
        out["answers"] = bool(c.ping().get("pong")) and bool(c.hello().get("proto"))
        out["same_boot"] = c.boot_id == boot_id
    with contextlib.suppress(OSError):
        os.kill(pid, 0)
        out["pid_alive"] = True
    out["integrity_check"] = integrity(settings.jobs_db)
    log = control.log_path(settings)
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = [ln for ln in text.splitlines() if "internal error handling a request" in ln]
    out["internal_errors_logged"] = len(lines)
    defects = [ln for ln in text.splitlines() if "validator defect:" in ln]
    out["validator_defects_logged"] = len(defects)
    out["log_samples"] = [ln[:300] for ln in (lines + defects)[:8]]
    with contextlib.closing(sqlite3.connect(f"file:{settings.jobs_db}?mode=ro", uri=True)) as db:
        out["jobs_stored"] = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return out


def bench_fuzz(opts: argparse.Namespace) -> dict[str, Any]:
    n = getattr(opts, "messages", None)
    if n is None:
        n = QUICK_MESSAGES if opts.quick else DEFAULT_MESSAGES
    if n < 0:
        raise InvalidRequest(f"--messages must be 0 or more, not {n}")
    seed = getattr(opts, "seed", None)
    seed = 20 if seed is None else seed
    rng = random.Random(seed)
    t0 = time.monotonic()
    with _fuzz_kinds(), private_engine() as settings:
        disc = read_discovery(settings.home)
        assert disc.endpoint.startswith("tcp://127.0.0.1:"), disc.endpoint
        ctx = fm.FuzzContext(token=disc.token, files=fm.hostile_files(settings.home / "fuzz"))
        zres = zmq_phase(disc.endpoint, ctx, n, rng)
        hres = http_phase(disc.gateway, ctx, n // 10, seed) if disc.gateway else None
        after = _after(settings, disc.boot_id, disc.pid)
    return _report(n, seed, zres, hres, after, time.monotonic() - t0)


def _report(
    n: int, seed: int, zres: dict, hres: dict | None, after: dict, total_s: float
) -> dict[str, Any]:
    internal = zres["codes"].get("internal", 0) + zres["codes"].get("undecodable_reply", 0)
    http_codes = (hres or {}).get("codes", {})
    http_bad = sum(http_codes.get(c, 0) for c in FAILING_HTTP)
    crashes = int(not (after["answers"] and after["same_boot"] and after["pid_alive"]))
    sound = after["integrity_check"] == "ok"
    figures = [
        figure("zmq messages sent", zres["sent"], "", f"= {n}", zres["sent"] == n),
        figure("zmq messages unanswered", zres["unanswered"], "", "0", zres["unanswered"] == 0),
        figure("zmq internal replies", internal, "", "0", internal == 0),
        figure("zmq messages/s", zres["sent"] / max(zres["seconds"], 1e-9), "1/s"),
        figure("gateway requests", (hres or {}).get("sent", 0), "", f"= {n // 10}",
               hres is not None and hres["sent"] == n // 10),
        figure("gateway internal/unavailable/no reply", http_bad, "", "0", http_bad == 0),
        figure("daemon crashes (restart or no answer)", crashes, "", "0", crashes == 0),
        figure("internal errors in the daemon log", after["internal_errors_logged"], "", "0",
               after["internal_errors_logged"] == 0),
        figure("kind validator defects in the log", after["validator_defects_logged"], "", "0",
               after["validator_defects_logged"] == 0),
        figure("job store integrity_check", int(sound), "ok", "1", sound),
        figure("wall time", total_s, "s"),
    ]  # fmt: skip
    return {
        "name": "fuzz",
        "figures": figures,
        "notes": [
            f"seed {seed}; zmq replies by code: {_fmt(zres['codes'])}",
            f"gateway replies by code: {_fmt(http_codes)}",
            f"jobs stored after the fuzz: {after['jobs_stored']} "
            "(accepted jobs run the fuzz stand-in kinds: validated, not run)",
        ],
        "zmq": zres,
        "gateway": hres,
        "after": after,
    }


def _fmt(codes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(codes.items(), key=lambda kv: -kv[1]))
