"""`paraplan batch` and `sweep` (issue 4): many conditions or what-if points, in parallel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from solver.cli.common import (
    CardsOption,
    Executor,
    Jobs,
    Method,
    OutDir,
    Workers,
    command,
    handles_errors,
    say,
    say_lines,
    searches_cards,
)
from solver.errors import EXIT_INVALID_INPUT


def run_options(method: str, time_limit: float, workers: int, executor: str, jobs: int | None,
                 address: str | None) -> tuple[Any, Any]:
    from solver.inputs.card_library import command_folders
    from solver.runs.executors import ExecutorSpec
    from solver.runs.tasks import SolveOptions

    return (SolveOptions(method=method, time_limit_s=time_limit, workers=workers,
                         card_dirs=command_folders()).validate(),
            ExecutorSpec(kind=executor, jobs=jobs, address=address).validate())


@command("batch")
@handles_errors
@searches_cards
def batch_command(
    paths: Annotated[list[str], typer.Argument(metavar="PATHS", help="condition files, folders (searched "
                                               "recursively) or glob patterns")],
    output: OutDir,
    jobs: Jobs = None,
    executor: Executor = "local",
    address: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="Ray cluster address "
                                                "(default: start a local Ray instance)")] = None,
    method: Method = "cp-sat",
    time_limit: Annotated[float, typer.Option(metavar="SECONDS", min=0.01, help="wall-clock safety "
                                              "net per condition (placement, solving, rendering), "
                                              "seconds")] = 60.0,
    workers: Workers = 1,
    cards: CardsOption = None,
) -> None:
    """Solve many condition files in parallel: plan folders, summary.csv/.parquet, report.html.

    Exit 1 when any condition failed (invalid, infeasible or error); its summary row says why.
    """
    from solver.runs.batch import run_batch

    options, spec = run_options(method, time_limit, workers, executor, jobs, address)
    outcome = run_batch(paths, output, options=options, spec=spec, echo=say)
    say_lines(outcome.summary_lines(output, "batch"))
    if outcome.failed:
        raise typer.Exit(EXIT_INVALID_INPUT)


@command("sweep")
@handles_errors
@searches_cards
def sweep_command(
    condition: Annotated[Path, typer.Argument(metavar="CONDITION", help="base condition file")],
    sets: Annotated[list[str], typer.Option("--set", metavar="KEY=V1,V2,...", help="values of a "
                                            "dotted key of the condition (repeat for a cross "
                                            "product)")],
    output: OutDir,
    plans: Annotated[bool, typer.Option(help="also write a plan folder per point")] = False,
    jobs: Jobs = None,
    executor: Executor = "local",
    address: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="Ray cluster address")] = None,
    method: Method = "cp-sat",
    time_limit: Annotated[float, typer.Option(metavar="SECONDS", min=0.01, help="wall-clock safety "
                                              "net per point (placement, solving, rendering), "
                                              "seconds")] = 60.0,
    workers: Workers = 1,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="start a sweep of more than "
                                      "1,000 points without asking")] = False,
    cards: CardsOption = None,
) -> None:
    """What-if sweep: solve the cross product of --set values; summary, Pareto front and chart.

    Every point is validated first (exit 1 naming the key). Infeasible points are results, not
    failures; exit 1 only when a point could not be solved for another reason.
    """
    from solver.runs.sweep import run_sweep

    options, spec = run_options(method, time_limit, workers, executor, jobs, address)
    outcome = run_sweep(condition, sets, output, plans=plans, options=options, spec=spec,
                        echo=say, confirmed=yes)
    say_lines(outcome.summary_lines(output, "sweep"))
    front = outcome.frame[outcome.frame["pareto"]]
    say(f"  Pareto front: {len(front)} point(s); chart in {output / 'pareto.svg'}")
    if outcome.frame["status"].isin(("invalid", "error")).any():
        raise typer.Exit(EXIT_INVALID_INPUT)
