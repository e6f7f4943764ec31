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


@pytest.mark.parametrize("model, moe, gpu, fraction, basis", [
    ("mixtral-8x7b", True, "a100-sxm-80gb", 0.1852, "Mixtral on a100-sxm-80gb (12 rows"),
    ("llama-3.1-70b", False, "h100-sxm-80gb", 0.0932, "Llama-3 on h100-sxm-80gb (16 rows"),
    ("llama-3.1-8b", False, "gh200", 0.0777, "Llama-3 on every calibrated GPU (52 rows"),  # 3 on GH200
    ("mixtral-46.7b", True, "b200", 0.1777, "Mixtral on every calibrated GPU"),  # imported, uncalibrated GPU
    ("deepseek-v3", True, "h800", 0.1777, "MoE models on every calibrated GPU"),
    ("llama-2-70b", False, "h200-sxm-141gb", 0.1004, "dense models on h200-sxm-141gb"),  # no held-out Llama-2
])
def test_the_most_specific_group_with_enough_rows_is_used(model, moe, gpu, fraction, basis) -> None:
    band = error_band(model, moe, gpu)
    assert band.fraction == fraction and basis in band.basis
