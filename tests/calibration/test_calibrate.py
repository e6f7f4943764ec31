"""`paraplan calibrate`: the whole run and its summary, on the sample and on a bad file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from solver.cli import app
from tests.calibration.sample import SAMPLE


def test_cli_calibrate_on_the_sample(fast_fit: None) -> None:
    result = CliRunner().invoke(app, ["calibrate", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "held-out" in result.output and "| h100-sxm-80gb | bf16 |" in result.output
    assert "not usable:" in result.output and "GPT-J" in result.output


def test_cli_calibrate_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("model,gpu\nx,y\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calibrate", str(bad)])
    assert result.exit_code == 1
    assert "missing columns" in result.output
