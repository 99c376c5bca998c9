"""One exception tree for the whole product; each class carries its protocol error code
and the HTTP status the host gateway answers with.

The engine raises these, the protocol carries `code` + `message`, and the client raises the
same class again on its side (from WIRE_ERRORS, code -> class), so a caller catches one type
whatever process failed. Every error that crosses the wire is defined here: a module
elsewhere may only refine one of these classes (EmptyPartition refines InvalidRequest) and
keeps its code, since the peer rebuilds the class of the table.
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 1000  # a message sent to a peer; quoted input is shorter still (quote())
QUOTE_CHARS = 40  # error messages quote at most this much of what a peer sent
PATH_QUOTE_CHARS = 200  # ... except a file path, quoted up to this (docs/protocol-limits.md)


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """A short repr of something a peer sent, for error messages: at most `limit` chars of it."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str | bytes):
        return f"{text[:limit]}... ({len(value)} {'chars' if isinstance(value, str) else 'bytes'})"
    return f"{text[:limit]}..."


def quote_names(names: object, most: int = 3) -> str:
    """Names a peer sent (unknown parameters, knobs), sorted, each quoted, at most `most`."""
    items = sorted(str(n) for n in names)  # type: ignore[attr-defined]
    shown = ", ".join(quote(n) for n in items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


class VMBError(Exception):
    """Base of every error the product reports to a user or a peer."""

    code = "internal"
    http_status = 500  # what the host gateway answers with (bridge/gateway.py)

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        self.details = details

    def to_wire(self) -> dict[str, object]:
        return {"code": self.code, "message": clip_message(self.message)}


class ConfigError(VMBError):
    """The settings are invalid."""

    code = "config"
    http_status = 400


class ProtocolError(VMBError):
    """A message broke the protocol."""

    code = "protocol"
    http_status = 400


class MalformedMessage(ProtocolError):
    """The message could not be decoded."""

    code = "malformed"
    http_status = 400


class VersionMismatch(ProtocolError):
    """The peer speaks another major protocol version."""

    code = "version"
    http_status = 400


class UnknownCommand(ProtocolError):
    """The command type is not known."""

    code = "unknown_command"
    http_status = 400


class MessageTooLarge(ProtocolError):
    """A frame or the frame count exceeds the limits."""

    code = "too_large"
    http_status = 413


class Unauthorized(VMBError):
    """The request did not present the engine's token."""

    code = "unauthorized"
    http_status = 401


class InvalidRequest(VMBError):
    """The request's arguments are invalid."""

    code = "invalid_request"
    http_status = 400


class UnknownJob(VMBError):
    """No job has this id."""

    code = "unknown_job"
    http_status = 404


class UnknownKind(InvalidRequest):
    """No job kind has this name."""

    code = "unknown_kind"
    http_status = 400


class IdempotencyConflict(VMBError):
    """The idempotency key was already used with other parameters."""

    code = "idempotency_conflict"
    http_status = 409


class JobStateError(VMBError):
    """The job is not in a state that allows this."""

    code = "job_state"
    http_status = 409


class EngineUnavailable(VMBError):
    """The engine daemon is not running or does not answer."""

    code = "engine_unavailable"
    http_status = 503


class AlreadyRunning(VMBError):
    """Another engine daemon already runs on this VMB home."""

    code = "already_running"
    http_status = 409


class JobError(VMBError):
    """A job failed while running."""

    code = "job_failed"
    http_status = 500


class JobCancelled(JobError):
    """The job was cancelled."""

    code = "cancelled"
    http_status = 500


class WorkerCrashed(JobError):
    """The worker process died while running the job."""

    code = "worker_crashed"
    http_status = 500


class WorkerLost(JobError):
    """The job was interrupted too many times (daemon or worker deaths)."""

    code = "worker_lost"
    http_status = 500


class OutOfMemory(JobError):
    """The job ran out of memory."""

    code = "out_of_memory"
    http_status = 500


class WeightsError(VMBError):
    """Model weights are missing, incomplete or do not match."""

    code = "weights"
    http_status = 503


class MediaError(VMBError):
    """A media file cannot be read."""

    code = "media"
    http_status = 422


class TimelineError(VMBError):
    """A timeline cannot be read or the selection is invalid."""

    code = "timeline"
    http_status = 422


class NumericalError(JobError):
    """Sampling produced NaN or infinite values."""

    code = "numerical"
    http_status = 500


class MissingDependency(VMBError):
    """A program or data file the engine needs is not installed (the message says how)."""

    code = "missing_dependency"
    http_status = 503


def clip_message(message: str) -> str:
    """The message as sent to a peer: bounded, whatever input a validator chose to echo."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + f"... ({len(message)} chars)"


class LibraryError(VMBError):
    """The music library cannot be used as asked."""

    code = "library"
    http_status = 503  # locked, newer, empty or damaged: the engine cannot serve until fixed


# -- raised by the host gateway (HTTP only) ----------------------------------------------------
class RouteNotFound(VMBError):
    """No such route."""

    code = "not_found"
    http_status = 404


class MethodNotAllowed(VMBError):
    """The route does not take this HTTP method."""

    code = "method_not_allowed"
    http_status = 405


class UnsupportedMediaType(VMBError):
    """Request bodies must be JSON."""

    code = "unsupported_media_type"
    http_status = 415


class GatewayBusy(VMBError):
    """Too many requests at once."""

    code = "busy"
    http_status = 503


def _table(*classes: type[VMBError]) -> dict[str, type[VMBError]]:
    table: dict[str, type[VMBError]] = {}
    for cls in classes:
        if cls.code in table:
            raise RuntimeError(f"error code {cls.code!r} is used by two classes")
        table[cls.code] = cls
    return table


WIRE_ERRORS: dict[str, type[VMBError]] = _table(
    VMBError,
    ConfigError,
    ProtocolError,
    MalformedMessage,
    VersionMismatch,
    UnknownCommand,
    MessageTooLarge,
    Unauthorized,
    InvalidRequest,
    UnknownJob,
    UnknownKind,
    IdempotencyConflict,
    JobStateError,
    EngineUnavailable,
    AlreadyRunning,
    JobError,
    JobCancelled,
    WorkerCrashed,
    WorkerLost,
    OutOfMemory,
    WeightsError,
    MediaError,
    TimelineError,
    NumericalError,
    MissingDependency,
    LibraryError,
    RouteNotFound,
    MethodNotAllowed,
    UnsupportedMediaType,
    GatewayBusy,
)
"""Every error code a peer may send, and the one class it rebuilds as."""


def http_status(code: str) -> int:
    """HTTP status for an error code; an unknown code is a server-side failure (500)."""
    return WIRE_ERRORS.get(code, VMBError).http_status


def error_from_wire(code: str, message: str) -> VMBError:
    """Rebuild the exception a peer reported; unknown codes become a plain VMBError."""
    cls = WIRE_ERRORS.get(code)
    if cls is not None:
        return cls(message)
    err = VMBError(message)
    err.code = code
    return err
