"""vmb_client, the plugins' stdlib side: engine discovery, the gateway, knobs, OTIO JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import opentimelineio as otio
import pytest
import vmb_client as vc

from bridge import discovery


@pytest.mark.parametrize(
    ("platform", "env"),
    [
        ("linux", {}),
        ("linux", {"XDG_DATA_HOME": "/data/xdg"}),
        ("darwin", {}),
        ("linux", {"VMB_HOME": "~/elsewhere"}),
    ],
)
def test_default_home_matches_the_bridge(platform, env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("VMB_HOME", "XDG_DATA_HOME", "APPDATA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert vc.default_home() == str(discovery.default_home())


def test_default_home_on_windows(monkeypatch) -> None:
    """Same rule as bridge.discovery (pathlib cannot build Windows paths here to compare)."""
    monkeypatch.delenv("VMB_HOME", raising=False)
    monkeypatch.setenv("APPDATA", "C:/Users/me/AppData/Roaming")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "name", "nt")
    got = vc.default_home()
    monkeypatch.setattr(os, "name", "posix")
    assert got == os.path.join("C:/Users/me/AppData/Roaming", "VMB Score")


def test_discovery_problems_say_what_to_do(vmb_home: Path) -> None:
    with pytest.raises(vc.EngineNotRunning) as exc:
        vc.read_discovery(str(vmb_home), {"vmb": "/opt/VMB Score/.venv/bin/vmb"})
    assert exc.value.message.endswith('"/opt/VMB Score/.venv/bin/vmb" engine start')
    discovery.write_discovery(vmb_home, discovery.Discovery("tcp://x:1", "t", "b", 1, "0"))
    with pytest.raises(vc.PluginError, match="gateway = true") as exc2:
        vc.read_discovery(str(vmb_home))
    assert exc2.value.code == "no_gateway"
    discovery.write_discovery(
        vmb_home, discovery.Discovery("tcp://x:1", "t", "b", 1, "0", gateway="http://127.0.0.1:9")
    )
    with pytest.raises(vc.EngineNotRunning, match="does not answer"):
        vc.connect({})


def test_config_written_with_a_bom_is_read(tmp_path: Path) -> None:
    """Windows PowerShell 5.1's `Set-Content -Encoding UTF8` starts the file with a BOM."""
    text = json.dumps({"vmb": "C:\\vmb\\Scripts\\vmb.exe", "home": "C:\\h"})
    (tmp_path / vc.CONFIG_NAME).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    config = vc.load_config(str(tmp_path))
    assert config["vmb"] == "C:\\vmb\\Scripts\\vmb.exe" and config["home"] == "C:\\h"


def test_unreadable_config_is_reported_not_ignored(tmp_path: Path, capsys) -> None:
    (tmp_path / vc.CONFIG_NAME).write_text('{"vmb": "/v/bin/vmb",')  # cut short
    config = vc.load_config(str(tmp_path))
    assert "vmb" not in config
    problem = config[vc.CONFIG_PROBLEM]
    assert vc.CONFIG_NAME in problem and "reinstall" in problem
    assert vc.CONFIG_NAME in capsys.readouterr().err
    assert problem in vc.not_running_message(config, "no discovery file")
    (tmp_path / vc.CONFIG_NAME).write_text("[1, 2]")
    assert "not a JSON object" in vc.load_config(str(tmp_path))[vc.CONFIG_PROBLEM]


def test_config_and_home(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / vc.CONFIG_NAME).write_text(json.dumps({"vmb": "/v/bin/vmb", "home": "/h"}))
    config = vc.load_config(str(tmp_path))
    assert config["vmb"] == "/v/bin/vmb" and vc.load_config(str(tmp_path / "nope")) == {}
    assert vc.start_command(config) == "/v/bin/vmb engine start"
    monkeypatch.delenv("VMB_HOME")
    assert vc.resolve_home(config) == "/h"
    monkeypatch.setenv("VMB_HOME", str(tmp_path))
    assert vc.resolve_home(config) == str(tmp_path.resolve())


