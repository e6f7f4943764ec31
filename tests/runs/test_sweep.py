"""`paraplan sweep`: --set parsing, fail-fast validation naming the key, cross product, Pareto."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.runs.sweep import pareto_front, pareto_mask
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
BASE = ROOT / "conditions" / "llama8b-l40sx2.yaml"
LLAMA70B = ROOT / "conditions" / "llama70b-h100x8.yaml"


def invoke(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_pareto_mask_maximizes_both() -> None:
    xs = [10, 20, 15, 20, None, 5, 10]
    ys = [100, 50, 60, 40, 999, 100, 100]
    # (20,50) beats (20,40); (15,60) is not beaten; (10,100) beats (5,100); ties are both kept
    assert pareto_mask(xs, ys) == [True, True, True, False, False, False, True]


# ---- fail fast, before solving -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "key", "reason"),
    [
        (["hardware.num_nodes=1,two"], "hardware.num_nodes", "valid integer"),
        (["hardware.num_nodes=1,2.5"], "hardware.num_nodes", "valid integer"),
        (["workload.max_batch_size=8,0"], "workload.max_batch_size", "greater than 0"),
        (["precision.weights=fp8,fp7"], "precision.weights", "fp7"),
        (["model=llama-3.1-8b,llama-3.1-8c"], "model", "did you mean"),
        (["hardware.num_nodez=1,2"], "hardware.num_nodez", "did you mean 'hardware.num_nodes'"),
    ],
)
def test_invalid_points_fail_before_any_solving(
    tmp_path: Path, sets: list[str], key: str, reason: str
) -> None:
    out = tmp_path / "out"
    args = ["sweep", BASE, "-o", out]
    for s in sets:
        args += ["--set", s]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert key in result.output and reason in result.output, result.output
    assert not out.exists()  # nothing solved, nothing written
    assert "[1/" not in result.output


def test_conflicting_values_name_the_point(tmp_path: Path) -> None:
    result = invoke("sweep", BASE, "--set", "hardware.max_gpus=4", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "max_gpus=4" in result.output and "num_nodes" in result.output


# ---- a real sweep --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    result = invoke(
        "sweep",
        BASE,
        "--set",
        "workload.max_batch_size=4,64",
        "--set",
        "slo.tpot_ms=0.5,50",
        "--set",
        "precision.weights=fp8,bf16",
        "-o",
        out,
        "--plans",
        "--jobs",
        "2",
    )
    return result, out


def test_sweep_cross_product_summary_and_pareto(sweep_run) -> None:
    result, out = sweep_run
    assert result.exit_code == 0, result.output  # infeasible points are results, not failures
    frame = pd.read_parquet(out / "summary.parquet")
    assert len(frame) == 8
    for key in ("workload.max_batch_size", "slo.tpot_ms", "precision.weights", "pareto"):
        assert key in frame.columns
    assert set(frame["workload.max_batch_size"]) == {4, 64}
    assert (frame[frame["slo.tpot_ms"] == 0.5]["status"] == "infeasible").all()
    solved = frame[frame["status"] == "optimal"]
    assert len(solved) == 4
    assert frame["pareto"].sum() >= 1 and not frame[frame["status"] != "optimal"]["pareto"].any()
    for _, row in solved.iterrows():  # batch limit respected; names carry the point's values
        assert row["batch"] <= row["workload.max_batch_size"]
        assert f"max_batch_size={row['workload.max_batch_size']}" in row["name"]
    best = solved.loc[solved["throughput_per_gpu"].idxmax()]
    assert bool(best["pareto"])


def test_sweep_writes_chart_report_and_plan_folders(sweep_run) -> None:
    _, out = sweep_run
    svg = (out / "pareto.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "chart-pareto" in svg and "<circle" in svg
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Pareto front" in html and "chart-pareto" in html
    frame = pd.read_csv(out / "summary.csv")
    for folder in frame["plan_dir"].dropna():
        plan = json.loads((out / folder / "plan.json").read_text(encoding="utf-8"))
        assert plan["condition"] == frame.set_index("plan_dir").loc[folder, "name"]
        assert (out / folder / "report.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert {Path(p) for p in manifest["files"]} == {p for p in out.rglob("*") if p.is_file()}


def test_model_sweep_without_plans_is_summary_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("sweep", BASE, "--set", "model=llama-3.1-8b,mistral-7b", "-o", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "summary.csv")
    assert list(frame["model"]) == ["llama-3.1-8b", "mistral-7b"]
    assert frame["plan_dir"].isna().all()
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "pareto.svg",
        "report.html",
        "summary.csv",
        "summary.parquet",
    ]


# ---- issue 15: capacity and cost, so a capacity planner can choose a GPU count -------------------


def test_a_gpu_count_sweep_keeps_every_count_on_the_front() -> None:
    """1, 2 and 4 nodes: the same speed per user, per-GPU throughput a little lower on more nodes
    (inter-node traffic), capacity higher. Per-GPU figures alone kept only the smallest cluster; with
    capacity up and GPUs down every count is a trade-off a planner can choose."""
    per_user, per_gpu, gpus = [50.0, 50.0, 50.0], [400.0, 395.0, 390.0], [8, 16, 32]
    capacity = [g * t for g, t in zip(gpus, per_gpu, strict=True)]
    gpu_hours = [g * 1e6 / (c * 3600) for g, c in zip(gpus, capacity, strict=True)]
    assert pareto_mask(per_user, per_gpu) == [True, False, False]  # the collapse of the issue
    assert pareto_front([per_user, capacity, gpus, gpu_hours], [True, True, False, False]) == [
        True, True, True]


def test_the_summary_has_capacity_and_cost_per_million_tokens(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(BASE.read_text())
    data["hardware"]["gpu_hour_usd"] = 2.5
    priced = tmp_path / "priced.yaml"
    priced.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = invoke("sweep", priced, "--set", "hardware.num_nodes=1,2", "-o", out, "-j", "1")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "summary.csv")
    for _, row in frame.iterrows():
        assert row["requests_per_s"] == pytest.approx(row["throughput"] / 256, rel=1e-4)
        hours = row["gpus_used"] * 1e6 / (row["throughput"] * 3600)
        assert row["gpu_hours_per_million_tokens"] == pytest.approx(hours, rel=1e-4)
        assert row["cost_per_million_tokens_usd"] == pytest.approx(2.5 * hours, rel=1e-4)
    assert frame["pareto"].all()  # 2 and 4 GPUs: both on the front
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "What capacity costs" in html and "$ per million output tokens" in html
