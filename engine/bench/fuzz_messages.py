"""Hostile messages for `vmb bench fuzz`: ZeroMQ frame lists and HTTP requests, by class.

Each generator takes a seeded `random.Random` and the fuzz context (token, known job ids) and
returns one message. The classes are the ones an outside fuzz reported (binary params, huge
integers, unbounded strings) plus generated ones: random frames, bad tags, random msgpack,
valid-looking requests with random fields, bad array headers, mutated bodies, requests
on real job ids, and the classes of the review of issue 20: lone surrogates (JSON \\ud800
escapes), near-limit params followed by `list`/`result`, and deeply nested OTIO JSON (inline
and in timeline files).
"""

from __future__ import annotations

import json
import random
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bridge import protocol

KINDS = (
    "noop", "selfcheck", "cue", "describe", "soundtrack", "adapt", "conform", "format_disk", ""
)  # fmt: skip
PARAM_KEYS = (
    "media", "text", "duration_s", "start_s", "end_s", "knobs", "backend", "name",
    "variations", "cut_times_s", "continue_from", "duck", "steps", "step_s", "timeline",
    "otio_json", "selection", "per", "min_length_s", "max_length_s", "track", "clip",
    "position_s", "x",
)  # fmt: skip
KNOB_KEYS = ("mood", "genre", "tempo", "energy", "instruments", "bpm")
HUGE_INTS = (2**64 - 1, 2**63, 2**63 - 1, -(2**63), 2**32, 2**53 + 1, -1, 2**31)
STRINGS = (
    "", " ", "auto", "draft", "full", "calm", "/etc/passwd", "~root/x", "../../x", "a\x00b",
    "x" * 5000, "\u202e\ud7ff", "\U0001f3b5", "120", "{}", "[1,2]", "queued", "noop",
)  # fmt: skip


NEAR_LIMIT_SUBMITS = 40  # big-params submits per run: each is up to 1 MiB on the wire
DEEP = 100_000  # far past OTIO's C++ reader's stack (about 50,000 levels)


@dataclass
class FuzzContext:
    token: str
    job_ids: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # hostile timeline files by name
    big_submits: int = 0

    def job_id(self, rng: random.Random) -> str:
        if self.job_ids and rng.random() < 0.7:
            return rng.choice(self.job_ids)
        return uuid.UUID(int=rng.getrandbits(128)).hex

    def note_job(self, job_id: Any) -> None:
        if isinstance(job_id, str) and len(self.job_ids) < 2000:
            self.job_ids.append(job_id)


