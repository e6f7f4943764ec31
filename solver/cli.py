"""The `paraplan` command: a thin layer over the library. Errors become messages and exit codes."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from solver.check import check_plan
from solver.condition import condition_schema, load_condition
from solver.errors import EXIT_INVALID_INPUT, EXIT_VIOLATIONS, InfeasibleError, ParaplanError
from solver.formulation import SolverSettings
from solver.planner import solve
from solver.report import render_all
from solver.writer import dump_json, write_outputs

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Plan how to parallelize an LLM for inference, and prove the plan optimal.")

F = TypeVar("F", bound=Callable[..., Any])


def _err(message: str) -> None:
    typer.echo(message, err=True)


def handles_errors(func: F) -> F:
    """Turn paraplan errors (and anything unexpected) into a message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
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
        except KeyboardInterrupt:
            _err("interrupted: nothing was written")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
            _err(f"internal error: {type(exc).__name__}: {exc} (please report this with the input)")
            raise typer.Exit(EXIT_INVALID_INPUT) from None

    return wrapper  # type: ignore[return-value]


@app.command("solve")
@handles_errors
def solve_command(
    condition: Annotated[Path, typer.Argument(help="condition file (YAML or JSON)")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="output folder")] = None,
    method: Annotated[str, typer.Option(help="cp-sat or exhaustive")] = "cp-sat",
    time_limit: Annotated[float, typer.Option(help="CP-SAT time limit, seconds", min=0.01)] = 60.0,
    workers: Annotated[int, typer.Option(help="CP-SAT worker threads", min=1, max=64)] = 2,
    seed: Annotated[int, typer.Option(help="CP-SAT random seed")] = 0,
    log_search: Annotated[bool, typer.Option(help="print CP-SAT's search log")] = False,
) -> None:
    """Solve a condition: write plan.json, plan.md, balance.csv and manifest.json."""
    if method not in ("cp-sat", "exhaustive"):
        raise typer.BadParameter("method must be cp-sat or exhaustive")
    cond = load_condition(condition)
    settings = SolverSettings(time_limit_s=time_limit, num_workers=workers, random_seed=seed,
                              log_search_progress=log_search)
    solution = solve(cond, method=method, settings=settings)
    outdir = output or Path("plans") / _safe_name(cond.name)
    files = render_all(cond, solution.plan, solution.checks, solution.problem)
    written = write_outputs(outdir, files)
    p, m = solution.plan, solution.plan.metrics
    typer.echo(f"{p.status}: {p.parallelism.shape().label}, batch {p.batch_size}, "
               f"{p.gpus.used}/{p.gpus.available} GPUs ({p.solver.seconds:.2f} s)")
    typer.echo(f"  TTFT {m.ttft_ms:,.1f} ms  TPOT {m.tpot_ms:,.2f} ms  "
               f"{m.throughput_tokens_per_s:,.0f} tok/s ({m.throughput_tokens_per_s_per_gpu:,.1f}/GPU)")
    typer.echo(f"  model divided into {p.gpus.model_parts} parts = {p.gpus.used} GPUs used")
    for path in written:
        typer.echo(f"  wrote {path}")


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._")
    return cleaned or "plan"


@app.command("check")
@handles_errors
def check_command(
    condition: Annotated[Path, typer.Argument(help="condition file")],
    plan: Annotated[Path, typer.Argument(help="plan.json, or a YAML {tp, pp, dp, ..., batch_size}")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Evaluate a given plan: metrics and every violated constraint. Exit 3 on violations."""
    cond = load_condition(condition)
    result = check_plan(cond, plan)
    failed = result.violations
    if as_json:
        typer.echo(dump_json({
            "valid": not failed,
            "metrics": result.plan.metrics.model_dump() if result.plan else None,
            "parallelism": result.plan.parallelism.model_dump() if result.plan else None,
            "checks": [c.model_dump() for c in result.checks],
        }).rstrip())
    else:
        if result.plan is not None:
            m = result.plan.metrics
            typer.echo(f"{result.plan.parallelism.shape().label}, batch {result.plan.batch_size}: "
                       f"TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms, "
                       f"{m.throughput_tokens_per_s:,.0f} tok/s ({m.throughput_tokens_per_s_per_gpu:,.1f}/GPU)")
        for c in failed:
            typer.echo(f"VIOLATED {c.name}: {c.value} (limit {c.limit})")
        typer.echo("valid: every hard constraint holds" if not failed
                   else f"{len(failed)} violation(s)")
    if failed:
        raise typer.Exit(EXIT_VIOLATIONS)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the condition file (for editors)."""
    typer.echo(json.dumps(condition_schema(), indent=2))


def main() -> None:  # pragma: no cover - console entry for `python -m solver.cli`
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
