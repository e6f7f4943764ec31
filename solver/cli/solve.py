"""`paraplan solve`: one condition -> a plan folder (or, infeasible, infeasibility.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from solver.cli.common import (
    CardsOption,
    Method,
    command,
    err,
    handles_errors,
    say,
    say_lines,
    searches_cards,
)
from solver.errors import InfeasibleError
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
@handles_errors
@searches_cards
def solve_command(
    condition: Annotated[Path, typer.Argument(metavar="CONDITION", help="condition file (YAML, JSON)")],
    output: Annotated[Path | None, typer.Option("-o", "--output", metavar="DIR",
                                                help="output folder")] = None,
    method: Method = "cp-sat",
    time_limit: Annotated[float, typer.Option(
        metavar="SECONDS", min=0.01, help="wall-clock safety net for the whole run (expert placement, "
        "solving, relaxations, rendering), seconds; deterministic work limits decide the plan")] = 60.0,
    workers: Annotated[int, typer.Option(metavar="N", help="CP-SAT worker threads", min=1, max=64)] = 2,
    seed: Annotated[int, typer.Option(metavar="N", help="CP-SAT random seed")] = 0,
    log_search: Annotated[bool, typer.Option(help="print CP-SAT's search log")] = False,
    export: Annotated[bool, typer.Option(help="also write launch/ configs for vLLM, SGLang, "
                                         "TensorRT-LLM")] = False,
    explain: Annotated[bool, typer.Option(help="when infeasible, search the smallest fixes and "
                                          "write infeasibility.md")] = True,
    cards: CardsOption = None,
) -> None:
    """Solve a condition: write plan.json, plan.md, balance.csv, report.html and manifest.json.

    CONDITION may also be a seed markdown file, a JSON trio folder (or its hardware_env.json).
    """
    if method not in ("cp-sat", "exhaustive"):
        raise typer.BadParameter("method must be cp-sat or exhaustive")
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
