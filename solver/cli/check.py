"""`paraplan check`: grade a given plan against a condition (metrics, violations, regret)."""

from __future__ import annotations

from pathlib import Path

import click

from solver.cli.common import PATH, cards_option, command, handles_errors, say_lines, searches_cards
from solver.errors import EXIT_VIOLATIONS, InputError
from solver.render.command_help import argument
from solver.render.console import check_json, check_lines
from solver.runtime.startup import import_cp_model


@command("check")
@argument("condition", "CONDITION", "condition file", type=PATH)
@argument("plan", "PLAN", "plan.json, a YAML {tp, pp, dp, ..., batch_size}, a seed markdown file "
          "with a Parallelism Strategy section, or a paper config FILE.json[#baseline_method]; "
          "default: the condition's own strategy section", type=PATH, required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--regret/--no-regret", default=True, help="solve the condition and compare with the optimum")
@cards_option
@handles_errors
@searches_cards
def check_command(condition: Path, plan: Path | None, as_json: bool, regret: bool,
                  cards: tuple[Path, ...]) -> None:
    """Evaluate a given plan: metrics and every violated constraint. Exit 3 on violations."""
    from solver.importers.registry import load_any_condition, load_any_plan

    cond = load_any_condition(condition)
    if plan is None and condition.suffix.lower() not in (".md", ".markdown"):
        raise InputError(str(condition), "PLAN", "no plan given (only a seed markdown condition "
                         "carries its own Parallelism Strategy)")
    loaded = load_any_plan(plan if plan is not None else condition, cond)
    import_cp_model()  # plans are built with the solver's modules
    from solver.review.check import check_given
    from solver.review.regret import regret_of

    result = check_given(cond, loaded.plan)
    gap = regret_of(cond, result.plan, violations=result.violations) if regret else None
    if as_json:
        click.echo(check_json(result, loaded.notes, gap))
    else:
        say_lines(check_lines(result, loaded.notes, gap))
    if result.violations:
        raise click.exceptions.Exit(EXIT_VIOLATIONS)
