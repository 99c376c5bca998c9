"""The engine daemon: one per VMB home, a ZeroMQ ROUTER on loopback, jobs run one at a time.

One thread owns the socket and the SQLite store (neither is thread-safe); the worker is a
child process polled through its pipe. Replies always carry the boot id so a client can
notice a restart and re-attach. Malformed input gets an error reply, never a crash.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import os
import secrets
import signal
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from bridge import protocol
from bridge.discovery import Discovery, discovery_path, read_discovery, run_dir, write_discovery
from bridge.errors import (
    AlreadyRunning,
    InvalidRequest,
    MessageTooLarge,
    Unauthorized,
    VersionMismatch,
    VMBError,
    clip_message,
    quote,
)
from bridge.protocol import PROTO_MAJOR, PROTO_MINOR, TERMINAL_STATES
from engine import __version__
from engine.config import Settings
from engine.serve.catalogue import load_kinds
from engine.serve.jobrun import JobRunner
from engine.serve.kinds import JobKind, get_kind
from engine.serve.store import JobStore
from engine.serve.worker import WorkerSupervisor


def knob_definitions() -> dict[str, Any]:
    """The knob table (bridge/knobs.py) with the engine's vocabularies: what the `hello`
    reply and the gateway's /v1/capabilities serve, and the host panels are built from."""
    from bridge.knobs import knob_definitions as build
    from engine import taxonomy
    from engine.backends import CHOICES

    return build(taxonomy.all_tags(), (taxonomy.MIN_BPM, taxonomy.MAX_BPM), backends=CHOICES)


LIST_BYTES = 768 << 10  # a `list` reply stops adding jobs here (and says `truncated`)
LIST_JOB_BYTES = 64 << 10  # a listed job over this shows no result (`result` has it)


def token_path(settings: Settings) -> Path:
    return settings.home / "token"


