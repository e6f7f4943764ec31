"""Infeasibility explanations: the binding constraint, and smallest fixes that, applied, solve."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InfeasibleError
from solver.inputs.condition import build_condition, load_condition
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from solver.planning.relax import Relaxation, _nice_up, _ranges, explain_infeasibility
from solver.planning.relax_search import apply_changes
from solver.render.infeasibility import infeasibility_markdown
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
INFEASIBLE = ROOT / "conditions" / "infeasible"
FAST = SolverSettings(num_workers=2)  # the default --time-limit safety net: never hit here
# Whether a condition solves, and the error the relaxations start from, need no infeasibility core
# (minimizing one takes seconds for these conditions; its naming is tested in
# test_infeasibility_core.py and, through the CLI, below). The screening counts, which the
# binding assertions read, are in the error either way.
NO_CORE = SolverSettings(num_workers=2, name_binding_core=False)
runner = CliRunner()


def _explain(condition):
    with pytest.raises(InfeasibleError) as err:
        solve(condition, settings=NO_CORE)
    return err.value, explain_infeasibility(condition, err.value, FAST)


def _fix(report, kind: str) -> Relaxation:
    fix = next(r for r in report.relaxations if r.kind == kind)
    assert fix.found, fix.summary
    return fix


def _solves(condition, changes) -> bool:
    relaxed = build_condition(
        apply_changes(condition.raw, changes), condition.source, condition.name
    )
    try:
        solve(relaxed, settings=NO_CORE)
    except InfeasibleError:
        return False
    return True


@pytest.fixture(scope="module")
def big_model_on_two_l40s():
    condition = load_condition(INFEASIBLE / "llama405b-l40sx2.yaml")
    return condition, *_explain(condition)


@pytest.fixture(scope="module")
def unreachable_tpot():
    condition = load_condition(INFEASIBLE / "llama70b-tpot-1ms.yaml")
    return condition, *_explain(condition)


def test_405b_on_two_l40s_binds_memory_and_needs_more_nodes(big_model_on_two_l40s):
    condition, error, report = big_model_on_two_l40s
    assert any(b.startswith("memory") for b in error.binding)
    gpus = _fix(report, "gpus")
    nodes = gpus.changes["hardware.num_nodes"]
    assert _solves(condition, gpus.changes)
    assert not _solves(condition, {**gpus.changes, "hardware.num_nodes": nodes - 1})  # the smallest
    precision = next(r for r in report.relaxations if r.kind == "precision")
    assert (
        not precision.found and "fp4" in precision.summary
    )  # 203 GB of fp4 weights still do not fit


def test_unreachable_tpot_binds_tpot_and_gets_the_loosest_needed_value(unreachable_tpot):
    condition, error, report = unreachable_tpot
    assert any(b.startswith("tpot_slo") for b in error.binding)
    slo = _fix(report, "slo")
    value = slo.changes["slo.tpot_ms"]
    assert value > condition.slo.tpot_ms
    assert _solves(condition, slo.changes)
    assert not _solves(condition, {"slo.tpot_ms": value / 1.03})  # tight to the bisection tolerance
    assert not next(r for r in report.relaxations if r.kind == "gpus").found  # no cluster helps
    markdown = infeasibility_markdown(report)
    assert "slo.tpot_ms" in markdown and "Binding constraints" in markdown


def test_fixed_batch_relaxes_to_the_largest_batch_that_fits():
    condition = build_condition(
        {
            "model": "llama-3.1-70b",
            "precision": {"weights": "fp8", "kv_cache": "fp8"},
            "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 2},
            "workload": {"input_tokens": 8192, "output_tokens": 1024, "batch_size": 64},
        },
        "batch.yaml",
        "batch",
    )
    _, report = _explain(condition)
    batch = _fix(report, "batch").changes["workload.batch_size"]
    assert 1 <= batch < 64
    assert _solves(condition, {"workload.batch_size": batch})
    assert not _solves(condition, {"workload.batch_size": batch + 1})


def test_ample_gpus_relax_max_gpus():
    condition = build_condition(
        {
            "model": "llama-3.1-405b",
            "hardware": {"gpu": "h100-sxm-80gb", "max_gpus": 4},
            "workload": {"input_tokens": 1024, "output_tokens": 128, "max_batch_size": 8},
        },
        "a.yaml",
        "ample",
    )
    _, report = _explain(condition)
    fix = _fix(report, "gpus")
    assert fix.changes["hardware.max_gpus"] > 4 and _solves(condition, fix.changes)


def test_pinned_policy_relaxation():
    condition = build_condition(
        {
            "model": "llama-3.1-8b",
            "hardware": {"gpu": "l40s", "num_nodes": 1, "gpus_per_node": 2},
            "workload": {"input_tokens": 1024, "output_tokens": 128, "max_batch_size": 8},
            "policy": {"tp": [3]},
        },
        "p.yaml",
        "policy",
    )
    _, report = _explain(condition)
    assert _solves(condition, _fix(report, "policy").changes)


def test_helpers():
    data = {"slo": {"tpot_ms": 1}, "hardware": {"gpu": "x"}}
    out = apply_changes(data, {"slo.tpot_ms": None, "hardware.num_nodes": 3, "policy.tp": [2]})
    assert out == {"slo": {}, "hardware": {"gpu": "x", "num_nodes": 3}, "policy": {"tp": [2]}}
    assert data == {"slo": {"tpot_ms": 1}, "hardware": {"gpu": "x"}}
    assert _nice_up(11.4123) == pytest.approx(11.5) and _nice_up(2130.1) == 2140
    assert _ranges([2, 3, 4, 8, 16]) == "2-4, 8, 16"


@pytest.mark.parametrize(
    "name,binding,fix",
    [
        ("llama405b-l40sx2", "binding: memory", "hardware.num_nodes"),
        ("llama70b-tpot-1ms", "binding: tpot_slo", "slo.tpot_ms"),
    ],
)
def test_cli_exits_2_with_binding_constraint_and_writes_infeasibility_md(
    tmp_path, name, binding, fix
):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["solve", str(INFEASIBLE / f"{name}.yaml"), "-o", str(out), "--time-limit", "10"]
    )
    assert result.exit_code == 2, result.output
    assert binding in result.output and fix in result.output
    text = (out / "infeasibility.md").read_text()
    assert fix in text and "## Smallest relaxations" in text
    assert json.loads((out / "manifest.json").read_text())["files"][0].endswith("infeasibility.md")
    assert not (out / "plan.json").exists()


def test_cli_no_explain_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["solve", str(INFEASIBLE / "llama405b-l40sx2.yaml"), "-o", str(out), "--no-explain"]
    )
    assert result.exit_code == 2 and not out.exists()
