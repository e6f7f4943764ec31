"""What every `paraplan` command shares: the click group, the options, printing, and the decorators
that turn errors into messages and exit codes and put --cards on the search path."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from solver.errors import EXIT_INVALID_INPUT, InfeasibleError, ParaplanError
from solver.render.command_help import CommandList, registered_command
from solver.render.display import for_terminal
from solver.render.writer import FINISHED

# Start-up: `paraplan --help`, `schema`, `import` and every input error must not pay for OR-Tools
# (which imports pandas and pyarrow), Jinja2 or rich. Each command imports what it uses, and a
# condition is read and validated before the solver is imported (scripts/bench_startup.py). The
# CLI is plain click: typer (>= 0.2x) builds a pydantic TypeAdapter per parameter of the command
# run, about 50 ms of every command's start.

app = CommandList(name="paraplan", no_args_is_help=True,
                  help="Plan how to parallelize an LLM for inference, and prove the plan optimal.")

F = TypeVar("F", bound=Callable[..., Any])


command = functools.partial(registered_command, app)  # the command list shows full sentences
PATH = click.Path(path_type=Path)


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if math.isnan(value):
        raise click.BadParameter("not a number", ctx=ctx, param=param)
    return value


cards_option = click.option(
    "--cards", metavar="DIR", multiple=True, type=PATH, help="folder of your own model and GPU cards "
    "(models/*.yaml, hardware/*.yaml, or cards directly in it), searched before the bundled ones; "
    "repeatable; also the PARAPLAN_CARDS environment variable (folders separated by os.pathsep)")
out_dir_option = click.option("-o", "--output", metavar="DIR", type=PATH, required=True,
                              help="output folder")
method_option = click.option("--method", metavar="METHOD", type=click.Choice(["cp-sat", "exhaustive"]),
                              default="cp-sat", help="cp-sat or exhaustive")
jobs_option = click.option("--jobs", "-j", metavar="N", type=click.IntRange(min=1),
                           help="parallel solves (default: CPU count)")
executor_option = click.option("--executor", metavar="local|ray", default="local",
                               help="local (processes) or ray")


def workers_option(default: int, help: str) -> Callable[[F], F]:  # noqa: A002 - click's name
    return click.option("--workers", metavar="N", type=click.IntRange(1, 64), default=default, help=help)


def time_limit_option(help: str) -> Callable[[F], F]:  # noqa: A002 - click's name
    return click.option("--time-limit", metavar="SECONDS", type=click.FloatRange(min=0.01),
                        default=60.0, callback=_finite, help=help)


def say(message: str) -> None:
    """Print to stdout; names and paths come from the user: control characters are escaped."""
    click.echo(for_terminal(message))


def say_lines(lines: list[str]) -> None:
    for line in lines:
        say(line)


def err(message: str) -> None:
    click.echo(for_terminal(message), err=True)


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
        except (click.exceptions.Exit, click.ClickException):  # usage errors: click says them
            raise
        except InfeasibleError as exc:
            err(f"infeasible: {exc}")
            for line in exc.binding:
                err(f"  binding: {line}")
            raise click.exceptions.Exit(exc.exit_code) from None
        except ParaplanError as exc:
            err(f"error: {exc}")
            raise click.exceptions.Exit(exc.exit_code) from None
        except BrokenPipeError:  # output piped into `head`: nothing more to say
            raise click.exceptions.Exit(0) from None
        except KeyboardInterrupt as exc:
            err(_interrupted(exc))
            raise click.exceptions.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
            err(f"internal error: {type(exc).__name__}: {exc} (please report this with the input)")
            raise click.exceptions.Exit(EXIT_INVALID_INPUT) from None

    return wrapper  # type: ignore[return-value]


def searches_cards(func: F) -> F:
    """Put the command's --cards folders on the card search path (solver/inputs/card_library.py)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from solver.inputs.card_library import searching

        with searching(kwargs.get("cards") or ()):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
