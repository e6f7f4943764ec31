"""`paraplan --help` as a reader expects it: click's plain usage (`CONDITION [PLAN]`, `PATHS...`),
arguments named by their metavar without a type tag, and options that show their metavar or
nothing (a flag). typer 0.2x writes `{condition}` for a required argument, `condition <path>` in
the argument list and, depending on the version, `<bool>` beside a flag; none of that is the
command's syntax."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand

# typer 0.2x vendors its own click (typer._click): parameters, contexts and formatters are typed
# loosely here, and flags are recognized by their attributes, whichever click made them

F = TypeVar("F", bound=Callable[..., Any])


def registered_command(app: typer.Typer, name: str) -> Callable[[F], F]:
    """app.command with the docstring's first paragraph as the command list's line (click would cut
    it at 45 characters, mid-sentence) and the plain usage of PlainHelpCommand."""
    def register(func: F) -> F:
        first = " ".join((func.__doc__ or "").strip().split("\n\n")[0].split())
        return app.command(name, short_help=first, cls=PlainHelpCommand)(func)  # type: ignore

    return register


def _argument_name(param: Any) -> str:
    return param.metavar or (param.name or "").upper()


class PlainHelpCommand(TyperCommand):
    """A typer command whose usage line and argument list use the parameters' metavars."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = _argument_name(param) + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(_flag_record(param, record))
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _flag_record(param: Any, record: tuple[str, str]) -> tuple[str, str]:
    """A flag's names without a value placeholder (`--json`, not `--json <bool>`), as click writes
    them: short names first, `--flag / --no-flag` for a pair."""
    if param.param_type_name == "option" and (getattr(param, "is_flag", False)
                                              or getattr(param, "count", False)):
        def names(opts: list[str]) -> str:
            return ", ".join(sorted(opts, key=lambda o: len(o) - len(o.lstrip("-"))))

        text = names(param.opts)
        if param.secondary_opts:
            text += " / " + names(param.secondary_opts)
        return text, record[1]
    return record
