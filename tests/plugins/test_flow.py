"""plugins/common/vmb_flow.py: the one flow every host runs, with a minimal host, against a
real gateway + daemon (stand-in kinds): blocking hosts, deferring hosts, cancel, errors."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import pytest
import vmb_client as vc
import vmb_flow as vf


class MiniHost(vf.Host):
    """The smallest host: a fixed selection, knobs from a dict, stems into a list."""

    name = "mini"

    def __init__(self, defer: bool = False, seconds: float = 2.0) -> None:
        self.defer = defer
        self.seconds = seconds
        self.pending: list[Any] = []
        self.texts: list[str] = []
        self.reports: list[tuple[str, bool]] = []
        self.placed: list[str] = []
        self.questions: list[str] = []
        self.answer = False
        self.fail_with: Exception | None = None
        self.cancel_in_panel = False

    def read_selection(self) -> dict:
        if self.fail_with is not None:
            raise self.fail_with
        return {"seconds": self.seconds}

    def build_request(self, gw: vc.Gateway, selection: dict) -> dict | None:
        assert "knobs" in gw.capabilities()
        if self.cancel_in_panel:
            return None
        params = {"duration_s": selection["seconds"], "name": "mini", "text": "calm piano"}
        return {"kind": "cue", "params": params}

    def ask(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer

    def progress(self, text: str) -> None:
        self.texts.append(text)

    def place(self, outputs: dict, selection: dict) -> str:
        self.placed.append(outputs["files"]["audio"])
        return "placed " + Path(outputs["files"]["audio"]).name

    def report(self, message: str, error: bool = False) -> None:
        self.reports.append((message, error))

    def schedule(self, fn, delay_s: float) -> bool:
        if not self.defer:
            return False
        self.pending.append(fn)
        return True

    def run_pending(self, limit: int = 2000) -> int:
        """What a host's event loop does: call what was scheduled, one per tick."""
        ticks = 0
        while self.pending:
            ticks += 1
            assert ticks < limit, "the flow never finished"
            self.pending.pop(0)()
        return ticks


def _seconds(path: str) -> float:
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def test_blocking_host_runs_to_the_end(standin_engine) -> None:
    host = MiniHost(defer=False)
    flow = vf.Flow(host, {}, sleep=lambda s: None).start()
    assert flow.finished and flow.error is None and not host.pending
    (path,) = host.placed
    assert _seconds(path) == pytest.approx(2.0, abs=0.01)
    assert host.reports == [("placed mini.wav", False)]
    assert host.texts[0] == "submitted" and host.texts[-1] == "done"
    assert flow.request["duration_s"] == 2.0 and flow.job["state"] == "done"


def test_deferring_host_never_waits_inside_a_step(standin_engine) -> None:
    host = MiniHost(defer=True)
    slept: list[float] = []
    flow = vf.Flow(host, {}, sleep=slept.append).start()
    assert not flow.finished and len(host.pending) == 1  # returned after submitting
    ticks = host.run_pending()
    assert flow.finished and host.placed and ticks >= 1
    assert slept == []  # the host did all the waiting


@pytest.mark.standin_step_s(0.3)
def test_cancel_reaches_the_engine(standin_engine) -> None:
    host = MiniHost(defer=True)
    flow = vf.Flow(host, {}).start()
    job_id = flow.job_id
    flow.cancel()
    host.run_pending()
    assert vc.connect({}).job(job_id)["state"] == "cancelled"
    assert host.reports == [("The job was cancelled.", True)] and not host.placed


def test_user_cancels_in_the_panel(standin_engine) -> None:
    host = MiniHost()
    host.cancel_in_panel = True
    flow = vf.Flow(host, {}).start()
    assert flow.finished and flow.cancelled and flow.job_id is None and host.reports == []


def test_errors_are_messages_and_logs(vmb_home: Path) -> None:
    host = MiniHost()
    host.fail_with = vc.PluginError("Nothing to score: select a clip.")
    vf.Flow(host, {}).start()
    assert host.reports == [("Nothing to score: select a clip.", True)]
    host = MiniHost()
    host.fail_with = KeyError("surprise")
    vf.Flow(host, {}).start()
    ((message, error),) = host.reports
    assert error and message.startswith("Something went wrong: KeyError")
    assert "Traceback" in (vmb_home / "plugins" / "mini-errors.log").read_text()


