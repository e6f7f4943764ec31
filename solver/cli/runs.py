"""`paraplan batch` and `sweep` (issue 4): many conditions or what-if points, in parallel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from solver.cli.common import (
    PATH,
    cards_option,
    command,
    executor_option,
    handles_errors,
    jobs_option,
    method_option,
    out_dir_option,
    say,
    say_lines,
    searches_cards,
    time_limit_option,
    workers_option,
)
from solver.errors import EXIT_INVALID_INPUT
from solver.render.command_help import argument


def run_options(method: str, time_limit: float, workers: int, executor: str, jobs: int | None,
                 address: str | None) -> tuple[Any, Any]:
    from solver.inputs.card_library import command_folders
    from solver.runs.executors import ExecutorSpec
    from solver.runs.tasks import SolveOptions

    return (SolveOptions(method=method, time_limit_s=time_limit, workers=workers,
                         card_dirs=command_folders()).validate(),
            ExecutorSpec(kind=executor, jobs=jobs, address=address).validate())


@command("batch")
@argument("paths", "PATHS", "condition files, folders (searched recursively) or glob patterns",
          nargs=-1, required=True)
@out_dir_option
@jobs_option
@executor_option
@click.option("--address", metavar="HOST:PORT",
              help="Ray cluster address (default: start a local Ray instance)")
@method_option
@time_limit_option("wall-clock safety net per condition (placement, solving, rendering), seconds")
@workers_option(1, "CP-SAT threads per solve")
@cards_option
@handles_errors
@searches_cards
def batch_command(paths: tuple[str, ...], output: Path, jobs: int | None, executor: str,
                  address: str | None, method: str, time_limit: float, workers: int,
                  cards: tuple[Path, ...]) -> None:
    """Solve many condition files in parallel: plan folders, summary.csv/.parquet, report.html.

    Exit 1 when any condition failed (invalid, infeasible or error); its summary row says why.
    """
    from solver.runs.batch import run_batch

    options, spec = run_options(method, time_limit, workers, executor, jobs, address)
    outcome = run_batch(paths, output, options=options, spec=spec, echo=say)
    say_lines(outcome.summary_lines(output, "batch"))
    if outcome.failed:
        raise click.exceptions.Exit(EXIT_INVALID_INPUT)


@command("sweep")
@argument("condition", "CONDITION", "base condition file", type=PATH)
@click.option("--set", "sets", metavar="KEY=V1,V2,...", multiple=True, required=True,
              help="values of a dotted key of the condition (repeat for a cross product)")
@out_dir_option
@click.option("--plans/--no-plans", default=False, help="also write a plan folder per point")
@jobs_option
@executor_option
@click.option("--address", metavar="HOST:PORT", help="Ray cluster address")
@method_option
@time_limit_option("wall-clock safety net per point (placement, solving, rendering), seconds")
@workers_option(1, "CP-SAT threads per solve")
@click.option("--yes", "-y", is_flag=True, help="start a sweep of more than 1,000 points without asking")
@cards_option
@handles_errors
@searches_cards
def sweep_command(condition: Path, sets: tuple[str, ...], output: Path, plans: bool, jobs: int | None,
                  executor: str, address: str | None, method: str, time_limit: float, workers: int,
                  yes: bool, cards: tuple[Path, ...]) -> None:
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
        raise click.exceptions.Exit(EXIT_INVALID_INPUT)
