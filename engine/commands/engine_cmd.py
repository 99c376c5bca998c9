"""`vmb engine start|status|stop|keys`."""

from __future__ import annotations

import argparse

from engine.commands.common import print_json, settings
from engine.serve import control
from engine.util.device import describe


def _start(args: argparse.Namespace) -> int:
    s = settings()
    if args.foreground:
        from engine.serve.daemon import run_daemon

        run_daemon(s)
        return 0
    st = control.start(s)
    if st.get("already_running"):
        print(f"engine already running (pid {st['pid']}) on {st['endpoint']}")
    else:
        print(f"engine started (pid {st['pid']}) on {st['endpoint']}")
    return 0


# How long `vmb engine status` waits for an idle worker's first compute report (it imports
# torch once; the daemon keeps the answer).
COMPUTE_WAIT_S = 30.0


def _status(args: argparse.Namespace) -> int:
    """The daemon's state and its worker's compute block; the CLI imports no torch: what the
    jobs run on is the worker's answer, under the daemon's settings and environment."""
    s = settings()
    st = control.status(s, compute_wait_s=COMPUTE_WAIT_S)
    if not st["running"]:
        st["compute"] = {"device": None, "dtype": None, "state": "engine not running"}
    if args.json:
        print_json(st)
        return 0 if st["running"] else 1
    if st["running"]:
        print(f"running: pid {st['pid']}, {st['endpoint']}, boot {st['boot_id']}")
        print(f"job kinds: {', '.join(st.get('kinds', []))}")
        print(f"full backend runs on: {describe(st['compute'])}")
    else:
        print("not running" + (f" ({st['error']})" if st.get("error") else ""))
    return 0 if st["running"] else 1


def _stop(args: argparse.Namespace) -> int:
    print("engine stopped" if control.stop(settings()) else "engine was not running")
    return 0


def _keys(args: argparse.Namespace) -> int:
    """CURVE keys for remote access (editor on a laptop, engine on a GPU box)."""
    import zmq.auth

    s = settings()
    keys = s.home / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    public, secret = zmq.auth.create_certificates(keys, "engine")
    print(f"server keys written: {secret} (keep private) and {public}")
    print(f'set in {s.config_path}:\n  [server]\n  curve_secret_key_file = "{secret}"')
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="the engine daemon")
    esub = p.add_subparsers(dest="engine_cmd", required=True)
    st = esub.add_parser("start", help="start the daemon (returns when it is ready)")
    st.add_argument("--foreground", action="store_true", help="run in this process")
    st.set_defaults(func=_start)
    ss = esub.add_parser("status", help="is the daemon running?")
    ss.add_argument("--json", action="store_true", help="machine-readable output")
    ss.set_defaults(func=_status)
    esub.add_parser("stop", help="stop the daemon").set_defaults(func=_stop)
    esub.add_parser("keys", help="write CURVE keys for remote access").set_defaults(func=_keys)
