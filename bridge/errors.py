"""One exception tree for the whole product; each class carries its protocol error code.

The engine raises these, the protocol carries `code` + `message`, and the client raises the
same class again on its side, so a caller catches one type whatever process failed.
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

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        self.details = details

    def to_wire(self) -> dict[str, object]:
        return {"code": self.code, "message": clip_message(self.message)}


class ConfigError(VMBError):
    """The settings are invalid."""

    code = "config"


class ProtocolError(VMBError):
    """A message broke the protocol."""

    code = "protocol"


class MalformedMessage(ProtocolError):
    """The message could not be decoded."""

    code = "malformed"


class VersionMismatch(ProtocolError):
    """The peer speaks another major protocol version."""

    code = "version"


class UnknownCommand(ProtocolError):
    """The command type is not known."""

    code = "unknown_command"


class MessageTooLarge(ProtocolError):
    """A frame or the frame count exceeds the limits."""

    code = "too_large"


class Unauthorized(VMBError):
    """The request did not present the engine's token."""

    code = "unauthorized"


class InvalidRequest(VMBError):
    """The request's arguments are invalid."""

    code = "invalid_request"


class UnknownJob(VMBError):
    """No job has this id."""

    code = "unknown_job"


class UnknownKind(InvalidRequest):
    """No job kind has this name."""

    code = "unknown_kind"


class IdempotencyConflict(VMBError):
    """The idempotency key was already used with other parameters."""

    code = "idempotency_conflict"


class JobStateError(VMBError):
    """The job is not in a state that allows this."""

    code = "job_state"


class EngineUnavailable(VMBError):
    """The engine daemon is not running or does not answer."""

    code = "engine_unavailable"


class AlreadyRunning(VMBError):
    """Another engine daemon already runs on this VMB home."""

    code = "already_running"


class JobError(VMBError):
    """A job failed while running."""

    code = "job_failed"


class JobCancelled(JobError):
    """The job was cancelled."""

    code = "cancelled"


class WorkerCrashed(JobError):
    """The worker process died while running the job."""

    code = "worker_crashed"


class WorkerLost(JobError):
    """The job was interrupted too many times (daemon or worker deaths)."""

    code = "worker_lost"


class OutOfMemory(JobError):
    """The job ran out of memory."""

    code = "out_of_memory"


class WeightsError(VMBError):
    """Model weights are missing, incomplete or do not match."""

    code = "weights"


class MediaError(VMBError):
    """A media file cannot be read."""

    code = "media"


class TimelineError(VMBError):
    """A timeline cannot be read or the selection is invalid."""

    code = "timeline"


class NumericalError(JobError):
    """Sampling produced NaN or infinite values."""

    code = "numerical"


class MissingDependency(VMBError):
    """A program or data file the engine needs is not installed (the message says how)."""

    code = "missing_dependency"


def clip_message(message: str) -> str:
    """The message as sent to a peer: bounded, whatever input a validator chose to echo."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + f"... ({len(message)} chars)"


def _all_subclasses(cls: type[VMBError]) -> list[type[VMBError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_from_wire(code: str, message: str) -> VMBError:
    """Rebuild the exception a peer reported; unknown codes become a plain VMBError."""
    for cls in _all_subclasses(VMBError):
        if cls.code == code:
            return cls(message)
    err = VMBError(message)
    err.code = code
    return err
