"""The stated error per model family and GPU (solver/inputs/model_error.yaml) is the calibration's
statistic: rebuilt from docs/accuracy.csv it is the shipped file, and the planner's lookups return
the documented medians."""

from __future__ import annotations

from importlib import resources

import pytest

from solver.calibration.error_bands import bands_text
from solver.inputs.model_error import error_band
from tests.paths import REPO


def test_the_shipped_file_is_the_calibrations_statistic() -> None:
    shipped = resources.files("solver.inputs").joinpath("model_error.yaml").read_text(encoding="utf-8")
    assert bands_text(REPO / "docs" / "accuracy.csv") == shipped, (
        "solver/inputs/model_error.yaml is stale: run python scripts/accuracy.py")


@pytest.mark.parametrize("model, moe, gpu, basis", [
    ("mixtral-8x7b", True, "a100-sxm-80gb", "Mixtral on a100-sxm-80gb ("),
    ("llama-3.1-70b", False, "h100-sxm-80gb", "Llama-3 on h100-sxm-80gb ("),
    ("llama-3.1-8b", False, "gh200", "Llama-3 on every calibrated GPU ("),  # 3 on GH200
    ("mixtral-46.7b", True, "b200", "Mixtral on every calibrated GPU"),  # imported, uncalibrated GPU
    ("deepseek-v3", True, "h800", "MoE models on every calibrated GPU"),
    ("llama-2-70b", False, "h200-sxm-141gb", "dense models on h200-sxm-141gb"),  # no held-out Llama-2
])
def test_the_most_specific_group_with_enough_rows_is_used(model, moe, gpu, basis) -> None:
    """The value is the calibration's (checked above); the group is the most specific one."""
    band = error_band(model, moe, gpu)
    assert 0 < band.fraction < 1 and basis in band.basis
