"""GPU names of hardware_env.json to cards (solver/importers/seed_json_hardware.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.errors import InputError
from solver.importers.seed_json_hardware import gpu_card_for

HW = Path("hardware_env.json")


@pytest.mark.parametrize(
    "name,card",
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm-80gb"),
        ("NVIDIA_H200", "h200-sxm-141gb"),  # not h20: "h200" is tried first
        ("H20", "h20"),
        ("A100-SXM4-80GB", "a100-sxm-80gb"),
        ("h800", "h800"),  # a card of exactly that name
    ],
)
def test_device_names_map_to_cards(name, card):
    assert gpu_card_for(name, HW, "gpu_name") == card


def test_unknown_device_names_the_key_and_the_known_cards():
    with pytest.raises(InputError, match=r"gpu_name: GPU 'H2000' matches no card"):
        gpu_card_for("H2000", HW, "gpu_name")
