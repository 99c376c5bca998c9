"""Host gateway: a loopback HTTP + JSON face of the engine protocol for host plugins.

Hosts' interpreters cannot load pyzmq (Resolve's bundled Python has no pip; REAPER's Python
must stay stdlib-only), so plugins speak HTTP here and the gateway relays each request to
the daemon over the same ZeroMQ protocol with EngineClient. It adds nothing the protocol
lacks: the routes map one to one onto protocol commands, plus the knob definitions for
panels and the bytes of a job's output files (for an engine on another machine).

Every request needs `Authorization: Bearer <token>` (the token of the discovery file).
Errors are `{"error": {"code", "message"}}` with the HTTP status of the bridge.errors class
(`http_status`); no request ever gets a traceback.

Routes (all under /v1):
  GET    /health                      engine answers? {"ok", "engine": {version, boot_id}}
  GET    /capabilities                kinds, limits, knob definitions
  POST   /jobs                        {"kind", "params", "seed"?, "idempotency_key"?} -> 202
  POST   /cue                         cue params (+ "seed", "idempotency_key") -> 202
  POST   /soundtrack                  soundtrack params (+ "seed", "idempotency_key") -> 202
  POST   /conform                     conform params (+ "seed", "idempotency_key") -> 202
  GET    /jobs?state=&limit=          recent jobs
  GET    /jobs/{id}                   state, progress, error, result
  POST   /jobs/{id}/cancel            cancel
  GET    /jobs/{id}/result            result + file paths and URLs (409 until done)
  GET    /jobs/{id}/files/{name}      the bytes of one output file
  DELETE /jobs/{id}                   forget a finished job (protocol `close`)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import mimetypes
import os
import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bridge import protocol
from bridge.client import EngineClient
from bridge.discovery import Discovery, read_discovery
from bridge.errors import (
    GatewayBusy,
    InvalidRequest,
    JobStateError,
    MalformedMessage,
    MessageTooLarge,
    MethodNotAllowed,
    RouteNotFound,
    Unauthorized,
    UnsupportedMediaType,
    VMBError,
    http_status,
    quote,
)

API_VERSION = 1
MAX_REQUEST_BYTES = 4 << 20  # an HTTP body; larger inline OTIO must be sent as a file path
INLINE_OTIO_MAX_BYTES = 256 << 10  # above this, inline OTIO is spooled to a file for the job
MAX_CONCURRENT_REQUESTS = 32
FILE_CHUNK = 1 << 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_JOB = r"(?P<job_id>[A-Za-z0-9_-]{1,64})"
# (method, path regex, handler name); unknown paths -> 404, known path + other method -> 405
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (m, re.compile(f"^/v{API_VERSION}{p}$"), h)
    for m, p, h in (
        ("GET", "/health", "health"),
        ("GET", "/capabilities", "capabilities"),
        ("GET", "/jobs", "list_jobs"),
        ("POST", "/jobs", "submit"),
        ("POST", "/cue", "submit_cue"),
        ("POST", "/soundtrack", "submit_soundtrack"),
        ("POST", "/conform", "submit_conform"),
        ("GET", f"/jobs/{_JOB}", "job"),
        ("DELETE", f"/jobs/{_JOB}", "close"),
        ("POST", f"/jobs/{_JOB}/cancel", "cancel"),
        ("GET", f"/jobs/{_JOB}/result", "result"),
        ("GET", f"/jobs/{_JOB}/files/(?P<name>[A-Za-z0-9_.-]{{1,64}})", "file"),
    )
)


class Gateway:
    """The HTTP server and its thread; relays to the daemon of `home`."""

    def __init__(
        self,
        home: Path,
        knobs: dict[str, Any],
        discovery: Discovery | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        outputs_dir: Path | None = None,
        engine_timeout_s: float = 5.0,
    ) -> None:
        if not _is_loopback(host):
            raise InvalidRequest(
                f"the host gateway listens on loopback only, not {host!r} "
                "(reach a remote engine through an SSH tunnel)"
            )
        self.home = Path(home)
        self.knobs = knobs
        self._discovery = discovery  # None: read the discovery file for every request
        self.host = host
        self.port = port
        self.outputs_dir = Path(outputs_dir or self.home / "outputs")
        self.engine_timeout_s = engine_timeout_s
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        host, port = self._server.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Bind and serve in a daemon thread; return the URL to publish."""
        self._server = _Server((self.host, self.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.name = "vmb-gateway"
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    # -- engine access ---------------------------------------------------------------------
    def discovery(self) -> Discovery:
        return self._discovery or read_discovery(self.home)

    def client(self) -> EngineClient:
        """A fresh DEALER per request: zmq sockets are not thread-safe, requests are threads."""
        return EngineClient(
            self.discovery(), home=self.home, timeout_s=self.engine_timeout_s, retries=1
        )

    def check_token(self, header: str | None) -> None:
        scheme, _, presented = (header or "").partition(" ")
        expected = self.discovery().token
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected.encode()
        ):
            raise Unauthorized(
                "missing or wrong token: send 'Authorization: Bearer <token>' with the token "
                "from the engine's discovery file"
            )

    def output_file(self, job_id: str, name: str, result: dict[str, Any]) -> Path:
        """The path of a named output, only if it lies in the engine's outputs folder."""
        files = result.get("files") or {}
        if name not in files:
            raise RouteNotFound(
                f"job {job_id} has no file {quote(name)}; "
                f"files: {', '.join(sorted(files)) or 'none'}"
            )
        path = Path(files[name]).resolve()
        root = self.outputs_dir.resolve()
        if root not in path.parents or not path.is_file():
            raise RouteNotFound(f"file {quote(name)} of job {job_id} is not available")
        return path

    def spool_otio(self, text: str) -> Path:
        """Keep large inline OTIO out of protocol messages (1 MiB body limit): write a file."""
        data = text.encode("utf-8")
        folder = self.home / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.otio"
        if not path.exists():
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a fixed port in use must fail, not share

    def __init__(self, addr: tuple[str, int], handler: type, gateway: Gateway) -> None:
        self.gateway = gateway
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT_REQUESTS)
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)


