"""Writing the fitted values into the hardware cards, and the calibration the shipped cards carry."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from solver.calibration import card_writer
from solver.calibration.calibrate import calibrate
from solver.calibration.card_writer import card_text, write_cards
from solver.calibration.fit import BOUNDS
from solver.calibration.parameters import GpuParams
from solver.inputs.card_library import bundled_folder
from solver.inputs.cards import GpuCard
from tests.calibration.sample import SAMPLE


def test_card_text_keeps_every_field_and_comment(tmp_path: Path) -> None:
    params = GpuParams(0.7, 12.5, {"fp8": 0.45, "bf16": 0.5})
    for path in sorted(bundled_folder("GPU").glob("*.yaml")):
        original = path.read_text(encoding="utf-8")
        text = card_text(original, params, "note")
        before, after = yaml.safe_load(original), yaml.safe_load(text)
        for key, value in before.items():
            if key not in ("efficiency", "layer_overhead_us", "calibration"):
                assert after[key] == value, (path.name, key)
        card = GpuCard.model_validate(after)
        assert card.efficiency["fp8"].mfu == 0.45 and card.layer_overhead_us == 12.5
        assert card.efficiency["fp16"].mfu == 0.5  # same tensor-core rate as bf16
        kept = card_writer._strip_keys(original, ("efficiency", "layer_overhead_us", "calibration"))
        comments = [c for c in kept if "#" in c and "default, to be" not in c]
        assert all(c in text for c in comments), path.name
        assert card_text(text, params, "note") == text  # rewriting is idempotent


def test_shipped_cards_carry_a_calibration_in_range() -> None:
    calibrated = 0
    for path in sorted(bundled_folder("GPU").glob("*.yaml")):
        card = GpuCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if not card.calibration:
            assert not card.efficiency
            continue
        calibrated += 1
        assert "measured.csv" in card.calibration and "held-out" in card.calibration
        assert all(0 < e.mfu <= 1 and 0 < e.memory_bandwidth_utilization <= 1
                   for e in card.efficiency.values())
        assert 0 <= card.layer_overhead_us <= BOUNDS["overhead"][1]
    assert calibrated >= 5  # h100, h200, gh200, a100, l40s


def test_write_cards_writes_loadable_cards(tmp_path: Path, fast_fit: None) -> None:
    for path in bundled_folder("GPU").glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    result = calibrate(SAMPLE)
    written = write_cards(result, tmp_path)
    assert {p.name for p in written} >= {"h100-sxm-80gb.yaml", "gh200.yaml"}
    for path in written:
        card = GpuCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        fitted = result.params[card.name]
        for precision, mfu in fitted.mfu.items():
            assert card.efficiency[precision].mfu == pytest.approx(mfu, abs=5e-4)
        assert "tests/assets/calibration_sample.csv" in card.calibration
        assert math.isclose(card.layer_overhead_us, fitted.layer_overhead_us, abs_tol=0.05)
