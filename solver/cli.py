"""The `paraplan` command: a thin layer over the library. Errors become messages and exit codes."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from solver.errors import (
    EXIT_INVALID_INPUT,
    EXIT_VIOLATIONS,
    InfeasibleError,
    InputError,
    ParaplanError,
)
from solver.render.command_help import registered_command
from solver.render.console import check_json, check_lines, solved_lines, time_limit_lines
from solver.render.display import for_terminal
from solver.render.output_folder import open_output
from solver.render.writer import FINISHED, INFEASIBILITY_FILE, LAUNCH_FOLDER, MANIFEST, PLAN_FILES
from solver.runtime.interrupts import checkpoint
from solver.runtime.limits import Deadline
from solver.runtime.startup import import_cp_model

if TYPE_CHECKING:
    from solver.inputs.condition import Condition
    from solver.optimize.settings import SolverSettings
    from solver.render.output_folder import OutputFolder

# Start-up: `paraplan --help`, `schema`, `import` and every input error must not pay for OR-Tools
# (which imports pandas and pyarrow), Jinja2 or rich. Each command imports what it uses, and a
# condition is read and validated before the solver is imported (scripts/bench_startup.py).

# rich_markup_mode=None: click's plain help and usage errors; rich's formatting costs 60-100 ms of
# imports on every `--help` and usage error.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Plan how to parallelize an LLM for inference, and prove the plan optimal.")

F = TypeVar("F", bound=Callable[..., Any])


command = functools.partial(registered_command, app)  # the command list shows full sentences

CardsOption = Annotated[list[Path] | None, typer.Option(
    "--cards", metavar="DIR", help="folder of your own model and GPU cards (models/*.yaml, "
    "hardware/*.yaml, or cards directly in it), searched before the bundled ones; repeatable; "
    "also the PARAPLAN_CARDS environment variable (folders separated by os.pathsep)")]
OutDir = Annotated[Path, typer.Option("-o", "--output", metavar="DIR", help="output folder")]
Method = Annotated[str, typer.Option(metavar="METHOD", help="cp-sat or exhaustive")]
Jobs = Annotated[int | None, typer.Option("--jobs", "-j", metavar="N", min=1,
                                          help="parallel solves (default: CPU count)")]
Executor = Annotated[str, typer.Option(metavar="local|ray", help="local (processes) or ray")]
Workers = Annotated[int, typer.Option(metavar="N", help="CP-SAT threads per solve", min=1, max=64)]


def _say(message: str) -> None:
    """Print to stdout; names and paths come from the user: control characters are escaped."""
    typer.echo(for_terminal(message))


def _say_lines(lines: list[str]) -> None:
    for line in lines:
        _say(line)


def _err(message: str) -> None:
    typer.echo(for_terminal(message), err=True)


def _interrupted(exc: KeyboardInterrupt) -> str:
    """The interrupt message: what the output folder holds (OutputInterrupted says); else the
    folders already finished (the interrupt came while printing the summary); else nothing."""
    if hasattr(exc, "account"):
        return f"interrupted: {exc.account}"
    if FINISHED:
        return f"interrupted: {', '.join(map(str, FINISHED))} written completely before stopping"
    return "interrupted: nothing was written"


def handles_errors(func: F) -> F:
    """Turn paraplan errors (and anything unexpected) into a message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        FINISHED.clear()  # one command per process, except under CliRunner
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except InfeasibleError as exc:
            _err(f"infeasible: {exc}")
            for line in exc.binding:
                _err(f"  binding: {line}")
            raise typer.Exit(exc.exit_code) from None
        except ParaplanError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # output piped into `head`: nothing more to say
            raise typer.Exit(0) from None
        except KeyboardInterrupt as exc:
            _err(_interrupted(exc))
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
            _err(f"internal error: {type(exc).__name__}: {exc} (please report this with the input)")
            raise typer.Exit(EXIT_INVALID_INPUT) from None

    return wrapper  # type: ignore[return-value]


