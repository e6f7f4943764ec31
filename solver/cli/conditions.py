"""`paraplan import` and `schema`: conditions in other formats, and the condition file's schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from solver.cli.common import PATH, cards_option, command, handles_errors, say, searches_cards
from solver.errors import InputError
from solver.render.command_help import argument


@command("import")
@argument("source", "SOURCE", "seed markdown (.md), JSON trio folder or hardware_env.json, Hugging "
          "Face config.json, paper config FILE.json[#method]", type=PATH)
@click.option("-o", "--output", metavar="FILE", type=PATH, help="YAML to write (default: print)")
@cards_option
@handles_errors
@searches_cards
def import_command(source: Path, output: Path | None, cards: tuple[Path, ...]) -> None:
    """Convert a foreign condition, model config or plan into paraplan YAML, each value commented
    with where it came from. A markdown Parallelism Strategy section goes to OUTPUT.plan.yaml."""
    from solver.importers.registry import import_source
    from solver.render.writer import write_atomic

    imported = import_source(source)
    if output is None:
        click.echo(imported.to_yaml().rstrip())
        if imported.plan is not None:
            click.echo("---\n" + imported.plan.to_yaml().rstrip())
        return
    if output.exists() and output.is_dir():
        raise InputError(str(output), "-o", "is a folder; give a file name such as condition.yaml")
    written = [write_atomic(output, imported.to_yaml())]
    if imported.plan is not None:
        plan_path = output.with_name(f"{output.name.rsplit('.', 1)[0]}.plan.yaml")
        written.append(write_atomic(plan_path, imported.plan.to_yaml()))
    for path in written:
        say(f"wrote {path}")
    for line in imported.assumptions:
        say(f"  assumed: {line}")


@command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the condition file (for editors)."""
    from solver.inputs.condition import condition_schema

    click.echo(json.dumps(condition_schema(), indent=2))
