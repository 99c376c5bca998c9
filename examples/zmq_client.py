#!/usr/bin/env python3
"""Score a clip over ZeroMQ with the engine's own Python client (bridge.client).

Run it with the engine's Python (it needs pyzmq and msgpack, which the engine venv has):

    vmb engine start
    .venv/bin/python examples/zmq_client.py CLIP.mp4 --mood tense

The client finds the daemon through the discovery file, submits with an idempotency key (a
retry after a dropped connection never makes a second job), follows progress events, and
re-attaches by itself if the daemon restarts while it waits.
"""

import argparse
import sys
from pathlib import Path

from bridge.client import EngineClient
from bridge.errors import VMBError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--mood")
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    params = {"media": str(Path(args.clip).resolve()), "knobs": {}}
    if args.mood:
        params["knobs"]["mood"] = args.mood
    try:
        with EngineClient() as client:
            job = client.submit("cue", params, seed=args.seed)
            result = client.wait(
                job["job_id"],
                on_progress=lambda ev: print(
                    f"\r{ev.data.get('stage')} {ev.data.get('step')}/{ev.data.get('of')}",
                    end="",
                    file=sys.stderr,
                ),
            )
    except VMBError as exc:  # every engine error is typed, with a code and a message
        print(f"\nvmb: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    cue = result["cues"][0]
    print(f"{result['files']['audio']}\n  {cue['description']}\n  backend: {cue['backend']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
