"""`paraplan calibrate`: fit the cards' efficiencies to published measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from solver.cli.common import command, handles_errors


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
