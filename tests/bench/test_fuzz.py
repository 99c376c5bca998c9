"""`vmb bench fuzz` at a small N against a real daemon and gateway; a missed gate exits 1."""

from __future__ import annotations

import json
import random

import msgpack
import pytest

from bridge import protocol
from engine import bench, cli
from engine.bench import fuzz_messages as fm


def test_fuzz_small_run_meets_its_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "fuzz", "--messages", "1500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    zmq_codes, http_codes = out["zmq"]["codes"], out["gateway"]["codes"]
    assert sum(zmq_codes.values()) == 1500 and out["zmq"]["unanswered"] == 0
    assert sum(http_codes.values()) == 150
    assert "internal" not in zmq_codes and "internal" not in http_codes
    # hostile input was refused, typed; ordinary requests were served
    assert zmq_codes["malformed"] > 100 and zmq_codes["invalid_request"] > 100
    assert zmq_codes["ok"] > 10 and http_codes["invalid_request"] > 10
    by_class, http_by_class = out["zmq"]["by_class"], out["gateway"]["by_class"]
    assert set(by_class["binary_params"]) == {"invalid_request"}
    # the review's classes: refused typed, and the daemon lived through them
    assert set(by_class["surrogates"]) == {"malformed"}
    assert set(by_class["deep_nesting"]) == {"timeline"}
    assert set(http_by_class["surrogates"]) == {"invalid_request"}
    assert set(http_by_class["deep_nesting"]) == {"timeline"}
    assert by_class["near_limit"].get("ok", 0) > 0
    after = out["after"]
    assert after["answers"] and after["same_boot"] and after["integrity_check"] == "ok"
    assert after["jobs_stored"] > 0
    assert all(f["ok"] is not False for f in out["figures"])


def test_generators_cover_the_reported_classes() -> None:
    rng = random.Random(3)
    ctx = fm.FuzzContext(token="t")
    bodies = [msgpack.unpackb(fm.z_binary_params(rng, ctx)[1]) for _ in range(50)]
    assert all(b["type"] == "submit" for b in bodies)
    assert any(b"abc" in msgpack.packb(b) for b in bodies)
    seeds = [msgpack.unpackb(fm.z_huge_ints(rng, ctx)[1]).get("seed") for _ in range(100)]
    assert any(s is not None and s > protocol.SEED_MAX for s in seeds)
    for name, (_, make) in fm.ZMQ_CLASSES.items():
        frames = make(rng, ctx)
        assert frames and all(isinstance(f, bytes) for f in frames), name
    assert all(b"\xed\xa0\x80" in fm.z_surrogates(rng, ctx)[1] for _ in range(20))
    sizes = [len(fm.z_near_limit(rng, ctx)[1]) for _ in range(400)]
    assert max(sizes) > protocol.PARAMS_MAX_BYTES and ctx.big_submits == fm.NEAR_LIMIT_SUBMITS
    bodies = [fm.h_surrogates(rng, ctx).body for _ in range(40)]
    assert all(b"\\ud8" in b or b"\\udf" in b for b in bodies)
    deep = [msgpack.unpackb(fm.z_deep_nesting(rng, ctx)[1])["params"] for _ in range(40)]
    assert any(p.get("otio_json", "").count("[") >= fm.DEEP for p in deep)


def test_messages_and_seed_zero_are_taken_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "fuzz", "--messages", "0", "--seed", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["zmq"]["sent"] == 0 and out["gateway"]["sent"] == 0
    assert "seed 0;" in out["notes"][0]


def test_a_missed_target_makes_bench_exit_nonzero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missed(opts: object) -> dict:
        return {"name": "missed", "figures": [bench.figure("internal replies", 3, "", "0", False)]}

    def met(opts: object) -> dict:
        return {"name": "met", "figures": [bench.figure("p99", 4, "ms", "<= 5", True)]}

    funcs = {"missed": missed, "met": met}
    monkeypatch.setattr(bench, "BENCHES", dict.fromkeys(funcs, "unused:unused"))
    monkeypatch.setattr(bench, "load", lambda name: funcs[name])
    assert cli.main(["bench", "missed"]) == 1
    assert "target missed or error in: missed" in capsys.readouterr().err
    assert cli.main(["bench", "met"]) == 0
