"""`vmb`: the command line. Each command group lives in its own module under
engine/commands and registers itself; this file only assembles them and maps errors to
clear messages (never a traceback for a user error)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bridge.errors import VMBError

# One line per command module; each exposes register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "engine.commands.engine_cmd",
    "engine.commands.jobs",
    "engine.commands.models",
    "engine.commands.bench",
    "engine.commands.demo",
    "engine.commands.eval",
    "engine.commands.generate",
    "engine.commands.describe",
    "engine.commands.render",
    "engine.commands.conform",
    "engine.commands.train",
    "engine.commands.dataset",
    "engine.commands.library",
    "engine.commands.plan",
    "engine.commands.probe",
    "engine.commands.adapt",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmb", description="VMB Score: music for your picture, made locally."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _describe(sub)
    return parser


def _describe(sub: argparse._SubParsersAction) -> None:
    """Derived, so they cannot drift from the parser: a command group's help line ends with
    the subcommands it registered, and a command's --help opens with its help line. (argparse
    keeps the help lines in _choices_actions; they are read when help is printed.)"""
    for line in sub._choices_actions:
        parser = sub.choices[line.dest]
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for group in groups:
            _describe(group)
            if line.help:
                line.help = f"{line.help}: {', '.join(group.choices)}"
        if parser.description is None:
            parser.description = line.help


def main(argv: list[str] | None = None) -> int:
    # Nothing in the product fetches from a model hub at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    before = os.environ.get("VMB_MODEL_DIR")
    if getattr(args, "model_dir", None):  # every model-loading command takes --model-dir
        os.environ["VMB_MODEL_DIR"] = str(args.model_dir)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        return _reader_went_away()
    except VMBError as exc:
        print(f"vmb: error: {exc.message}", file=sys.stderr)
        return 2 if exc.code in ("invalid_request", "unknown_kind", "config") else 1
    except KeyboardInterrupt:
        print("vmb: interrupted", file=sys.stderr)
        return 130
    finally:  # --model-dir is this command's: a caller in the same process keeps its own
        if before is None:
            os.environ.pop("VMB_MODEL_DIR", None)
        else:
            os.environ["VMB_MODEL_DIR"] = before
    return int(code or 0)


def _reader_went_away() -> int:
    """`vmb ... | head`: the reader closed the pipe. End quietly, as a SIGPIPE'd tool does;
    stdout goes to /dev/null so the interpreter's final flush cannot complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
