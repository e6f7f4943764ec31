"""The `paraplan` command: a thin layer over the library. Errors become messages and exit codes.

One module per command group; importing them registers their commands on `app`, in the order
the command list shows them."""

from __future__ import annotations

import logging
from importlib import import_module

from solver.cli.common import app

COMMAND_MODULES = ("solve", "check", "conditions", "runs", "calibrate")
for _module in COMMAND_MODULES:
    import_module(f"solver.cli.{_module}")

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry for `python -m solver.cli`
    logging.basicConfig(level=logging.WARNING)
    app()
