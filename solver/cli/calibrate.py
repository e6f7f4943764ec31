"""`paraplan calibrate`: fit the cards' efficiencies to published measurements."""

from __future__ import annotations

from pathlib import Path

import click

from solver.cli.common import PATH, command, handles_errors
from solver.render.command_help import argument


@command("calibrate")
@argument("measured", "MEASURED.csv", "measurements CSV (default: docs/calibration/measured.csv of a "
          "source checkout)", type=PATH, required=False)
@click.option("--write-cards", is_flag=True, help="write the fitted (or, for cards without "
              "measurements, transferred) parameters into conditions/hardware/*.yaml")
@click.option("--verbose", is_flag=True, help="print the fit's progress")
@handles_errors
def calibrate_command(measured: Path | None, write_cards: bool, verbose: bool) -> None:
    """Fit mfu, bandwidth utilization, per-layer overhead and collective parameters per GPU card
    on published measurements; print the error on rows and cards kept out of the fit."""
    from solver.calibration.calibrate import calibrate, summary_lines
    from solver.calibration.card_writer import write_cards as write_card_files

    result = calibrate(measured, progress=click.echo if verbose else None)
    for line in summary_lines(result):
        click.echo(line)
    if write_cards:
        for path in write_card_files(result):
            click.echo(f"wrote {path}")
