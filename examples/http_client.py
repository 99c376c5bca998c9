#!/usr/bin/env python3
"""Score a clip through the engine's loopback HTTP gateway, with the standard library only.

This is what a host integration does (the plugins in plugins/ follow the same steps):
read the discovery file for the gateway URL and token, submit a cue, poll, download the stem.

    vmb engine start
    python examples/http_client.py CLIP.mp4 [START_S END_S] --out DIR

VMB_HOME moves the engine's home (default: ~/.local/share/vmb-score on Linux, ~/Library/Application
Support/VMB Score on macOS, %APPDATA%/VMB Score on Windows); the discovery file is
<home>/run/engine.json.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def discovery(home: Path) -> dict:
    path = home / "run" / "engine.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        sys.exit(f"the engine is not running (no {path}); start it with: vmb engine start")


def default_home() -> Path:
    if os.environ.get("VMB_HOME"):
        return Path(os.environ["VMB_HOME"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "VMB Score"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "VMB Score"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "vmb-score"


def call(base: str, token: str, method: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            kind = resp.headers.get("Content-Type", "")
            return json.loads(raw) if kind.startswith("application/json") else raw
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}").get("error", {})
        sys.exit(f"engine refused: {error.get('code')}: {error.get('message')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("range", nargs="*", type=float, help="START_S END_S (default: whole clip)")
    ap.add_argument("--mood", default=None)
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    disc = discovery(default_home())
    base, token = disc["gateway"].rstrip("/") + "/v1", disc["token"]
    params: dict = {"media": str(Path(args.clip).resolve()), "knobs": {}}
    if len(args.range) == 2:
        params["start_s"], params["end_s"] = args.range
    if args.mood:
        params["knobs"]["mood"] = args.mood
    job = call(base, token, "POST", "/cue", params)
    job_id = job["job_id"]
    while True:
        state = call(base, token, "GET", f"/jobs/{job_id}")["job"]
        if state["state"] in ("done", "failed", "cancelled"):
            break
        progress = state.get("progress") or {}
        print(f"\r{progress.get('stage', state['state'])} {progress.get('step', '')}", end="",
              file=sys.stderr)  # fmt: skip
        time.sleep(0.3)
    print(file=sys.stderr)
    if state["state"] != "done":
        sys.exit(f"job {state['state']}: {state.get('error')}")
    result = call(base, token, "GET", f"/jobs/{job_id}/result")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, info in result["files"].items():
        if name.startswith("audio"):
            dest = out / Path(info["path"]).name
            dest.write_bytes(call(base, token, "GET", info["url"].removeprefix("/v1")))
            print(dest)


if __name__ == "__main__":
    main()
