"""`paraplan --help` as a reader expects it: commands listed in the order they are registered, each
with its docstring's first paragraph in full (click cuts it at 45 characters, mid-sentence), the
usage line naming arguments by their metavar (`CONDITION [PLAN]`, `PATHS...`), an Arguments section
with each argument's help (click's arguments have none), and every option's default shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class CommandList(click.Group):
    """A group that lists its commands in the order they were added, not alphabetically, and ends
    a usage error (unknown option, bad value, missing argument) with `usage_exit_code`: paraplan's
    exit 2 means infeasible, so bad input on the command line exits 1 like bad input in a file."""

    usage_exit_code = 1

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:  # the group's own options
        with self._usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:  # the command's options and arguments
        with self._usage_errors():
            return super().invoke(ctx)

    @contextmanager
    def _usage_errors(self) -> Iterator[None]:
        try:
            yield
        except click.UsageError as exc:
            exc.exit_code = self.usage_exit_code
            raise


def registered_command(app: click.Group, name: str) -> Callable[[F], F]:
    """app.command with the docstring's first paragraph as the command list's line and the plain
    usage and Arguments section of PlainHelpCommand; every option shows its default."""
    def register(func: F) -> F:
        first = " ".join((func.__doc__ or "").strip().split("\n\n")[0].split())
        return app.command(name, short_help=first, cls=PlainHelpCommand,  # type: ignore[return-value]
                           context_settings={"show_default": True})(func)

    return register


class HelpArgument(click.Argument):
    """A positional argument with a help text, listed under Arguments in --help."""

    def __init__(self, *args: Any, help: str = "", **kwargs: Any) -> None:  # noqa: A002 - click's name
        super().__init__(*args, **kwargs)
        self.help = help

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        return _argument_name(self), self.help + ("  [required]" if self.required else "")


def argument(name: str, metavar: str, help: str, **kwargs: Any) -> Callable[[F], F]:  # noqa: A002
    """click.argument with a help text (HelpArgument)."""
    return click.argument(name, metavar=metavar, cls=HelpArgument, help=help, **kwargs)


def _argument_name(param: Any) -> str:
    return param.metavar or (param.name or "").upper()


class PlainHelpCommand(click.Command):
    """A command whose usage line and Arguments section use the parameters' metavars."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = _argument_name(param) + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            (arguments if param.param_type_name == "argument" else options).append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
