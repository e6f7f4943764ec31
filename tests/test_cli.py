"""The `paraplan` command end to end: solve, check, schema, exit codes and what gets written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from tests.paths import ASSETS as ALL_ASSETS
from tests.paths import REPO

CONDITIONS = REPO / "conditions"
ASSETS = ALL_ASSETS / "good"
SMALL = ASSETS / "llama8b-l40sx2.yaml"
LLAMA70B = CONDITIONS / "llama70b-h100x8.yaml"

OUTPUT_FILES = ("plan.json", "plan.md", "balance.csv", "report.html", "manifest.json")
DEVICE_KEYS = {"gpu", "node", "local_rank", "replica", "stage", "tp_rank", "ep_rank", "first_layer",
               "last_layer", "experts", "memory_gb", "memory_breakdown_gb"}


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("solved") / "out"
    result = invoke("solve", SMALL, "-o", out, "--time-limit", "20")
    assert result.exit_code == 0, result.output
    return out


def test_solve_writes_the_four_files_and_the_manifest_lists_them(solved: Path) -> None:
    for name in OUTPUT_FILES:
        assert (solved / name).is_file(), name
    manifest = json.loads((solved / "manifest.json").read_text(encoding="utf-8"))
    listed = {Path(p).name for p in manifest["files"]}
    assert listed >= set(OUTPUT_FILES), listed  # later features may add files (report.html, ...)
    assert listed == {p.name for p in solved.iterdir()}, "manifest and folder disagree"
    for entry in manifest["files"]:  # every listed path exists as written
        assert Path(entry).is_file() or (solved / Path(entry).name).is_file()
    assert not list(solved.glob(".*.tmp")), "atomic-write temporaries left behind"


def test_solve_prints_a_summary_and_the_written_paths(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("solve", SMALL, "-o", out, "--time-limit", "20")
    assert result.exit_code == 0, result.output
    assert "GPUs" in result.stdout and "TTFT" in result.stdout
    for name in OUTPUT_FILES:
        assert name in result.stdout


def test_plan_json_shape(solved: Path) -> None:
    plan = json.loads((solved / "plan.json").read_text(encoding="utf-8"))
    for key in ("schema_version", "condition", "status", "parallelism", "batch_size", "gpus",
                "stages", "devices", "metrics", "solver"):
        assert key in plan, key
    assert set(plan["parallelism"]) >= {"tp", "pp", "dp", "ep", "etp", "attn_dp", "sp"}
    assert all(isinstance(v, int) and v >= 1 for v in plan["parallelism"].values())
    assert set(plan["gpus"]) >= {"available", "used"}
    assert plan["gpus"]["available"] == 2
    assert 1 <= plan["gpus"]["used"] <= plan["gpus"]["available"]
    assert plan["condition"] == "tiny-llama8b"
    assert plan["status"] == "optimal"
    assert isinstance(plan["batch_size"], int) and 1 <= plan["batch_size"] <= 64
    assert plan["stages"], "no stages"
    assert len(plan["devices"]) == plan["gpus"]["used"]
    for device in plan["devices"]:
        missing = DEVICE_KEYS - set(device)
        assert not missing, missing
        assert device["first_layer"] <= device["last_layer"]
        assert device["memory_gb"] > 0
        assert isinstance(device["memory_breakdown_gb"], dict)
    layers = sorted({(d["first_layer"], d["last_layer"]) for d in plan["devices"]})
    assert layers[0][0] == 0 and layers[-1][1] == 31  # Llama-3.1-8B: 32 layers, all placed
    assert plan["metrics"]["objective"] > 0
    assert plan["solver"]["method"] == "cp-sat"


def test_exhaustive_method_finds_the_same_objective(solved: Path, tmp_path: Path) -> None:
    out = tmp_path / "exhaustive"
    result = invoke("solve", SMALL, "-o", out, "--method", "exhaustive")
    assert result.exit_code == 0, result.output
    cp_sat = json.loads((solved / "plan.json").read_text(encoding="utf-8"))["metrics"]["objective"]
    oracle = json.loads((out / "plan.json").read_text(encoding="utf-8"))["metrics"]["objective"]
    assert oracle == pytest.approx(cp_sat, rel=1e-6)


def test_unknown_method_is_refused(tmp_path: Path) -> None:
    result = invoke("solve", SMALL, "-o", tmp_path / "out", "--method", "simplex")
    assert result.exit_code == 1  # bad input; 2 means infeasible
    assert "Invalid value for '--method'" in result.output and "cp-sat" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [
    ["solve", "--workers", "0"], ["solve", "--time-limit", "nan"], ["solve", "--time-limit", "0"],
    ["solve", "--frobnicate"], ["solve"], ["frobnicate"], ["sweep", "-o", "x"],
    ["batch", "--jobs", "0", "-o", "x", "a.yaml"]])
def test_command_line_mistakes_exit_1_naming_the_option(args: list[str], tmp_path: Path) -> None:
    """A usage error is bad input: exit 1 (click's own code, 2, is paraplan's 'infeasible'),
    the message names the option or argument, and nothing is written."""
    argv = [a if a != "x" else str(tmp_path / "out") for a in args]
    if argv[0] == "solve" and len(argv) > 1:
        argv.insert(1, str(SMALL))
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output and "Traceback" not in result.output
    named = next((a for a in args if a.startswith("-")), None)
    if named is not None and args[0] != "sweep":
        assert named in result.output or "Missing" in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_json_condition_solves_like_yaml(solved: Path, tmp_path: Path) -> None:
    out = tmp_path / "json"
    result = invoke("solve", ASSETS / "llama8b-l40sx2.json", "-o", out, "--time-limit", "20")
    assert result.exit_code == 0, result.output
    a = json.loads((solved / "plan.json").read_text(encoding="utf-8"))["metrics"]["objective"]
    b = json.loads((out / "plan.json").read_text(encoding="utf-8"))["metrics"]["objective"]
    assert a == pytest.approx(b, rel=1e-6)


def test_check_accepts_the_written_plan(solved: Path) -> None:
    result = invoke("check", SMALL, solved / "plan.json")
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_check_json_output_of_a_valid_plan(solved: Path) -> None:
    result = invoke("check", "--json", SMALL, solved / "plan.json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["checks"] and all(c["passed"] for c in report["checks"])


def test_check_short_plan_names_the_violated_slo() -> None:
    result = invoke("check", LLAMA70B, ASSETS / "plan-tp4-pp2.yaml")
    assert result.exit_code == 3, result.output
    assert "slo.ttft_ms" in result.output
    assert "VIOLATED" in result.output


def test_check_tp3_names_divisibility() -> None:
    result = invoke("check", LLAMA70B, ASSETS / "plan-tp3.yaml")
    assert result.exit_code == 3, result.output
    assert "divisibility" in result.output
    assert "num_attention_heads" in result.output


def test_check_layers_per_stage_must_cover_the_model() -> None:
    result = invoke("check", LLAMA70B, ASSETS / "plan-bad-layers.yaml")
    assert result.exit_code == 3, result.output
    assert "layers" in result.output
    assert "80" in result.output and "70" in result.output


def test_check_json_output_parses() -> None:
    result = invoke("check", "--json", LLAMA70B, ASSETS / "plan-tp4-pp2.yaml")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert isinstance(report["checks"], list) and report["checks"]
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert "slo.ttft_ms" in failed
    assert report["parallelism"]["tp"] == 4 and report["parallelism"]["pp"] == 2


def test_check_a_plan_against_another_condition(solved: Path) -> None:
    """A plan for 2 x L40S graded against an 8 x H100 condition: violations, not a crash."""
    result = invoke("check", LLAMA70B, solved / "plan.json")
    assert result.exit_code in (0, 3), result.output


def test_schema_prints_a_json_schema() -> None:
    result = invoke("schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert {"model", "hardware", "workload"} <= set(schema["properties"])
    assert {"model", "hardware", "workload"} <= set(schema["required"])
    assert schema.get("additionalProperties") is False


def test_infeasible_condition_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("solve", ASSETS / "infeasible-405b-l40sx2.yaml", "-o", out, "--no-explain")
    assert result.exit_code == 2, result.output
    assert "binding" in result.stderr
    assert "memory" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.iterdir()), "staging folders left behind"


def test_infeasible_condition_with_explanation_writes_no_plan(tmp_path: Path) -> None:
    """The default --explain writes infeasibility.md (and its manifest), never a plan."""
    out = tmp_path / "out"
    result = invoke("solve", ASSETS / "infeasible-405b-l40sx2.yaml", "-o", out)
    assert result.exit_code == 2, result.output
    assert "binding" in result.stderr and "memory" in result.stderr
    written = {p.name for p in out.iterdir()} if out.exists() else set()
    assert written <= {"infeasibility.md", "manifest.json"}, written


def test_output_folder_that_is_a_file_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder", encoding="utf-8")
    result = invoke("solve", SMALL, "-o", blocker / "out")
    assert result.exit_code == 1, result.output
    assert "error" in result.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_default_output_folder_is_plans_slash_name(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("solve", SMALL, "--time-limit", "20")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plans" / "tiny-llama8b" / "plan.json").is_file()


def test_no_arguments_prints_help() -> None:
    result = CliRunner().invoke(app, [])
    assert "solve" in result.output and "check" in result.output
    assert "Traceback" not in result.output
