"""The CLI on mixed clusters: solve writes a mixed plan.json (pools, replicas, device map with
kinds), check grades it and a hand-written replicas block, bad input exits 1 naming file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from tests.paths import CONDITIONS

TWO = CONDITIONS / "mixed" / "llama70b-h100x16-a100x16.yaml"


def invoke(*args: object):  # noqa: ANN201
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mixed") / "out"
    result = invoke("solve", TWO, "-o", out)
    assert result.exit_code == 0, result.output
    return out


def test_solve_writes_a_mixed_plan(solved: Path) -> None:
    plan = json.loads((solved / "plan.json").read_text())
    assert plan["status"] == "optimal"
    assert [p["gpu"] for p in plan["gpu_pools"]] == ["h100-sxm-80gb", "a100-sxm-80gb"]
    assert {d["kind"] for d in plan["devices"]} == {"h100-sxm-80gb", "a100-sxm-80gb"}
    assert sum(g["count"] * g["gpus_per_replica"] for g in plan["replicas"]) == plan["gpus"]["used"]
    for group in plan["replicas"]:
        assert sum(s["num_layers"] for s in group["stages"]) == 80
    text = (solved / "plan.md").read_text()
    assert "which GPU kind holds which layers" in text and "alone" in text and "proportional" in text
    assert "<table>" in (solved / "report.html").read_text()


def test_check_grades_the_plan_it_wrote(solved: Path) -> None:
    result = invoke("check", TWO, solved / "plan.json")
    assert result.exit_code == 0, result.output
    assert "valid: every hard constraint holds" in result.output


def test_check_names_what_a_hand_written_plan_breaks(tmp_path: Path) -> None:
    given = tmp_path / "given.yaml"
    given.write_text("replicas:\n  - count: 1\n    stages: [{pool: h100-sxm-80gb, tp: 1, num_layers: 80}]\n")
    result = invoke("check", TWO, given, "--no-regret")
    assert result.exit_code == 3, result.output
    assert "VIOLATED replicas[0].memory.stage0" in result.output


@pytest.mark.parametrize(("text", "key"), [
    ("replicas:\n  - count: 1\n    stages: [{pool: tpu, tp: 4, num_layers: 80}]\n",
     "replicas[0].stages[0].pool"),
    ("replicas: []\n", "replicas"),
])
def test_check_bad_plan_exits_1_naming_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    given = tmp_path / "given.yaml"
    given.write_text(text)
    result = invoke("check", TWO, given, "--no-regret")
    assert result.exit_code == 1, result.output
    assert str(given) in result.output and key in result.output


def test_solve_bad_pool_exits_1_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TWO.read_text().replace("num_nodes: 2, gpus_per_node: 8}\n    - {gpu: a100",
                                           "num_nodes: 2, gpus_per_node: 8}\n    - {gpu: nope"))
    result = invoke("solve", bad, "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert str(bad) in result.output and "hardware.pools[1].gpu" in result.output


def test_batch_over_the_mixed_conditions_solves_each_and_summarizes_it(tmp_path: Path) -> None:
    """A batch row of a mixed plan: its largest replica group's degrees, the cluster's metrics."""
    import pandas as pd

    out = tmp_path / "batch"
    result = invoke("batch", CONDITIONS / "mixed", "-o", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out / "summary.parquet")
    assert len(frame) == len(list((CONDITIONS / "mixed").glob("*.yaml"))) >= 2
    assert set(frame["status"]) == {"optimal"}
    for _, row in frame.iterrows():
        plan = json.loads((out / row["plan_dir"] / "plan.json").read_text(encoding="utf-8"))
        assert row["throughput"] == pytest.approx(plan["metrics"]["throughput_tokens_per_s"])
        assert row["gpus_used"] == plan["gpus"]["used"] and len(plan["gpu_pools"]) >= 2


def test_report_html_escapes_once_and_closes_its_tables(solved: Path) -> None:
    """The replica labels ('A100 TP2 -> H100 TP2') show their arrow, not '&gt;' as text, and every
    table row sits inside a table."""
    page = (solved / "report.html").read_text(encoding="utf-8")
    assert "&amp;gt;" not in page and "&amp;lt;" not in page
    assert page.count("<table>") == page.count("</table>") >= 2
    outside = page
    for chunk in page.split("<table>")[1:]:
        outside = outside.replace(chunk.split("</table>")[0], "")
    assert "<tr>" not in outside


def test_balance_csv_lists_every_gpu_with_its_pool_and_layers(solved: Path) -> None:
    plan = json.loads((solved / "plan.json").read_text(encoding="utf-8"))
    lines = (solved / "balance.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("gpu,pool,kind,") and len(lines) == 1 + len(plan["devices"])
    assert {line.split(",")[1] for line in lines[1:]} == {p["name"] for p in plan["gpu_pools"]
                                                           if p["gpus_used"]}


def test_a_sweep_over_a_mixed_condition_solves_every_point(tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "sweep"
    result = invoke("sweep", CONDITIONS / "mixed" / "llama70b-h100x2-a100x2.yaml",
                    "--set", "slo.tpot_ms=50,80", "-o", out, "-j", "1")
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out / "summary.parquet")
    assert len(frame) == 2 and set(frame["status"]) == {"optimal"}
    # a looser TPOT admits every plan a tighter one did
    by_name = dict(zip(frame["name"], frame["throughput"], strict=True))
    tight, loose = (next(v for k, v in by_name.items() if k.endswith(f"tpot_ms={ms}")) for ms in (50, 80))
    assert loose > tight