# what a body may carry besides kind and params (seed, idempotency_key): the optional fields
# of the protocol's submit command, read from its one schema table
JOB_FIELDS: tuple[str, ...] = tuple(
    name for name, spec in protocol.COMMANDS["submit"].items() if not spec.required
)


def _job_fields(kind: Any, params: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The submit command this body becomes, checked by the protocol's own validator (the
    daemon's schema) before anything reads it; returns the fields besides kind and params.
    Missing params stay missing (refused as on ZeroMQ); null optional fields are absent."""
    fields = {k: body[k] for k in JOB_FIELDS if body.get(k) is not None}
    submit = {"kind": kind, **({} if params is None else {"params": params}), **fields}
    protocol.validate_fields("submit", submit)
    return fields


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = f"vmb-gateway/{API_VERSION}"
    timeout = 30  # a stalled client cannot hold a thread forever

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Quiet: the daemon's log is for the engine; requests are not logged."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, allow_nan=False, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, exc: VMBError) -> None:
        self._send_json(http_status(exc.code), {"error": exc.to_wire()})

    def _read_body(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise InvalidRequest("send the body with a Content-Length (no chunked encoding)")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise InvalidRequest("bad Content-Length") from None
        if length < 0:
            self.close_connection = True
            raise InvalidRequest("bad Content-Length")
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True  # the body stays unread: this connection is done
            raise MessageTooLarge(
                f"request body is {length} bytes; the limit is {MAX_REQUEST_BYTES} "
                "(send large timelines as a file path)"
            )
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        raw = self.rfile.read(length) if length else b""
        self._body_read = True
        if ctype.lower() != "application/json":
            raise UnsupportedMediaType(
                f"request bodies must be application/json, not {quote(ctype)}"
            )
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedMessage(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise MalformedMessage("the request body must be a JSON object")
        return body

    def _dispatch(self, method: str) -> None:
        gw = self.server.gateway
        self._body_read = False
        if not self.server.slots.acquire(blocking=False):
            self.close_connection = True
            self._send_error(GatewayBusy(f"more than {MAX_CONCURRENT_REQUESTS} requests at once"))
            return
        try:
            if not _is_loopback(self.client_address[0]):
                raise Unauthorized("the gateway serves loopback clients only")
            gw.check_token(self.headers.get("Authorization"))
            url = urlsplit(self.path)
            handler, args = self._route(method, url.path)
            if method in ("POST", "PUT", "PATCH"):
                args["body"] = self._read_body()
            elif self.headers.get("Content-Length", "0") != "0":
                self.close_connection = True  # a body on a GET: not read, so end the connection
            args["query"] = parse_qs(url.query)
            getattr(self, f"_h_{handler}")(gw, **args)
        except VMBError as exc:
            if not self._body_read and self.headers.get("Content-Length", "0") != "0":
                self.close_connection = True  # its body was not read: the stream is out of step
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a request must never take the gateway down
            self.close_connection = True
            with contextlib.suppress(Exception):
                self._send_error(VMBError(f"internal gateway error: {type(exc).__name__}: {exc}"))
        finally:
            self.server.slots.release()

    def _route(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        allowed = []
        for m, pattern, handler in ROUTES:
            match = pattern.match(path)
            if match:
                if m == method:
                    return handler, dict(match.groupdict())
                allowed.append(m)
        if allowed:
            raise MethodNotAllowed(f"{quote(path)} takes {', '.join(sorted(set(allowed)))}")
        raise RouteNotFound(f"no route {method} {quote(path)} (routes live under /v{API_VERSION}/)")

    # -- routes ----------------------------------------------------------------------------
    def _h_health(self, gw: Gateway, query: dict) -> None:
        with gw.client() as c:
            c.ping()
            disc = gw.discovery()
            self._send_json(
                200,
                {
                    "ok": True,
                    "api": API_VERSION,
                    "engine": {"version": disc.version, "boot_id": c.boot_id, "pid": disc.pid},
                },
            )

    def _h_capabilities(self, gw: Gateway, query: dict) -> None:
        with gw.client() as c:
            hello = c.hello()
        caps = hello.get("capabilities") or {}
        self._send_json(
            200,
            {
                "api": API_VERSION,
                "proto": hello.get("proto"),
                "server_version": hello.get("server_version"),
                "kinds": caps.get("kinds", {}),
                "limits": {**caps.get("limits", {}), "max_request_bytes": MAX_REQUEST_BYTES},
                "knobs": gw.knobs,
            },
        )

    def _submit(self, gw: Gateway, kind: str, params: dict[str, Any], fields: dict) -> None:
        with gw.client() as c:
            acc = c.submit(kind, params, **fields)
        self._send_json(
            202,
            {
                "job_id": acc["job_id"],
                "kind": kind,
                "state": acc.get("state"),
                "seed": acc.get("seed"),
                "seq": acc.get("seq"),
                "duplicate": acc.get("duplicate", False),
            },
        )

    def _h_submit(self, gw: Gateway, body: dict, query: dict) -> None:
        kind, params = body.get("kind"), body.get("params")
        fields = _job_fields(kind, params, body)
        self._submit(gw, kind, params, fields)

    @staticmethod
    def _params(kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A route whose body is the params (+ seed, idempotency_key), checked as they will be
        relayed ("auto" knobs are the engine's to drop, on every path: engine.score.cue_spec)."""
        params = {k: v for k, v in body.items() if k not in JOB_FIELDS}
        fields = _job_fields(kind, params, body)
        if params.get("knobs") is not None and not isinstance(params["knobs"], dict):
            raise InvalidRequest("'knobs' must be a JSON object")
        return params, fields

    def _h_submit_cue(self, gw: Gateway, body: dict, query: dict) -> None:
        self._submit(gw, "cue", *self._params("cue", body))

    def _h_submit_soundtrack(self, gw: Gateway, body: dict, query: dict) -> None:
        self._submit_timeline(gw, "soundtrack", body)

    def _h_submit_conform(self, gw: Gateway, body: dict, query: dict) -> None:
        self._submit_timeline(gw, "conform", body)

    def _submit_timeline(self, gw: Gateway, kind: str, body: dict) -> None:
        """A kind that reads a timeline: a large inline OTIO goes to the job as a file."""
        params, fields = self._params(kind, body)
        inline = params.get("otio_json")
        if inline is not None and not isinstance(inline, str):
            raise InvalidRequest("'otio_json' must be the OTIO document as a JSON string")
        if inline is not None and len(inline.encode("utf-8")) > INLINE_OTIO_MAX_BYTES:
            if params.get("timeline"):
                raise InvalidRequest("send either 'timeline' (a path) or 'otio_json', not both")
            params.pop("otio_json")
            params["timeline"] = str(gw.spool_otio(inline))
        self._submit(gw, kind, params, fields)

    def _h_list_jobs(self, gw: Gateway, query: dict) -> None:
        state = (query.get("state") or [None])[0]
        try:
            limit = int((query.get("limit") or ["100"])[0])
        except ValueError:
            raise InvalidRequest("'limit' must be an integer") from None
        protocol.validate_fields("list", {"limit": limit, **({"state": state} if state else {})})
        with gw.client() as c:
            jobs = c.list_jobs(state=state, limit=limit)
        self._send_json(200, {"jobs": [_public_job(j) for j in jobs]})

    def _h_job(self, gw: Gateway, job_id: str, query: dict) -> None:
        with gw.client() as c:
            job = c.attach(job_id)
        self._send_json(200, {"job": _public_job(job)})

    def _h_cancel(self, gw: Gateway, job_id: str, body: dict, query: dict) -> None:
        with gw.client() as c:
            job = c.cancel(job_id)
        self._send_json(200, {"job": _public_job(job)})

    def _h_close(self, gw: Gateway, job_id: str, query: dict) -> None:
        with gw.client() as c:
            c.close_job(job_id)
        self._send_json(200, {"closed": job_id})

    def _h_result(self, gw: Gateway, job_id: str, query: dict) -> None:
        with gw.client() as c:
            job = c.result(job_id)
        state = job.get("state")
        if state != "done":
            err = job.get("error") or {}
            if state in ("failed", "cancelled") and err.get("code"):
                raise JobStateError(f"job {job_id} {state}: [{err['code']}] {err.get('message')}")
            raise JobStateError(f"job {job_id} is {state}; its result is not ready")
        result = job.get("result") or {}
        files = {}
        for name, path in (result.get("files") or {}).items():
            p = Path(path)
            files[name] = {
                "path": str(p),
                "url": f"/v{API_VERSION}/jobs/{job_id}/files/{name}",
                "bytes": p.stat().st_size if p.is_file() else None,
            }
        self._send_json(200, {"job_id": job_id, "state": state, "result": result, "files": files})

    def _h_file(self, gw: Gateway, job_id: str, name: str, query: dict) -> None:
        with gw.client() as c:
            job = c.result(job_id)
        if job.get("state") != "done":
            raise JobStateError(f"job {job_id} is {job.get('state')}; its files are not ready")
        path = gw.output_file(job_id, name, job.get("result") or {})
        ctype = _content_type(path)
        size = path.stat().st_size
        with path.open("rb") as fh:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            _copy(fh.read, self.wfile.write)


def _copy(read: Callable[[int], bytes], write: Callable[[bytes], Any]) -> None:
    while True:
        chunk = read(FILE_CHUNK)
        if not chunk:
            return
        write(chunk)


def _content_type(path: Path) -> str:
    by_suffix = {
        ".wav": "audio/wav",
        ".mid": "audio/midi",
        ".midi": "audio/midi",
        ".otio": "application/json",
        ".json": "application/json",
        ".csv": "text/csv",
    }
    return (
        by_suffix.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def _public_job(job: dict[str, Any]) -> dict[str, Any]:
    """A job snapshot for polling: without its params (they may hold a whole timeline)."""
    return {k: v for k, v in job.items() if k != "params"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")
