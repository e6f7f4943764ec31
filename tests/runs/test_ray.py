"""--executor ray: batch and sweep tasks on a local Ray instance (2 CPUs) give the local results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.runs.batch import run_batch
from solver.runs.executors import ExecutorSpec, ray_available

REASON = ray_available()
if REASON:
    pytest.skip(f"{REASON} - the Ray executor was not tested", allow_module_level=True)

import ray  # noqa: E402

from tests.paths import REPO as REPO_ROOT  # noqa: E402

ROOT = REPO_ROOT
CONDITIONS = ROOT / "conditions"
BROKEN = ROOT / "tests" / "assets" / "bad" / "malformed.yaml"
COMPARED = ["name", "status", "tp", "pp", "dp", "ep", "etp", "attn_dp", "sp", "batch", "gpus_used"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield
    ray.shutdown()


def test_batch_on_ray_matches_local_processes(local_ray, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("llama8b-l40sx2.yaml", "qwen3-30b-a3b-h100x2.yaml", "mixtral8x7b-a100x4.yaml"):
        shutil.copy(CONDITIONS / name, inputs / name)
    shutil.copy(BROKEN, inputs / "broken.yaml")
    on_ray = run_batch(
        [inputs], tmp_path / "ray", spec=ExecutorSpec(kind="ray"), echo=lambda _: None, tty=False
    )
    local = run_batch(
        [inputs], tmp_path / "local", spec=ExecutorSpec(jobs=2), echo=lambda _: None, tty=False
    )
    assert on_ray.solved == 3 and on_ray.failed == 1
    pd.testing.assert_frame_equal(on_ray.frame[COMPARED], local.frame[COMPARED])
    assert (tmp_path / "ray" / "llama8b-l40sx2" / "report.html").is_file()


def test_sweep_cli_on_ray(local_ray, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            str(CONDITIONS / "llama8b-l40sx2.yaml"),
            "--set",
            "workload.max_batch_size=8,64",
            "-o",
            str(out),
            "--executor",
            "ray",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "summary.csv")
    assert list(frame["status"]) == ["optimal", "optimal"]
    assert ray.is_initialized()  # the executor reused the running instance and left it running