def load_or_create_token(settings: Settings) -> str:
    """A persistent random token (0600): clients keep working across daemon restarts."""
    path = token_path(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


class InstanceLock:
    """Single instance per home: an exclusive flock held for the daemon's lifetime."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = run_dir(home) / "engine.lock"
        self.fh: Any = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = self.path.open("a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            pid = "?"
            with contextlib.suppress(VMBError):
                pid = str(read_discovery(self.home).pid)
            raise AlreadyRunning(
                f"an engine already runs on {self.home} (pid {pid}); "
                "use `vmb engine status` or `vmb engine stop`"
            ) from None

    def release(self) -> None:
        if self.fh:
            self.fh.close()


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.boot_id = uuid.uuid4().hex
        self.stopping = False
        self.kind_modules = list(settings.jobs.kind_modules)
        self._outbox: list[tuple[bytes, dict[str, Any]]] | None = None
        self.gateway: Any = None  # bridge.gateway.Gateway while it runs

    # -- lifecycle -------------------------------------------------------------------------
    def _bind(self) -> str:
        s = self.settings.server
        self.zctx = zmq.Context()
        r = self.router = self.zctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)
        r.setsockopt(zmq.ROUTER_HANDOVER, 1)
        r.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES + 4096)
        r.setsockopt(zmq.RCVHWM, 1000)
        r.setsockopt(zmq.HEARTBEAT_IVL, int(s.heartbeat_s * 1000))
        r.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(s.heartbeat_s * 3000))
        self.server_public_key: str | None = None
        if s.curve_secret_key_file:
            public, secret = zmq.auth.load_certificate(s.curve_secret_key_file)
            if secret is None:
                raise InvalidRequest(f"{s.curve_secret_key_file} holds no secret key")
            r.curve_server = True
            r.curve_publickey, r.curve_secretkey = public, secret
            self.server_public_key = public.decode()
        host = f"[{s.host}]" if ":" in s.host else s.host
        if s.host.count(":"):
            r.setsockopt(zmq.IPV6, 1)
        port_file = self.settings.run_dir / "port"
        port = s.port
        if port == 0 and port_file.exists():  # reuse the last port so clients reconnect
            with contextlib.suppress(ValueError, zmq.ZMQError):
                remembered = int(port_file.read_text())
                r.bind(f"tcp://{host}:{remembered}")
                port = remembered
        if port == 0:
            port = r.bind_to_random_port(f"tcp://{host}")
        elif not r.get(zmq.LAST_ENDPOINT):
            r.bind(f"tcp://{host}:{port}")
        port_file.write_text(str(port))
        return f"tcp://{host}:{port}"

    def serve_forever(self) -> None:
        settings = self.settings
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        lock = InstanceLock(settings.home)
        lock.acquire()
        try:
            self._serve(lock)
        finally:
            lock.release()

    def _serve(self, lock: InstanceLock) -> None:
        settings = self.settings
        self.kinds = load_kinds(self.kind_modules)
        self.token = load_or_create_token(settings)
        self.store = JobStore(settings.jobs_db)
        recovered = self.store.recover(settings.jobs.max_attempts)
        for job in recovered:
            self._log(f"recovered job {job.job_id}: {job.state} (attempt {job.attempt})")
        self.endpoint = self._bind()
        self.worker = WorkerSupervisor(settings, self.kind_modules)
        self.worker.start()
        self.jobs = JobRunner(settings, self.store, self.worker, self._send)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        disc = Discovery(
            endpoint=self.endpoint,
            token=self.token,
            boot_id=self.boot_id,
            pid=os.getpid(),
            version=__version__,
            server_public_key=self.server_public_key,
        )
        write_discovery(settings.home, replace(disc, gateway=self._start_gateway(disc)))
        self._log(f"engine {__version__} listening on {self.endpoint} (boot {self.boot_id})")
        try:
            self._loop()
        finally:
            self._shutdown()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        self._stop_gateway()
        cur = self.worker.current
        self.worker.stop()
        if cur is not None:  # an orderly stop does not use up one of the job's attempts
            self.store.db.execute(
                "UPDATE jobs SET state='queued', attempt=max(attempt-1,0), seq=seq+1 "
                "WHERE job_id=? AND state='running'",
                (cur.job_id,),
            )
        with contextlib.suppress(FileNotFoundError):
            disc = discovery_path(self.settings.home)
            if f'"{self.boot_id}"' in disc.read_text():
                disc.unlink()
        self.router.close(0)
        self.zctx.term()
        self.store.close()
        self._log("engine stopped")

    # -- host gateway (loopback HTTP for the host plugins) ----------------------------------
    def _start_gateway(self, disc: Discovery) -> str | None:
        """Start the gateway thread when settings.server.gateway; its URL goes to discovery.
        A gateway that cannot bind is logged, not fatal: the CLI still reaches the engine."""
        server = self.settings.server
        if not server.gateway:
            return None
        from bridge.gateway import Gateway

        gateway = Gateway(
            self.settings.home,
            knob_definitions(),
            discovery=disc,
            port=server.gateway_port,
            outputs_dir=self.settings.outputs_dir,
        )
        try:
            url = gateway.start()
        except OSError as exc:
            self._log(f"host gateway not started on port {server.gateway_port}: {exc}")
            return None
        self.gateway = gateway
        self._log(f"host gateway on {url}")
        return url

    def _stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    @staticmethod
    def _log(msg: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    # -- main loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        registered_conn = None
        while not self.stopping:
            if self.worker.conn is not registered_conn:
                if registered_conn is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        poller.unregister(registered_conn)
                registered_conn = self.worker.conn
                if registered_conn is not None:
                    poller.register(registered_conn, zmq.POLLIN)
            try:
                ready = dict(poller.poll(50))
            except zmq.ZMQError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if self.router in ready:
                self._handle_batch()
            self.jobs.tick()

    # -- client messages -------------------------------------------------------------------
    def _send(self, ident: bytes, body: dict[str, Any]) -> bool:
        if self._outbox is not None:  # inside a batch: hold until the commit
            self._outbox.append((ident, body))
            return True
        body = {**body, "boot_id": self.boot_id}
        try:
            frames = protocol.encode(body)
        except Exception as exc:  # noqa: BLE001 - a reply that cannot be packed is refused typed
            frames = protocol.encode(self._unsendable(body, exc))
        try:
            self.router.send_multipart([ident, *frames], zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                return False
            raise

    def _unsendable(self, body: dict[str, Any], exc: Exception) -> dict[str, Any]:
        """What goes out instead of a reply or event too large (or unpackable) to send: a
        typed error for a reply, the event without its result (the peer asks `result`)."""
        if not isinstance(exc, MessageTooLarge):
            self._log(f"internal error packing a {body.get('type')}: {type(exc).__name__}: {exc}")
            exc = MessageTooLarge(f"the reply could not be packed ({type(exc).__name__})")
        keep = ("type", "rid", "boot_id", "event", "job_id", "seq", "state")
        small = {k: body[k] for k in keep if k in body}
        if body.get("type") == "event":
            return {**small, "result": None, "result_omitted": True}
        return {**small, "type": "error", **exc.to_wire()}

    def _handle_batch(self) -> None:
        """Drain waiting requests, handle them in one transaction, then send the replies:
        `accepted` still follows the commit, and a burst of submits costs one fsync."""
        batch = []
        for _ in range(256):  # bounded, so the worker stays serviced
            try:
                batch.append(self.router.recv_multipart(zmq.NOBLOCK, copy=True))
            except zmq.Again:
                break
        self._outbox = []
        try:
            with self.store.transaction():
                for frames in batch:
                    self._handle_frames(frames)
        finally:
            outbox, self._outbox = self._outbox, None
        for ident, body in outbox:
            try:
                self._send(ident, body)
            except Exception as exc:  # noqa: BLE001 - one reply must not take the rest down
                self._log(f"internal error sending a reply: {type(exc).__name__}: {exc}")

    def _handle_frames(self, frames: list[bytes]) -> None:
        if len(frames) < 1:
            return
        ident, rest = frames[0], frames[1:]
        rid: Any = None
        try:
            msg = protocol.decode(rest)
            rid = msg.body.get("rid")
            if not protocol.valid_rid(rid):
                rid = None  # never echo a malformed id; the validator names the field
            token = msg.body.get("token")  # first: a peer without it learns nothing more
            if not isinstance(token, str) or not hmac.compare_digest(
                token.encode("utf-8", "replace"), self.token.encode()
            ):
                raise Unauthorized("missing or wrong token (read it from the discovery file)")
            kind = protocol.validate_command(msg.body)  # the schema, before anything else
            reply = getattr(self, f"_cmd_{kind}")(ident, msg.body)
            self._send(ident, {"type": "reply", "rid": rid, "re": kind, **reply})
        except VMBError as exc:
            self._send(ident, {"type": "error", "rid": rid, **exc.to_wire()})
        except Exception as exc:  # noqa: BLE001 - the daemon must outlive any bad request
            self._log(f"internal error handling a request: {type(exc).__name__}: {exc}")
            message = clip_message(f"{type(exc).__name__}: {exc}")
            self._send(ident, {"type": "error", "rid": rid, "code": "internal", "message": message})

    def _cmd_hello(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        proto = body["proto"]
        if not proto or proto[0] != PROTO_MAJOR:
            raise VersionMismatch(f"client protocol {quote(proto)}; engine speaks {PROTO_MAJOR}.x")
        if body.get("compute"):
            self.worker.want_compute()
        return {
            "proto": [PROTO_MAJOR, PROTO_MINOR],
            "server_version": __version__,
            "capabilities": {
                "kinds": {k: v.description for k, v in sorted(self.kinds.items())},
                "model_dir": str(self.settings.model_dir),
                "compute": self.worker.compute_status(),
                "commands": sorted(protocol.COMMANDS),
                "knobs": knob_definitions(),
                "limits": {
                    "max_frames": protocol.MAX_FRAMES,
                    "max_body_bytes": protocol.MAX_BODY_BYTES,
                    "max_frame_bytes": protocol.MAX_FRAME_BYTES,
                    "seed_max": protocol.SEED_MAX,
                    "max_id_chars": protocol.ID_MAX_CHARS,
                    "max_key_chars": protocol.KEY_MAX_CHARS,
                    "max_params_bytes": protocol.PARAMS_MAX_BYTES,
                },
            },
        }

    def _cmd_ping(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True, "time": time.time()}

    def _cmd_submit(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        kind = get_kind(body["kind"])
        params = self._validated_params(kind, body["params"])
        size = protocol.packed_size(params)
        if size > protocol.PARAMS_MAX_BYTES:  # kept with the job and sent back in replies
            raise MessageTooLarge(
                f"'submit.params' take {size} bytes; a job keeps at most "
                f"{protocol.PARAMS_MAX_BYTES} (send large timelines as a file path)"
            )
        seed = body.get("seed")
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "little") % (protocol.SEED_MAX + 1)
        job, duplicate = self.store.submit(kind.name, params, seed, body.get("idempotency_key"))
        # committed (synchronous=FULL): only now is the job acknowledged
        self.jobs.subscribe(job.job_id, ident)
        return {
            "event": "accepted",
            "job_id": job.job_id,
            "seq": job.seq,
            "duplicate": duplicate,
            "seed": job.seed,
            "state": job.state,
        }

    def _validated_params(self, kind: JobKind, params: dict[str, Any]) -> dict[str, Any]:
        """The kind's own checks, after the schema's. A validator that trips over input it
        did not foresee refuses the params (typed, logged as a defect), never `internal`."""
        if kind.validate is None:
            return params
        try:
            return kind.validate(params, self.settings)
        except VMBError:
            raise
        except Exception as exc:  # noqa: BLE001 - bad params must not read as a server fault
            self._log(f"validator defect: {kind.name} raised {type(exc).__name__}: {exc}")
            raise InvalidRequest(
                f"'submit.params' were refused by the {kind.name} checks ({type(exc).__name__})"
            ) from None

    def _cmd_attach(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        job = self.store.get(body["job_id"])
        if job.state not in TERMINAL_STATES:
            self.jobs.subscribe(job.job_id, ident)
        return {"job": job.to_wire()}

    def _cmd_cancel(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        job = self.store.get(body["job_id"])
        if job.state == "queued":
            job = self.store.request_cancel(job.job_id)
            self.jobs.broadcast_terminal(job)
        elif job.state == "running":
            job = self.store.request_cancel(job.job_id)
            self.worker.request_cancel(job.job_id, self.settings.jobs.cancel_grace_s)
        return {"job": job.to_wire()}

    def _cmd_result(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        return {"job": self.store.get(body["job_id"]).to_wire()}

    def _cmd_close(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        self.store.delete(body["job_id"])
        self.jobs.forget(body["job_id"])
        return {"closed": body["job_id"]}

    def _cmd_list(self, ident: bytes, body: dict[str, Any]) -> dict[str, Any]:
        # state, limit and finished_before were checked against the schema (protocol.COMMANDS)
        # without params (`result` has them), and only as many jobs as fit in one reply
        state, before = body.get("state"), body.get("finished_before")
        jobs, used, truncated = [], 0, False
        for job in self.store.list(state, body.get("limit") or 100, before):
            wire = {k: v for k, v in job.to_wire().items() if k != "params"}
            size = protocol.packed_size(wire)
            if size > LIST_JOB_BYTES:
                wire.update(result=None, result_omitted=True)
                size = protocol.packed_size(wire)
            if used + size > LIST_BYTES:
                truncated = True
                break
            jobs.append(wire)
            used += size
        return {"jobs": jobs, "truncated": truncated}


def run_daemon(settings: Settings) -> None:
    Daemon(settings).serve_forever()
