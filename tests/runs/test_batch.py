"""`paraplan batch`: discovery, parallel solving, one row per condition, failures never stop it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from solver.cli import app
from solver.inputs.loading import read_mapping
from solver.runs.batch import SUMMARY_COLUMNS, Task, discover, progress, run_task
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
CONDITIONS = ROOT / "conditions"
BROKEN = ROOT / "tests" / "assets" / "bad" / "malformed.yaml"
# every top-level bundled condition except the DeepSeek-V3 ones (5-15 s each, too slow here;
# scripts and the acceptance run cover `paraplan batch conditions/` whole)
QUICK = sorted(p for p in CONDITIONS.glob("*.yaml") if not p.name.startswith("deepseek"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like conditions/: conditions, a broken file, an infeasible one, a GPU card, a plan
    file, a hidden folder and a non-condition JSON."""
    root = tmp_path_factory.mktemp("inputs")
    for path in QUICK:
        shutil.copy(path, root / path.name)
    (root / "nested").mkdir()
    shutil.copy(BROKEN, root / "nested" / "broken.yaml")
    infeasible = read_mapping(CONDITIONS / "llama70b-h100x8.yaml")
    infeasible.update(name="llama70b-tpot-0.5ms", slo={"tpot_ms": 0.5})
    (root / "nested" / "infeasible.json").write_text(json.dumps(infeasible), encoding="utf-8")
    (root / "hardware").mkdir()
    shutil.copy(CONDITIONS / "hardware" / "h100-sxm-80gb.yaml", root / "hardware")
    plan = next((CONDITIONS / "published").glob("*.plan.yaml"))
    shutil.copy(plan, root / plan.name)
    (root / ".hidden").mkdir()
    shutil.copy(CONDITIONS / "llama70b-h100x8.yaml", root / ".hidden" / "copy.yaml")
    (root / "notes.json").write_text('{"author": "me"}', encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def batch_run(inputs: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("batch") / "out"
    result = CliRunner().invoke(app, ["batch", str(inputs), "-o", str(out), "--jobs", "2"])
    assert "Traceback" not in result.output, result.output
    return result, out


def test_discovery_keeps_conditions_and_broken_files_and_skips_the_rest(inputs: Path) -> None:
    entries, skipped = discover(
        [
            inputs,
            inputs / "llama70b-h100x8.yaml",
            inputs / "missing.yaml",
            str(inputs / "*.nothing"),
        ]
    )
    sources = [Path(e.source).name for e in entries]
    assert sorted(sources[: len(QUICK) + 2]) == sorted(
        [p.name for p in QUICK] + ["broken.yaml", "infeasible.json"]
    )
    assert sources.count("llama70b-h100x8.yaml") == 1  # named again: not solved twice
    assert {Path(s).name for s in skipped} == {"h100-sxm-80gb.yaml", "notes.json"}
    assert not any(".plan." in s or "copy.yaml" in s for s in sources)
    errors = {Path(e.source).name: e.error for e in entries if e.error}
    assert "line" in errors["broken.yaml"]
    assert errors["missing.yaml"].endswith("no such file or folder")
    assert [Path(e.source).name for e in entries if e.missing] == ["missing.yaml", "*.nothing"]
    assert "no file matches" in errors["*.nothing"]
    assert len({e.folder for e in entries}) == len(entries)  # unique output folders


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
    assert by_name.loc["llama70b-tpot-0.5ms", "status"] == "infeasible"
    assert "tpot" in by_name.loc["llama70b-tpot-0.5ms", "error"]
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


def test_no_condition_found_is_an_input_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["batch", str(tmp_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no condition files found" in result.output


def test_run_task_never_raises() -> None:
    task = Task(name="x", source="<test>", data={"model": "no-such-model"}, default_name="x")
    result = run_task(task)
    assert result.row["status"] == "invalid" and "hardware" in result.row["error"]


def test_rich_progress_bar_on_a_terminal() -> None:
    rows = [
        {
            "name": "a",
            "status": "optimal",
            "tp": 2,
            "pp": 1,
            "dp": 1,
            "ep": 1,
            "etp": 1,
            "attn_dp": 1,
            "sp": 1,
            "batch": 8,
            "gpus_used": 2,
            "gpus_available": 2,
            "throughput_per_gpu": 1.0,
        },
        {"name": "b", "status": "invalid", "error": "bad"},
    ]
    with progress(2, print, tty=True) as advance:
        for row in rows:
            advance(row)


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
