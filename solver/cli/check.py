"""`paraplan check`: grade a given plan against a condition (metrics, violations, regret)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from solver.cli.common import CardsOption, command, handles_errors, say_lines, searches_cards
from solver.errors import EXIT_VIOLATIONS, InputError
from solver.render.console import check_json, check_lines
from solver.runtime.startup import import_cp_model


@command("check")
@handles_errors
@searches_cards
def check_command(
    condition: Annotated[Path, typer.Argument(metavar="CONDITION", help="condition file")],
    plan: Annotated[Path | None, typer.Argument(
        metavar="PLAN", help="plan.json, a YAML {tp, pp, dp, ..., batch_size}, a seed markdown file with a "
        "Parallelism Strategy section, or a paper config FILE.json[#baseline_method]; default: "
        "the condition's own strategy section")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    regret: Annotated[bool, typer.Option(help="solve the condition and compare with the "
                                         "optimum")] = True,
    cards: CardsOption = None,
) -> None:
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
        typer.echo(check_json(result, loaded.notes, gap))
    else:
        say_lines(check_lines(result, loaded.notes, gap))
    if result.violations:
        raise typer.Exit(EXIT_VIOLATIONS)