def test_no_engine_and_a_failing_start(vmb_home: Path, tmp_path: Path) -> None:
    host = MiniHost()
    vf.Flow(host, {}).start()
    ((message, _),) = host.reports
    assert "not running" in message and "vmb engine start" in message and not host.questions
    fake_vmb = tmp_path / "vmb"
    fake_vmb.write_text("#!/bin/sh\necho 'engine broke' >&2\nexit 3\n")
    fake_vmb.chmod(0o755)
    host = MiniHost()
    host.answer = True
    vf.Flow(host, {"vmb": str(fake_vmb)}, sleep=lambda s: None).start()
    assert "Start it now?" in host.questions[0]
    ((message, _),) = host.reports
    assert "failed to start" in message and "engine broke" in message and str(fake_vmb) in message
    host = MiniHost()  # the user says no: the plain message
    vf.Flow(host, {"vmb": str(fake_vmb)}).start()
    assert host.questions and "not running" in host.reports[0][0]


def test_sort_old_matches_stems_by_file_and_place(tmp_path: Path) -> None:
    """Only a changed cue's own files, where the old OTIO put them, leave the timeline; one
    moved or trimmed by hand is "edited"; another cue's stem at that start is not touched."""
    old = tmp_path / "take-1"
    old.mkdir()
    (old / vf.SCORED_OTIO).write_text("{}")
    for name in ("cue-1.wav", "cue-2.wav", "cue-2-bass.wav", "cue-2.mid", "cue-20.wav"):
        (old / name).write_bytes(b"")
    changes = [
        {"change": "kept", "from_audio": str(old / "cue-1.wav"), "old_record_in_s": 10.0,
         "old_record_out_s": 12.0},
        {"change": "moved", "from_audio": str(old / "cue-2.wav"), "from_cue": "cue-2",
         "old_record_in_s": 14.0, "old_record_out_s": 16.0},
        {"change": "kept", "from_audio": str(old / "cue-20.wav"), "old_record_in_s": 20.0,
         "old_record_out_s": 21.0},
    ]  # fmt: skip
    result = {"changes": changes, "timeline_start_s": 10.0}

    def item(name: str, pos: float, end: float, offs: float = 0.0) -> dict[str, Any]:
        return {"path": str(old / name), "pos": pos, "end": end, "offs": offs, "id": name}

    items = [
        item("cue-2.wav", 4.0, 6.0),  # where the old OTIO put it: stale
        item("cue-2-bass.wav", 4.0, 6.0),  # its part: stale
        item("cue-2.mid", 4.0, 6.0),  # its MIDI: stale
        item("cue-1.wav", 4.0, 6.0),  # a kept cue's stem dragged there by hand: not touched
        item("cue-20.wav", 4.0, 6.0),  # cue-20 is not cue-2's part
        dict(item("cue-2.wav", 4.5, 6.5), id="nudged"),
        dict(item("cue-2.wav", 4.0, 5.0), id="trimmed"),
        dict(item("cue-2.wav", 4.0, 6.0, offs=0.5), id="slipped"),
        {"path": str(tmp_path / "mine.wav"), "pos": 4.0, "end": 6.0, "offs": 0.0, "id": "mine"},
    ]
    out = vf.sort_old(items, result, str(old / vf.SCORED_OTIO), 0.02)
    assert [i["id"] for i in out["stale"]] == ["cue-2.wav", "cue-2-bass.wav", "cue-2.mid"]
    assert [i["id"] for i in out["edited"]] == ["nudged", "trimmed", "slipped"]
    assert all(i["was"] == (4.0, 6.0) for i in out["edited"])
    note = vf.edited_note(out["edited"][0], "'VMB Score'", True)
    assert note == (
        "edited by hand, left alone: cue-2.wav of cue-2 on 'VMB Score' (moved to 14.50 s; "
        "the score put it at 14.00-16.00 s); it overlaps a new stem, so it is muted (unmute it)"
    )
    assert vf.overlaps(out["edited"][0], [(5.0, 7.0)], 0.02)
    assert not vf.overlaps(out["edited"][0], [(6.5, 7.5)], 0.02)
