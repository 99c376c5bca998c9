"""`vmb jobs list|show|cancel|result|prune`."""

from __future__ import annotations

import argparse
import shutil
import time

from bridge.client import EngineClient
from engine.commands.common import print_json, settings


def _client() -> EngineClient:
    return EngineClient(home=settings().home)


def _list(args: argparse.Namespace) -> int:
    with _client() as c:
        jobs = c.list_jobs(args.state, args.limit)
    if args.json:
        print_json({"jobs": jobs})
        return 0
    for j in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j["created_at"]))
        err = f"  {j['error']['code']}: {j['error']['message']}" if j.get("error") else ""
        print(f"{j['job_id']}  {j['kind']:<10} {j['state']:<10} {when}{err}")
    if not jobs:
        print("no jobs")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _client() as c:
        print_json(c.result(args.job_id))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with _client() as c:
        job = c.cancel(args.job_id)
    print(f"{job['job_id']}: {job['state']}")
    return 0


def _result(args: argparse.Namespace) -> int:
    with _client() as c:
        job = c.result(args.job_id)
    if args.json:
        print_json({"state": job["state"], "result": job["result"], "error": job["error"]})
    elif job["state"] == "done":
        for name, path in (job["result"] or {}).get("files", {}).items():
            print(f"{name}: {path}")
    else:
        err = job.get("error") or {}
        print(f"{job['job_id']} is {job['state']}" + (f": {err.get('message')}" if err else ""))
    return 0 if job["state"] == "done" else 1


def _prune(args: argparse.Namespace) -> int:
    """Forget finished jobs older than N days; with --outputs also delete their files."""
    s = settings()
    days = args.older_than if args.older_than is not None else s.jobs.retention_days
    cutoff = time.time() - days * 86400
    pruned = 0
    with _client() as c:
        for state in ("done", "failed", "cancelled"):
            while batch := c.list_jobs(state, 1000, finished_before=cutoff):  # closed: gone
                for j in batch:
                    c.close_job(j["job_id"])
                    if args.outputs:
                        shutil.rmtree(s.outputs_dir / j["job_id"], ignore_errors=True)
                pruned += len(batch)
    print(f"pruned {pruned} job(s) finished more than {days:g} day(s) ago")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="jobs of the engine")
    jsub = p.add_subparsers(dest="jobs_cmd", required=True)
    ls = jsub.add_parser("list", help="list jobs")
    ls.add_argument("--state", choices=["queued", "running", "done", "failed", "cancelled"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)
    for name, fn, helptext in (
        ("show", _show, "the full job record"),
        ("cancel", _cancel, "cancel a queued or running job"),
    ):
        q = jsub.add_parser(name, help=helptext)
        q.add_argument("job_id")
        q.set_defaults(func=fn)
    r = jsub.add_parser("result", help="output files of a finished job")
    r.add_argument("job_id")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=_result)
    pr = jsub.add_parser("prune", help="forget old finished jobs")
    pr.add_argument("--older-than", type=float, default=None, metavar="DAYS")
    pr.add_argument("--outputs", action="store_true", help="also delete their output files")
    pr.set_defaults(func=_prune)