def hostile_files(folder: Any) -> dict[str, str]:
    """Timeline files a daemon must refuse without reading them into OTIO's parser."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "deep_list.otio": "[" * DEEP,
        "deep_map.otio": '{"a":' * DEEP,
        "brackets_in_strings.otio": '{"x": "' + "[" * DEEP + '"}',
        "unterminated.otio": '"' + '\\"' * DEEP,
    }
    out = {}
    for name, text in texts.items():
        (folder / name).write_text(text)
        out[name] = str(folder / name)
    bundle = folder / "deep.otioz"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("content.otio", "[" * DEEP)
    out["deep.otioz"] = str(bundle)
    return out


def deep_json(rng: random.Random) -> str:
    """OTIO-ish JSON text nested far too deeply (or brackets hidden in strings: legal)."""
    n = rng.choice((200, 300, 5_000, DEEP))  # 200: under the limit, so OTIO reads it
    return rng.choice(
        (
            "[" * n,
            '{"a":' * n + "1" + "}" * n,
            '{"OTIO_SCHEMA": "Timeline.1", "x": ' + "[" * n + "]" * n + "}",
            '{"x": "' + "[" * n + '"}',
        )
    )


def scalar(rng: random.Random, binary: bool = True) -> Any:
    pick = rng.randrange(9 if binary else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.randint(-1000, 100_000)
    if pick == 3:
        return rng.choice(HUGE_INTS)
    if pick == 4:
        return rng.choice((0.5, -0.0, 1e308, -1e-308, 3.0, 12.5, 1e9))
    if pick in (5, 6):
        return rng.choice(STRINGS)
    if pick == 7:
        return "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(12)))
    return rng.randbytes(rng.randrange(8))


def value(rng: random.Random, depth: int = 0, binary: bool = True) -> Any:
    """A random msgpack/JSON value: mostly scalars, some lists and maps."""
    roll = rng.random()
    if depth > 3 or roll < 0.6:
        return scalar(rng, binary)
    if roll < 0.8:
        return [value(rng, depth + 1, binary) for _ in range(rng.randrange(4))]
    keys = PARAM_KEYS + KNOB_KEYS
    return {rng.choice(keys): value(rng, depth + 1, binary) for _ in range(rng.randrange(4))}


def plausible_params(rng: random.Random, binary: bool = False) -> dict[str, Any]:
    """Params made of real parameter names with random (often well-typed) values."""
    params: dict[str, Any] = {}
    for key in rng.sample(PARAM_KEYS, rng.randrange(1, 5)):
        if key == "knobs":
            params[key] = {k: value(rng, 2, binary) for k in rng.sample(KNOB_KEYS, 2)}
        elif key in ("text", "name", "backend", "media", "timeline", "otio_json"):
            params[key] = rng.choice(STRINGS) if rng.random() < 0.7 else scalar(rng, binary)
        elif key in ("duration_s", "start_s", "end_s", "step_s", "steps", "variations"):
            params[key] = rng.choice((0, 1, 2, 0.01, -3, 1e6, 2**64 - 1, "3", None))
        else:
            params[key] = value(rng, 1, binary)
    return params


def _plant(rng: random.Random, params: dict[str, Any], leaf: Any) -> dict[str, Any]:
    """Put `leaf` somewhere in params: top level, in a nested map or inside a list."""
    spot = rng.randrange(3)
    key = rng.choice(PARAM_KEYS)
    if spot == 0:
        params[key] = leaf
    elif spot == 1:
        params["knobs"] = {rng.choice(KNOB_KEYS): leaf}
    else:
        params[key] = [1, "a", {"deep": [leaf]}]
    return params


# -- ZeroMQ messages -----------------------------------------------------------------------
def _frames(body: Any) -> list[bytes]:
    return [protocol.TAG, msgpack.packb(body, use_bin_type=True)]


def _req(ctx: FuzzContext, rng: random.Random, command: str, **fields: Any) -> dict[str, Any]:
    return {"type": command, "token": ctx.token, "rid": rng.randrange(1 << 30), **fields}


def z_binary_params(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    leaf = rng.choice((b"abc", b"/etc/passwd", b"", rng.randbytes(16), bytearray(b"x")))
    params = _plant(rng, plausible_params(rng), leaf)
    return _frames(_req(ctx, rng, "submit", kind=rng.choice(KINDS), params=params))


def z_huge_ints(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    big = rng.choice(HUGE_INTS)
    case = rng.randrange(5)
    if case == 0:
        return _frames(_req(ctx, rng, "submit", kind="noop", params={}, seed=big))
    if case == 1:
        params = _plant(rng, plausible_params(rng), big)
        return _frames(_req(ctx, rng, "submit", kind=rng.choice(KINDS), params=params))
    if case == 2:
        return _frames(_req(ctx, rng, "attach", job_id=ctx.job_id(rng), last_seq=big))
    if case == 3:
        return _frames(_req(ctx, rng, "list", limit=big, finished_before=big))
    return _frames({**_req(ctx, rng, "ping"), "rid": big})


def z_long_strings(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    long = "k" * rng.choice((201, 10_000, 100_000))
    case = rng.randrange(8)
    if case == 0:
        return _frames(_req(ctx, rng, "submit", kind="noop", params={}, idempotency_key=long))
    if case == 1:
        return _frames(
            _req(ctx, rng, rng.choice(("attach", "cancel", "result", "close")), job_id=long)
        )
    if case == 2:
        return _frames(_req(ctx, rng, "submit", kind=long, params={}))
    if case == 3:
        return _frames({**_req(ctx, rng, "ping"), "token": long})
    if case == 4:
        return _frames({**_req(ctx, rng, "ping"), "rid": long})
    if case == 5:
        return _frames({**_req(ctx, rng, "ping"), "type": long})
    if case == 6:
        return _frames(_req(ctx, rng, "list", state=long))
    return _frames(_req(ctx, rng, "hello", proto=[1, 0], client=long))


def z_random_frames(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    frames = [rng.randbytes(rng.randrange(64)) for _ in range(rng.randrange(1, 10))]
    if rng.random() < 0.5:
        frames[0] = protocol.TAG
    return frames


def z_bad_tags(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    tag = rng.choice((b"VMB/0", b"VMB/2", b"VMB/", b"vmb/1", b"", b"VMB/1 ", rng.randbytes(5)))
    return [tag, _frames(_req(ctx, rng, "ping"))[1]]


def z_random_msgpack(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    body: Any = value(rng)
    if rng.random() < 0.5:
        body = {"type": rng.choice([*protocol.COMMANDS, "x"]), "token": ctx.token, "v": body}
    if rng.random() < 0.1:
        body = {1: body} if rng.random() < 0.5 else {"e": msgpack.ExtType(5, b"xx")}
    return _frames(body)


def _right_value(rng: random.Random, ctx: FuzzContext, name: str, kind: str) -> Any:
    """A value of the field's own type (possibly still out of range)."""
    if kind == "str":
        return ctx.job_id(rng) if name == "job_id" else rng.choice(STRINGS)
    if kind == "int":
        return rng.randint(0, 5)
    if kind == "num":
        return rng.random() * 1e9
    if kind == "ints":
        return [1, 0]
    return plausible_params(rng)


