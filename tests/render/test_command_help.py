"""`paraplan --help` (solver/render/command_help.py): the command list says each command's first
sentence in full, usage lines name arguments as click does, and no typer type tag shows."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from solver.cli import app

COMMANDS = ("solve", "check", "import", "schema", "batch", "sweep", "calibrate")
runner = CliRunner()


def _help(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_list_never_cuts_a_description() -> None:
    text = _help()
    listing = text.split("Commands:", 1)[1]
    assert "..." not in listing
    entries = re.split(r"\n  (?=\w)", listing.strip())
    assert len(entries) == len(COMMANDS)
    for entry in entries:
        assert " ".join(entry.split()).endswith("."), entry
    assert "Convert a foreign condition, model config or plan into paraplan YAML" in " ".join(listing.split())
    assert "print the error on rows and cards kept out of the fit." in " ".join(listing.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_and_options_show_no_type_placeholders(command: str) -> None:
    text = _help(command)
    usage = text.splitlines()[0]
    assert "{" not in usage and "<" not in usage, usage
    assert not re.search(r"<(bool|path|str|int|float|int range|float range|text)>", text), text


def test_arguments_are_named_as_click_names_them() -> None:
    assert "check [OPTIONS] CONDITION [PLAN]" in _help("check").splitlines()[0]
    assert "batch [OPTIONS] PATHS..." in _help("batch").splitlines()[0]
    assert "calibrate [OPTIONS] [MEASURED.csv]" in _help("calibrate").splitlines()[0]
    text = _help("solve")
    assert "  --json" not in text and "--time-limit SECONDS" in text and "--export / --no-export" in text
