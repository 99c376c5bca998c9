"""`vmb engine start|status|stop|keys`."""

from __future__ import annotations

import argparse

from engine.commands.common import print_json, settings
from engine.config import Settings
from engine.serve import control


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


def _compute(s: Settings) -> dict:
    """The full backend's device and dtype and the encoders' ONNX providers (this machine,
    these settings; the daemon's workers apply the same policy)."""
    try:
        from engine.util.device import compute_report

        return compute_report(s)
    except ImportError as exc:
        return {"device": None, "dtype": None, "error": f"torch does not import: {exc}"}


def _status(args: argparse.Namespace) -> int:
    s = settings()
    st = control.status(s)
    st["compute"] = _compute(s)
    if args.json:
        print_json(st)
    elif st["running"]:
        print(f"running: pid {st['pid']}, {st['endpoint']}, boot {st['boot_id']}")
        print(f"job kinds: {', '.join(st.get('kinds', []))}")
    else:
        print("not running" + (f" ({st['error']})" if st.get("error") else ""))
    if not args.json:
        from engine.util.device import describe

        print(f"full backend runs on: {describe(st['compute'])}")
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
    p = sub.add_parser("engine", help="the engine daemon: start, status, stop")
    esub = p.add_subparsers(dest="engine_cmd", required=True)
    st = esub.add_parser("start", help="start the daemon (returns when it is ready)")
    st.add_argument("--foreground", action="store_true", help="run in this process")
    st.set_defaults(func=_start)
    ss = esub.add_parser("status", help="is the daemon running?")
    ss.add_argument("--json", action="store_true")
    ss.set_defaults(func=_status)
    esub.add_parser("stop", help="stop the daemon").set_defaults(func=_stop)
    esub.add_parser("keys", help="write CURVE keys for remote access").set_defaults(func=_keys)