def z_valid_looking(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    """A known command whose fields get random values (right type about half the time)."""
    command = rng.choice(list(protocol.COMMANDS))
    body = _req(ctx, rng, command)
    for name, spec in protocol.COMMANDS[command].items():
        if rng.random() < 0.2:
            continue  # a missing field
        body[name] = _right_value(rng, ctx, name, spec.kind) if rng.random() < 0.5 else value(rng)
    if command == "submit" and rng.random() < 0.5:
        body["kind"] = rng.choice(KINDS)
    if rng.random() < 0.05:
        body["token"] = rng.choice(("", "wrong", None, 5))
    return _frames(body)


def z_bad_arrays(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    metas = [
        {"dtype": rng.choice(("<f4", "|O", "<f16", "", 5)), "shape": value(rng)}
        if rng.random() < 0.7
        else value(rng)
        for _ in range(rng.randrange(4))
    ]
    body = {**_req(ctx, rng, "ping"), "arrays": metas if rng.random() < 0.9 else value(rng)}
    extra = [rng.randbytes(rng.choice((0, 3, 4, 16))) for _ in range(rng.randrange(5))]
    return [*_frames(body), *extra]


def z_mutated(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    body = bytearray(_frames(_req(ctx, rng, "submit", kind="noop", params={"a": [1, 2]}))[1])
    if rng.random() < 0.5:
        del body[rng.randrange(1, len(body)) :]
    for _ in range(rng.randrange(1, 4)):
        body[rng.randrange(len(body))] = rng.randrange(256)
    if rng.random() < 0.2:
        body = bytearray(b"\xdd\xff\xff\xff\xff" if rng.random() < 0.5 else b"\x91" * 5000)
    return [protocol.TAG, bytes(body)]


def z_job_ops(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    """Ordinary requests: accepted submits and operations on real job ids."""
    if rng.random() < 0.4:
        kind = rng.choice(("noop", "selfcheck"))
        return _frames(_req(ctx, rng, "submit", kind=kind, params={}, seed=rng.randrange(1000)))
    command = rng.choice(("attach", "cancel", "result", "close"))
    return _frames(_req(ctx, rng, command, job_id=ctx.job_id(rng)))


def z_surrogates(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    """A msgpack str holding an encoded lone surrogate (msgpack itself cannot make one)."""
    where = rng.randrange(4)
    params: dict[str, Any] = {"x": "SURRX"} if where == 0 else {"SURRX": 1}
    body = _req(ctx, rng, "submit", kind="noop", params=params)
    if where == 2:
        body = _req(ctx, rng, "submit", kind="SURRX", params={})
    elif where == 3:
        body = _req(ctx, rng, "submit", kind="noop", params={}, idempotency_key="SURRX")
    packed = msgpack.packb(body, use_bin_type=True)
    return [protocol.TAG, packed.replace(b"\xa5SURRX", b"\xa3\xed\xa0\x80")]


def z_near_limit(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    """Params around the per-job limit (few: each is big), then `list` and `result` that
    must still fit in one reply."""
    if ctx.big_submits < NEAR_LIMIT_SUBMITS and rng.random() < 0.3:
        ctx.big_submits += 1
        size = rng.choice(
            (protocol.PARAMS_MAX_BYTES - 64, protocol.PARAMS_MAX_BYTES + 64, 600_000,
             protocol.MAX_BODY_BYTES - 400)
        )  # fmt: skip
        body = _req(ctx, rng, "submit", kind="noop", params={"blob": "p" * size})
        body["idempotency_key"] = f"near-limit-{size}"  # one stored job per size at most
        return _frames(body)
    if rng.random() < 0.5:
        return _frames(_req(ctx, rng, "list", limit=rng.choice((10, 100, 1000))))
    return _frames(_req(ctx, rng, rng.choice(("result", "attach")), job_id=ctx.job_id(rng)))


def z_deep_nesting(rng: random.Random, ctx: FuzzContext) -> list[bytes]:
    """Soundtracks whose OTIO nests past what OTIO's C++ reader survives."""
    if ctx.files and rng.random() < 0.4:
        params: dict[str, Any] = {"timeline": rng.choice(list(ctx.files.values()))}
    else:
        params = {"otio_json": deep_json(rng)}
    return _frames(_req(ctx, rng, "submit", kind="soundtrack", params=params))


ZMQ_CLASSES: dict[str, tuple[float, Callable[[random.Random, FuzzContext], list[bytes]]]] = {
    "binary_params": (1, z_binary_params),
    "huge_ints": (1, z_huge_ints),
    "long_strings": (0.5, z_long_strings),
    "random_frames": (2, z_random_frames),
    "bad_tags": (1, z_bad_tags),
    "random_msgpack": (2, z_random_msgpack),
    "valid_looking": (3, z_valid_looking),
    "bad_arrays": (1, z_bad_arrays),
    "mutated": (1, z_mutated),
    "job_ops": (1, z_job_ops),
    "surrogates": (0.5, z_surrogates),
    "near_limit": (0.3, z_near_limit),
    "deep_nesting": (0.3, z_deep_nesting),
}


def pick(rng: random.Random, classes: dict[str, tuple[float, Any]]) -> str:
    names = list(classes)
    return rng.choices(names, weights=[classes[n][0] for n in names])[0]


# -- HTTP requests (method, path, headers, body) ----------------------------------------------
@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    auth: bool = True


def _post(path: str, body: Any) -> HttpRequest:
    data = json.dumps(body, allow_nan=True).encode()
    return HttpRequest("POST", path, data, (("Content-Type", "application/json"),))


def h_big_ints(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    big = rng.choice(HUGE_INTS)
    if rng.random() < 0.5:
        return _post("/v1/jobs", {"kind": "noop", "params": {}, "seed": big})
    route = rng.choice(("/v1/jobs", "/v1/cue", "/v1/soundtrack"))
    params = _plant(rng, plausible_params(rng), big)
    return _post(route, {"kind": "noop", "params": params} if route == "/v1/jobs" else params)


def h_long_strings(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    long = "k" * rng.choice((201, 10_000, 100_000))
    case = rng.randrange(4)
    if case == 0:
        return _post("/v1/jobs", {"kind": "noop", "params": {}, "idempotency_key": long})
    if case == 1:
        return HttpRequest("GET", f"/v1/jobs/{long[:10_000]}")
    if case == 2:
        return _post("/v1/jobs", {"kind": long, "params": {}})
    return _post("/v1/cue", {"text": long, "duration_s": 5, "idempotency_key": long[:300]})


def h_random_json(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    route = rng.choice(("/v1/jobs", "/v1/cue", "/v1/soundtrack"))
    if rng.random() < 0.5:
        body: Any = plausible_params(rng)
        if route == "/v1/jobs":
            body = {"kind": rng.choice(KINDS), "params": body}
    else:
        body = value(rng, binary=False)
    return _post(route, body)


def h_bad_bodies(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    body = rng.choice(
        (
            rng.randbytes(rng.randrange(1, 64)),
            b'{"kind": "noop", "params": {',
            b"[" * 100_000,
            b'{"kind": "noop", "params": {"x": 1e400}}',
            b'{"kind": "noop", "params": {"x": NaN}}',
            b'{"kind": "noop", "params": {"x": ' + b"9" * 5000 + b"}}",
            b'{"kind": "noop", "params": {"x": "\xff\xfe"}}',
            b'"just a string"',
        )
    )
    ctype = rng.choice(("application/json", "text/plain", "application/json; charset=utf-8"))
    route = rng.choice(("/v1/jobs", "/v1/cue", "/v1/soundtrack"))
    return HttpRequest("POST", route, body, (("Content-Type", ctype),))


def h_routes(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    method = rng.choice(("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"))
    path = rng.choice(
        (
            "/", "/v1", "/v2/jobs", "/v1/jobs/../../etc/passwd", "/v1/jobs/%00",
            f"/v1/jobs?limit={rng.choice(('0', '-1', 'x', '9' * 30, '5'))}",
            f"/v1/jobs?state={rng.choice(('queued', 'nope', 'x' * 300))}",
            "/v1/capabilities", "/v1/health", "/v1/jobs/" + "%41" * 40,
        )
    )  # fmt: skip
    return HttpRequest(method, path, auth=rng.random() < 0.9)


def h_job_ops(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    if rng.random() < 0.3:
        return _post("/v1/jobs", {"kind": "noop", "params": {}, "seed": rng.randrange(1000)})
    job = ctx.job_id(rng)
    method, path = rng.choice(
        (
            ("GET", f"/v1/jobs/{job}"),
            ("POST", f"/v1/jobs/{job}/cancel"),
            ("GET", f"/v1/jobs/{job}/result"),
            ("GET", f"/v1/jobs/{job}/files/audio"),
            ("DELETE", f"/v1/jobs/{job}"),
        )
    )
    return HttpRequest(method, path)


SURROGATE = "\ud800"


def h_surrogates(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    """JSON \\ud800 / \\udfff escapes (valid JSON, invalid Unicode) in every kind of field."""
    bad = rng.choice((SURROGATE, "\udfff", "calm " + SURROGATE, SURROGATE + "x" * 50))
    case = rng.randrange(7)
    if case == 0:
        return _post("/v1/jobs", {"kind": "noop", "params": {"x": bad}})
    if case == 1:
        return _post("/v1/jobs", {"kind": "noop", "params": {bad: 1}})
    if case == 2:
        return _post("/v1/jobs", {"kind": "noop", "params": {}, "idempotency_key": bad})
    if case == 3:
        return _post("/v1/jobs", {"kind": bad, "params": {}})
    if case == 4:
        return _post("/v1/cue", {"text": bad, "duration_s": 5, "knobs": {"mood": bad}})
    if case == 5:
        return _post("/v1/soundtrack", {"otio_json": bad})
    raw = b'{"kind": "noop", "params": {"x": "\\ud800\\udc00\\udfff"}}'  # a pair, then a lone one
    return HttpRequest("POST", "/v1/jobs", raw, (("Content-Type", "application/json"),))


def h_deep_nesting(rng: random.Random, ctx: FuzzContext) -> HttpRequest:
    """Deep OTIO inline (small: relayed; over 256 KiB: spooled to a file) or as a file."""
    if ctx.files and rng.random() < 0.3:
        return _post("/v1/soundtrack", {"timeline": rng.choice(list(ctx.files.values()))})
    text = deep_json(rng)
    if rng.random() < 0.3:
        text += " " * (300 << 10)  # past the gateway's inline limit: spooled to a file
    return _post("/v1/soundtrack", {"otio_json": text})


HTTP_CLASSES: dict[str, tuple[float, Callable[[random.Random, FuzzContext], HttpRequest]]] = {
    "big_ints": (1, h_big_ints),
    "long_strings": (0.5, h_long_strings),
    "random_json": (3, h_random_json),
    "bad_bodies": (1, h_bad_bodies),
    "routes": (1, h_routes),
    "job_ops": (1, h_job_ops),
    "surrogates": (0.7, h_surrogates),
    "deep_nesting": (0.4, h_deep_nesting),
}
