"""`vmb --help` says what is there: a group's help line names every subcommand it registered
(`vmb models` has export-onnx and check-full), every command's --help opens with a description,
and the shared options (--json, --variations) say what they do."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from engine import cli


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(groups[0].choices) if groups else []


def test_group_help_names_every_registered_subcommand(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # no line wrapped inside a name (check-full)
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    top = capsys.readouterr().out
    assert "model weights: list, verify, download, tiny, export-onnx, check-full" in top, top
    assert "the full music library: add, list, search, remove, stats, calibrate" in top, top
    for path, command in _commands(parser):
        names = _subcommands(command)
        if path and names:
            assert command.description, path
            listed = command.description.rsplit(": ", 1)[-1].split(", ")
            assert listed == names, (path, command.description)


def test_every_command_has_a_description(capsys: pytest.CaptureFixture) -> None:
    for path, command in _commands(cli.build_parser()):
        assert command.description, f"vmb {' '.join(path)} --help has no description"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["library", "--help"])
    assert "the full music library: add, list" in capsys.readouterr().out


def test_json_and_variations_options_have_help() -> None:
    missing = [
        f"vmb {' '.join(path)} {option}"
        for path, command in _commands(cli.build_parser())
        for action in command._actions
        for option in action.option_strings
        if option in ("--json", "--variations") and not action.help
    ]
    assert not missing, missing
