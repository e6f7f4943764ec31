"""`paraplan batch`: discovery, parallel solving, one row per condition, failures never stop it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.inputs.loading import read_mapping
from solver.runs.rows import SUMMARY_COLUMNS
from solver.runs.tasks import Task, run_task
from tests.runs.inputs import CONDITIONS, QUICK, make_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def batch_run(inputs: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("batch") / "out"
    result = CliRunner().invoke(app, ["batch", str(inputs), "-o", str(out), "--jobs", "2"])
    assert "Traceback" not in result.output, result.output
    return result, out


def test_batch_solves_every_good_file_and_reports_the_broken_one(batch_run) -> None:
    result, out = batch_run
    assert result.exit_code == 1, result.output  # something failed
    frame = pd.read_csv(out / "summary.csv")
    assert list(frame.columns) == list(SUMMARY_COLUMNS)
    by_name = frame.set_index("name")
    for path in QUICK:
        name = read_mapping(path).get("name", path.stem)
        assert by_name.loc[name, "status"] == "optimal", by_name.loc[name, "error"]
        assert (out / name / "report.html").is_file() and (out / name / "plan.json").is_file()
    assert by_name.loc["broken", "status"] == "invalid"
    assert "invalid YAML" in by_name.loc["broken", "error"]
    assert by_name.loc["llama8b-tpot-0.5ms", "status"] == "infeasible"
    assert "tpot" in by_name.loc["llama8b-tpot-0.5ms", "error"]
    assert len(frame) == len(QUICK) + 2


def test_summary_numbers_match_the_plan_files(batch_run) -> None:
    _, out = batch_run
    frame = pd.read_parquet(out / "summary.parquet")
    assert str(frame["tp"].dtype) == "Int64" and str(frame["ttft_ms"].dtype) == "float64"
    row = frame[frame["name"] == "llama70b-h100x8"].iloc[0]
    plan = json.loads((out / row["plan_dir"] / "plan.json").read_text(encoding="utf-8"))
    assert row["tp"] == plan["parallelism"]["tp"] and row["batch"] == plan["batch_size"]
    assert row["throughput_per_gpu"] == pytest.approx(
        plan["metrics"]["throughput_tokens_per_s_per_gpu"]
    )
    assert row["tokens_per_s_per_user"] == pytest.approx(1000 / plan["metrics"]["tpot_ms"])
    assert row["balance_max_mean"] >= 1.0 and row["solve_seconds"] > 0


def test_manifest_lists_every_written_path(batch_run) -> None:
    _, out = batch_run
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    listed = {Path(p) for p in manifest["files"]}
    on_disk = {p for p in out.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert any("skipped" in note for note in manifest["notes"])
    assert not [p for p in out.rglob(".*")], "temporaries left behind"


def test_batch_report_and_plain_progress(batch_run) -> None:
    result, out = batch_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "llama70b-h100x8/report.html" in html and "invalid" in html
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert len(lines) == len(QUICK) + 2  # one plain line per condition (not a terminal)
    assert "batch:" in result.output


def test_all_good_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["batch", str(CONDITIONS / "llama8b-l40sx2.yaml"), "-o", str(out), "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "summary.parquet").is_file()


def test_disaggregated_and_auto_conditions_are_planned_in_their_mode(tmp_path: Path) -> None:
    """A batch row of a disaggregated plan: the decode pool's degrees, the whole cluster's GPUs and
    the request's metrics, as in its plan.json."""
    auto = CONDITIONS / "llama8b-h100x8-auto.yaml"
    data = read_mapping(auto) | {"name": "pools", "serving": {"mode": "disaggregated"}}
    (tmp_path / "pools.json").write_text(json.dumps(data), encoding="utf-8")
    shutil.copy(auto, tmp_path / auto.name)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(tmp_path), "-o", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out / "summary.parquet").set_index("name")
    assert set(frame["status"]) == {"optimal"} and len(frame) == 2
    plan = json.loads((out / frame.loc["pools", "plan_dir"] / "plan.json").read_text(encoding="utf-8"))
    assert plan["pools"]["prefill"]["instances"] >= 1 and plan["pools"]["decode"]["instances"] >= 1
    assert frame.loc["pools", "gpus_used"] == plan["gpus"]["used"]
    assert frame.loc["pools", "throughput"] == pytest.approx(plan["metrics"]["throughput_tokens_per_s"])
    assert frame.loc["pools", "tp"] == plan["parallelism"]["tp"]


def test_no_condition_found_is_an_input_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["batch", str(tmp_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no condition files found" in result.output


def test_run_task_never_raises() -> None:
    task = Task(name="x", source="<test>", data={"model": "no-such-model"}, default_name="x")
    result = run_task(task)
    assert result.row["status"] == "invalid" and "hardware" in result.row["error"]


def test_a_condition_that_fails_on_rerun_keeps_no_stale_plan(tmp_path: Path) -> None:
    condition, out = tmp_path / "c.yaml", tmp_path / "out"
    shutil.copy(CONDITIONS / "llama8b-l40sx2.yaml", condition)
    name = read_mapping(condition)["name"]
    assert (
        CliRunner().invoke(app, ["batch", str(condition), "-o", str(out), "-j", "1"]).exit_code == 0
    )
    (out / name / "notes.txt").write_text("mine", encoding="utf-8")
    broken = read_mapping(condition) | {"model": "no-such-model"}  # parses (name known), invalid
    condition.write_text(json.dumps(broken), encoding="utf-8")
    assert (
        CliRunner().invoke(app, ["batch", str(condition), "-o", str(out), "-j", "1"]).exit_code == 1
    )
    assert sorted(p.name for p in (out / name).iterdir()) == ["notes.txt"]
