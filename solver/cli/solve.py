"""`paraplan solve`: one condition -> a plan folder (or, infeasible, infeasibility.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from solver.cli.common import (
    PATH,
    cards_option,
    command,
    err,
    handles_errors,
    method_option,
    say,
    say_lines,
    searches_cards,
    time_limit_option,
    workers_option,
)
from solver.errors import InfeasibleError
from solver.render.command_help import argument
from solver.render.console import solved_lines, time_limit_lines
from solver.render.output_folder import open_output
from solver.render.writer import INFEASIBILITY_FILE, LAUNCH_FOLDER, MANIFEST, PLAN_FILES
from solver.runtime.interrupts import checkpoint
from solver.runtime.limits import Deadline
from solver.runtime.startup import import_cp_model

if TYPE_CHECKING:
    from solver.inputs.condition import Condition
    from solver.optimize.settings import SolverSettings
    from solver.render.output_folder import OutputFolder


@command("solve")
@argument("condition", "CONDITION", "condition file (YAML, JSON)", type=PATH)
@click.option("-o", "--output", metavar="DIR", type=PATH, help="output folder")
@method_option
@time_limit_option("wall-clock safety net for the whole run (expert placement, solving, "
                   "relaxations, rendering), seconds; deterministic work limits decide the plan")
@workers_option(2, "CP-SAT worker threads")
@click.option("--seed", metavar="N", type=int, default=0, help="CP-SAT random seed")
@click.option("--log-search/--no-log-search", default=False, help="print CP-SAT's search log")
@click.option("--export/--no-export", default=False,
              help="also write launch/ configs for vLLM, SGLang, TensorRT-LLM")
@click.option("--explain/--no-explain", default=True,
              help="when infeasible, search the smallest fixes and write infeasibility.md")
@cards_option
@handles_errors
@searches_cards
def solve_command(condition: Path, output: Path | None, method: str, time_limit: float, workers: int,
                  seed: int, log_search: bool, export: bool, explain: bool,
                  cards: tuple[Path, ...]) -> None:
    """Solve a condition: write plan.json, plan.md, balance.csv, report.html and manifest.json.

    CONDITION may also be a seed markdown file, a JSON trio folder (or its hardware_env.json).
    """
    deadline = Deadline(time_limit)  # one wall-clock safety net for everything below
    from solver.importers.registry import load_any_condition

    cond = load_any_condition(condition)  # input errors end here, before the solver is imported
    import_cp_model()
    from solver.optimize.settings import SolverSettings
    from solver.planning.modes import plan_serving
    from solver.render.outputs import plan_folder_files

    settings = SolverSettings(time_limit_s=time_limit, num_workers=workers, random_seed=seed,
                              log_search_progress=log_search, deadline=deadline)
    outdir = output if output is not None else Path("plans") / _safe_name(cond.name)
    planned = [*PLAN_FILES, *([INFEASIBILITY_FILE] if explain else []), MANIFEST]
    with open_output(outdir, planned, [LAUNCH_FOLDER] if export else []) as out:
        err(f"solving {cond.name} ({method}, time limit {time_limit:g} s) ...")
        try:  # the runner-up table of plan.md is searched within the same time limit
            solution = plan_serving(cond, method=method, settings=settings, with_runner_ups=True)
        except InfeasibleError as exc:
            if explain:  # the smallest fixes, each solved in the condition's serving mode
                _explain_infeasible(cond, exc, out, settings)
            raise InfeasibleError(f"{condition}: {exc}", exc.binding) from None
        checkpoint("solved")
        written = out.commit(plan_folder_files(cond, solution, export))
    first, *rest = solved_lines(solution.plan, time.monotonic() - deadline.started, solution.runner_ups)
    say(first)
    _echo_time_limit(deadline)
    mixed_export = ["  note: --export writes no launch files for mixed clusters yet (plan.md lists "
                    "each replica's stages, pools and tensor-parallel sizes)"] if export and cond.mixed \
        else []
    say_lines([*rest, *(f"  wrote {path}" for path in written), *(f"  note: {n}" for n in out.notes),
               *mixed_export])


def _explain_infeasible(cond: Condition, exc: InfeasibleError, out: OutputFolder,
                        settings: SolverSettings) -> None:
    """Search the smallest relaxations, write infeasibility.md and print the short version."""
    from solver.planning.relax import explain_infeasibility
    from solver.render.infeasibility import infeasibility_markdown, infeasibility_summary

    report = explain_infeasibility(cond, exc, settings)
    written = out.commit({INFEASIBILITY_FILE: infeasibility_markdown(report)})
    say_lines([*infeasibility_summary(report), f"  wrote {written[0]}",
                *(f"  note: {n}" for n in out.notes)])
    if settings.deadline is not None:
        _echo_time_limit(settings.deadline)


def _echo_time_limit(deadline: Deadline) -> None:
    for line in time_limit_lines(deadline):
        err(line)


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return cleaned or "plan"
