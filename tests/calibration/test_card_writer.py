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
from solver.calibration.measurements import ROLE_TRAIN, role
from solver.calibration.parameters import GpuParams
from solver.calibration.transfer import Fitted, transfer
from solver.inputs.card_library import bundled_folder
from solver.inputs.cards import GpuCard
from tests.calibration.sample import SAMPLE

# what --write-cards owns in a card (and replaces); every other line is kept
OWNED = ("efficiency", "layer_overhead_us", "collective_latency_us", "link_bandwidth_utilization",
         "calibration")


def test_card_text_keeps_every_field_and_comment(tmp_path: Path) -> None:
    params = GpuParams(0.7, 12.5, {"fp8": 0.45, "bf16": 0.5})
    for path in sorted(bundled_folder("GPU").glob("*.yaml")):
        original = path.read_text(encoding="utf-8")
        text = card_text(original, params, "note")
        before, after = yaml.safe_load(original), yaml.safe_load(text)
        for key, value in before.items():
            if key not in OWNED:
                assert after[key] == value, (path.name, key)
        card = GpuCard.model_validate(after)
        assert card.efficiency["fp8"].mfu == 0.45 and card.layer_overhead_us == 12.5
        assert card.efficiency["fp16"].mfu == 0.5  # same tensor-core rate as bf16
        kept = card_writer._strip_keys(original, OWNED)
        comments = [c for c in kept if "#" in c and "default, to be" not in c]
        assert all(c in text for c in comments), path.name
        assert card_text(text, params, "note") == text  # rewriting is idempotent


def test_shipped_cards_carry_a_calibration_in_range() -> None:
    measured = transferred = 0
    for path in sorted(bundled_folder("GPU").glob("*.yaml")):
        card = GpuCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        assert card.calibration and card.architecture, path.name  # every bundled card
        if card.calibration.startswith("Not measured"):
            transferred += 1
            assert "leave-one-card-out" in card.calibration
        else:
            measured += 1
            assert "measured.csv" in card.calibration and "held-out" in card.calibration
        assert all(0 < e.mfu <= 1 and 0 < e.memory_bandwidth_utilization <= 1
                   for e in card.efficiency.values())
        assert set(card.dense_tflops) <= set(card.efficiency)  # every precision it has a rate for
        assert 0 <= card.layer_overhead_us <= BOUNDS["overhead"][1]
        assert 0 <= card.collective_latency_us <= BOUNDS["alpha"][1]
    assert measured >= 5 and transferred >= 4  # h100 h200 gh200 a100 l40s; h800 h20 b200 mi300x


def test_h800_takes_the_h100_fit() -> None:
    """The identical device (same die, memory and clocks): the H100's parameters, verbatim."""
    cards = {n: GpuCard.model_validate(yaml.safe_load(
        (bundled_folder("GPU") / f"{n}.yaml").read_text(encoding="utf-8")))
        for n in ("h800", "h100-sxm-80gb")}
    h800, h100 = cards["h800"], cards["h100-sxm-80gb"]
    assert h800.efficiency == h100.efficiency
    assert (h800.layer_overhead_us, h800.collective_latency_us, h800.link_bandwidth_utilization) == (
        h100.layer_overhead_us, h100.collective_latency_us, h100.link_bandwidth_utilization)
    assert "h100-sxm-80gb" in h800.calibration


def test_write_cards_writes_loadable_cards(tmp_path: Path, fast_fit: None) -> None:
    for path in bundled_folder("GPU").glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    result = calibrate(SAMPLE)
    written = write_cards(result, tmp_path)
    assert {p.name for p in written} >= {"h100-sxm-80gb.yaml", "gh200.yaml", "b200.yaml"}
    fitted = Fitted.of(result.params, [r for r in result.rows if role(r) == ROLE_TRAIN])
    for path in written:
        card = GpuCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        assert "tests/assets/calibration_sample.csv" in card.calibration
        if card.name in fitted.params:
            expected = result.params[card.name]
        else:  # no training rows in the sample: transferred from the fitted cards
            assert card.calibration.startswith("Not measured")
            expected, _ = transfer(card, fitted)
        for precision, mfu in expected.mfu.items():
            assert card.efficiency[precision].mfu == pytest.approx(mfu, abs=5e-4)
        assert math.isclose(card.layer_overhead_us, expected.layer_overhead_us, abs_tol=0.05)
        assert math.isclose(card.collective_latency_us, expected.collective_latency_us, abs_tol=0.05)
