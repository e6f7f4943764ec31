"""What every `paraplan` command shares: the Typer app, the options, printing, and the decorators
that turn errors into messages and exit codes and put --cards on the search path."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from solver.errors import EXIT_INVALID_INPUT, InfeasibleError, ParaplanError
from solver.render.command_help import registered_command
from solver.render.display import for_terminal
from solver.render.writer import FINISHED

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


def say(message: str) -> None:
    """Print to stdout; names and paths come from the user: control characters are escaped."""
    typer.echo(for_terminal(message))


def say_lines(lines: list[str]) -> None:
    for line in lines:
        say(line)


def err(message: str) -> None:
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
            err(f"infeasible: {exc}")
            for line in exc.binding:
                err(f"  binding: {line}")
            raise typer.Exit(exc.exit_code) from None
        except ParaplanError as exc:
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # output piped into `head`: nothing more to say
            raise typer.Exit(0) from None
        except KeyboardInterrupt as exc:
            err(_interrupted(exc))
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
            err(f"internal error: {type(exc).__name__}: {exc} (please report this with the input)")
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