def searches_cards(func: F) -> F:
    """Put the command's --cards folders on the card search path (solver/inputs/card_library.py)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from solver.inputs.card_library import searching

        with searching(kwargs.get("cards") or ()):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
    from solver.planning.planner import solve
    from solver.render.outputs import plan_folder_files

    settings = SolverSettings(time_limit_s=time_limit, num_workers=workers, random_seed=seed,
                              log_search_progress=log_search, deadline=deadline)
    outdir = output if output is not None else Path("plans") / _safe_name(cond.name)
    planned = [*PLAN_FILES, *([INFEASIBILITY_FILE] if explain else []), MANIFEST]
    with open_output(outdir, planned, [LAUNCH_FOLDER] if export else []) as out:
        _err(f"solving {cond.name} ({method}, time limit {time_limit:g} s) ...")
        try:  # the runner-up table of plan.md is searched within the same time limit
            solution = solve(cond, method=method, settings=settings, with_runner_ups=True)
        except InfeasibleError as exc:
            if explain:
                _explain_infeasible(cond, exc, out, settings)
            raise InfeasibleError(f"{condition}: {exc}", exc.binding) from None
        checkpoint("solved")
        written = out.commit(plan_folder_files(cond, solution, export))
    first, *rest = solved_lines(solution.plan, time.monotonic() - deadline.started, solution.runner_ups)
    _say(first)
    _echo_time_limit(deadline)
    _say_lines([*rest, *(f"  wrote {path}" for path in written), *(f"  note: {n}" for n in out.notes)])


def _explain_infeasible(cond: Condition, exc: InfeasibleError, out: OutputFolder,
                        settings: SolverSettings) -> None:
    """Search the smallest relaxations, write infeasibility.md and print the short version."""
    from solver.planning.relax import explain_infeasibility
    from solver.render.infeasibility import infeasibility_markdown, infeasibility_summary

    report = explain_infeasibility(cond, exc, settings)
    written = out.commit({INFEASIBILITY_FILE: infeasibility_markdown(report)})
    _say_lines([*infeasibility_summary(report), f"  wrote {written[0]}",
                *(f"  note: {n}" for n in out.notes)])
    if settings.deadline is not None:
        _echo_time_limit(settings.deadline)


def _echo_time_limit(deadline: Deadline) -> None:
    for line in time_limit_lines(deadline):
        _err(line)


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return cleaned or "plan"


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
        _say_lines(check_lines(result, loaded.notes, gap))
    if result.violations:
        raise typer.Exit(EXIT_VIOLATIONS)


@command("import")
@handles_errors
@searches_cards
def import_command(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="seed markdown (.md), JSON trio folder or "
                                           "hardware_env.json, Hugging Face config.json, paper "
                                           "config FILE.json[#method]")],
    output: Annotated[Path | None, typer.Option("-o", "--output", metavar="FILE",
                                                help="YAML to write (default: print)")] = None,
    cards: CardsOption = None,
) -> None:
    """Convert a foreign condition, model config or plan into paraplan YAML, each value commented
    with where it came from. A markdown Parallelism Strategy section goes to OUTPUT.plan.yaml."""
    from solver.importers.registry import import_source
    from solver.render.writer import write_atomic

    imported = import_source(source)
    if output is None:
        typer.echo(imported.to_yaml().rstrip())
        if imported.plan is not None:
            typer.echo("---\n" + imported.plan.to_yaml().rstrip())
        return
    if output.exists() and output.is_dir():
        raise InputError(str(output), "-o", "is a folder; give a file name such as condition.yaml")
    written = [write_atomic(output, imported.to_yaml())]
    if imported.plan is not None:
        plan_path = output.with_name(f"{output.name.rsplit('.', 1)[0]}.plan.yaml")
        written.append(write_atomic(plan_path, imported.plan.to_yaml()))
    for path in written:
        _say(f"wrote {path}")
    for line in imported.assumptions:
        _say(f"  assumed: {line}")


@command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the condition file (for editors)."""
    from solver.inputs.condition import condition_schema

    typer.echo(json.dumps(condition_schema(), indent=2))


# ---- batch and sweep (issue 4): many conditions or what-if points, in parallel -----------------

def _run_options(method: str, time_limit: float, workers: int, executor: str, jobs: int | None,
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

    options, spec = _run_options(method, time_limit, workers, executor, jobs, address)
    outcome = run_batch(paths, output, options=options, spec=spec, echo=_say)
    _say_lines(outcome.summary_lines(output, "batch"))
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

    options, spec = _run_options(method, time_limit, workers, executor, jobs, address)
    outcome = run_sweep(condition, sets, output, plans=plans, options=options, spec=spec,
                        echo=_say, confirmed=yes)
    _say_lines(outcome.summary_lines(output, "sweep"))
    front = outcome.frame[outcome.frame["pareto"]]
    _say(f"  Pareto front: {len(front)} point(s); chart in {output / 'pareto.svg'}")
    if outcome.frame["status"].isin(("invalid", "error")).any():
        raise typer.Exit(EXIT_INVALID_INPUT)


@command("calibrate")
@handles_errors
def calibrate_command(
    measured: Annotated[Path | None, typer.Argument(
        metavar="MEASURED.csv",
        help="measurements CSV (default: docs/calibration/measured.csv of a source checkout)")] = None,
    write_cards: Annotated[bool, typer.Option("--write-cards", help="write the fitted (or, for "
                                              "cards without measurements, transferred) "
                                              "parameters into conditions/hardware/*.yaml")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="print the fit's progress")] = False,
) -> None:
    """Fit mfu, bandwidth utilization, per-layer overhead and collective parameters per GPU card
    on published measurements; print the error on rows and cards kept out of the fit."""
    from solver.calibration.calibrate import calibrate, summary_lines
    from solver.calibration.card_writer import write_cards as write_card_files

    result = calibrate(measured, progress=typer.echo if verbose else None)
    for line in summary_lines(result):
        typer.echo(line)
    if write_cards:
        for path in write_card_files(result):
            typer.echo(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry for `python -m solver.cli`
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