def test_knobs_round_trip_and_request_fields(vmb_home: Path) -> None:
    assert vc.load_knobs("resolve") == {}
    vc.save_knobs("resolve", {"mood": "calm", "instruments": ["piano"], "seed": 7})
    assert vc.load_knobs("resolve")["instruments"] == ["piano"]
    assert (vmb_home / "plugins" / "resolve-knobs.json").is_file()
    from bridge.knobs import knob_definitions
    from engine import taxonomy
    from engine.backends import CHOICES

    defs = knob_definitions(taxonomy.all_tags(), backends=CHOICES)
    panel = {"mood": "calm", "backend": "draft", "seed": "0", "text": "  ", "instruments": []}
    req = vc.split_options({**panel, "ending": "auto", "loop": "off", "stems": False}, defs)
    assert req == {"knobs": {"mood": "calm", "instruments": []}, "backend": "draft"}
    req = vc.split_options({**panel, "ending": "button", "loop": "on", "stems": True}, defs)
    assert (req["ending"], req["loop"], req["stems"]) == ("button", True, True)
    for served in (None, {}, {"options": []}):  # an engine older than the knob table
        with pytest.raises(vc.PluginError, match="Update the engine") as err:
            vc.split_options({"mood": "calm"}, served)
        assert err.value.code == "engine_outdated"
    assert vc.cue_name("Shot 12 / take 3!") == "Shot-12-take-3" and vc.cue_name("!!") == "cue"
    words = vc.fallback_text({"mood": "calm", "genre": "auto", "tempo": "96", "seed": 3}, defs)
    assert words == "calm 96 BPM background music for a video"  # the table's choice rows


def test_otio_builder_gaps_overlaps_and_urls() -> None:
    doc = vc.otio_timeline(
        "t",
        25.0,
        [
            {
                "name": "V1",
                "kind": "Video",
                "clips": [
                    {"name": "b", "record_in_s": 3.0, "duration_s": 2.0, "source_in_s": 1.0,
                     "path": "/m/b c.mov"},
                    {"name": "a", "record_in_s": 1.0, "duration_s": 2.5, "source_in_s": 0.0,
                     "path": "/m/a.mov", "available_s": 60.0},
                ],
            }
        ],
        global_start_s=10.0,
    )  # fmt: skip
    tl = otio.adapters.read_from_string(json.dumps(doc), "otio_json")
    gap, a, b = tl.tracks[0]
    assert isinstance(gap, otio.schema.Gap) and gap.duration().to_seconds() == 1.0
    assert a.range_in_parent().start_time.to_seconds() == 1.0
    # b starts under a's tail: it loses 0.5 s of head, in record and in source time
    assert b.range_in_parent().start_time.to_seconds() == pytest.approx(3.5)
    assert b.trimmed_range().start_time.to_seconds() == pytest.approx(1.5)
    assert otio.url_utils.filepath_from_url(b.media_reference.target_url) == "/m/b c.mov"
    assert a.media_reference.available_range.duration.to_seconds() == 60.0
    assert tl.global_start_time.to_seconds() == 10.0


def test_progress_and_failure_texts() -> None:
    job = {"state": "running", "progress": {"stage": "generate", "step": 3, "of": 10}}
    assert vc.progress_text(job) == "generate 3/10 (30%)"
    assert vc.progress_text({"state": "queued"}) == "queued"
    failed = {"state": "failed", "error": {"code": "media", "message": "cannot decode x.mov"}}
    assert "cannot decode x.mov" in vc.failure_message(failed)
    assert vc.failure_message({"state": "cancelled"}) == "The job was cancelled."


def test_results_are_downloaded_when_not_local(engine, monkeypatch, tmp_path: Path) -> None:
    """An engine on another machine: the paths are not readable here, the bytes come over."""
    gw = vc.connect({})
    job_id = gw.call("POST", "/jobs", {"kind": "selfcheck", "params": {"steps": 1, "step_s": 0}})[
        "job_id"
    ]
    deadline = time.monotonic() + 30
    while gw.job(job_id)["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    local = vc.fetch_outputs(gw, job_id)
    engine_path = local["files"]["audio"]
    real_isfile = os.path.isfile
    monkeypatch.setattr(vc.os.path, "isfile", lambda p: p != engine_path and real_isfile(p))
    remote = vc.fetch_outputs(gw, job_id, cache_dir=str(tmp_path / "cache"))
    got = remote["files"]["audio"]
    assert got.startswith(str(tmp_path / "cache" / job_id))
    assert Path(got).read_bytes() == Path(engine_path).read_bytes()
    assert remote["paths"][engine_path] == got
    with pytest.raises(vc.GatewayError) as exc:
        gw.job("0" * 32)
    assert exc.value.status == 404 and exc.value.code == "unknown_job"
