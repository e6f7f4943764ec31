"""The JSON trio (solver/importers/seed_json*.py): a folder, its hardware_env.json or its model file
imports to one condition; GPU names map to cards; inconsistent nodes are errors naming the key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from solver.errors import InputError
from solver.importers.registry import detect, load_any_condition
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
SEED = ROOT / "tests" / "assets" / "seed-formats"  # copies of the reference inputs (README there)
TRIO = SEED / "json-trio"
FAST = SolverSettings(time_limit_s=10.0, num_workers=2)


def test_trio_imports_from_folder_hardware_file_and_model_file():
    by_folder = load_any_condition(TRIO)
    assert load_any_condition(TRIO / "hardware_env.json").model == by_folder.model
    assert detect(TRIO / "model_params.json") == "trio"
    c = by_folder
    assert c.model_ref == "inline" and c.model.num_hidden_layers == 80 and not c.model.is_moe
    assert c.gpu_ref == "h100-sxm-80gb" and c.cluster.num_gpus == 8
    assert c.cluster.intra_node_bytes_per_s == 400e9 and c.cluster.usable_memory_fraction == 0.85
    assert (c.slo.ttft_ms, c.slo.tpot_ms, c.slo.e2e_latency_ms) == (500, 50, 30_000)
    assert c.workload.max_batch_size == 64 and c.workload.prefill_chunk_tokens == 8192
    assert c.precision.weights == "fp16"
    text = "\n".join(c.raw["assumptions"])
    assert "target_requests_per_second" in text and "rope_theta" in text and "GB/s" in text
    plan = solve(c, settings=FAST).plan
    assert plan.status == "optimal" and plan.metrics.ttft_ms <= 500


def _copy_trio(tmp_path: Path) -> Path:
    folder = tmp_path / "trio"
    shutil.copytree(TRIO, folder)
    return folder


def test_trio_unknown_gpu_names_the_key(tmp_path):
    folder = _copy_trio(tmp_path)
    hw = json.loads((folder / "hardware_env.json").read_text())
    for dev in hw["nodes"][0]["gpu_devices"]:
        dev["gpu_name"] = "Acme_X9"
    (folder / "hardware_env.json").write_text(json.dumps(hw))
    with pytest.raises(InputError, match=r"gpu_devices\[0\]\.gpu_name.*Acme_X9"):
        load_any_condition(folder)


def test_trio_memory_override_and_total_mismatch(tmp_path):
    folder = _copy_trio(tmp_path)
    hw = json.loads((folder / "hardware_env.json").read_text())
    for dev in hw["nodes"][0]["gpu_devices"]:
        dev["gpu_memory_gb"] = 94
    (folder / "hardware_env.json").write_text(json.dumps(hw))
    assert load_any_condition(folder).cluster.gpu.memory_gb == 94
    hw["cluster"]["total_gpus"] = 16
    (folder / "hardware_env.json").write_text(json.dumps(hw))
    with pytest.raises(InputError, match="cluster.total_gpus"):
        load_any_condition(folder)
