"""`vmb bench generate` run options: the paper's settings by default, figures judged only
there, and bad numbers refused by the parser (no traceback)."""

from __future__ import annotations

import argparse

import pytest

from engine.bench.generate import Run
from engine.commands import bench


def _opts(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vmb")
    bench.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", "generate", *argv])


def test_defaults_are_the_papers_settings() -> None:
    run = Run.from_opts(_opts())
    assert run == Run(cue_s=30.0, steps=None, dtype="auto", offload=False, quick=False)
    assert run.paper and run.notes() == []


def test_options_change_the_run_and_say_so() -> None:
    run = Run.from_opts(_opts("--dtype", "bf16", "--offload", "--steps", "2", "--cue-seconds", "2"))
    assert (run.dtype, run.offload, run.steps, run.cue_s) == ("bf16", True, 2, 2.0)
    assert not run.paper
    assert run.notes() == ["2 steps instead of 100", "a 2 s cue instead of 30 s"]
    quick = Run.from_opts(_opts("--quick"))
    assert quick.steps == 10 and not quick.paper
    assert Run.from_opts(_opts("--steps", "100")).paper  # 100 explicit is still the paper's


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "must be at least 1"),
        (["--steps", "many"], "is not a whole number"),
        (["--cue-seconds", "-3"], "must be above 0"),
        (["--cue-seconds", "nan"], "must be above 0"),
        (["--dtype", "int8"], "invalid choice"),
    ],
)
def test_bad_values_are_parser_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _opts(*argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
