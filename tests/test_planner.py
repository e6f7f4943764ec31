"""End-to-end library tests: bundled conditions, determinism, time limits, verifier teeth."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.condition import load_condition
from solver.formulation import SolverSettings
from solver.plan import build_plan
from solver.planner import solve
from solver.report import plan_json, render_all
from solver.verify import verify_plan, violations
from tests.bundled import bundled_solution

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted((ROOT / "conditions").glob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_condition_solves_to_verified_optimum(path):
    condition, solution = bundled_solution(path.stem)
    plan = solution.plan
    assert plan.status == "optimal"
    assert plan.solver.gap == 0.0
    assert not violations(solution.checks)
    assert plan.gpus.model_parts == plan.gpus.used == len(plan.devices)
    files = render_all(condition, plan, solution.checks, solution.problem)
    assert f"{plan.gpus.model_parts} parts" in files["plan.md"]
    assert files["balance.csv"].count("\n") == plan.gpus.used + 1


@pytest.mark.parametrize("name", ["llama70b-h100x8", "qwen3-235b-h200x8", "mixtral8x7b-a100x4"])
def test_same_plan_across_runs_and_workers(name):
    condition = load_condition(ROOT / "conditions" / f"{name}.yaml")
    texts = {
        plan_json(solve(condition, settings=SolverSettings(num_workers=w, random_seed=s)).plan,
                  timing=False)
        for w, s in ((1, 0), (2, 0), (4, 0), (2, 0))
    }
    assert len(texts) == 1


def test_time_limit_returns_a_verified_plan():
    condition = load_condition(ROOT / "conditions" / "mixtral8x22b-h100x16.yaml")
    solution = solve(condition, settings=SolverSettings(time_limit_s=0.05, screen_candidates=False))
    assert solution.plan.status in ("optimal", "feasible")
    assert not violations(solution.checks)
    if solution.plan.status == "feasible":
        assert solution.plan.solver.best_bound <= solution.plan.solver.objective


def test_exhaustive_method_agrees_with_cpsat():
    condition = load_condition(ROOT / "conditions" / "llama8b-l40sx2.yaml")
    a = solve(condition).plan
    b = solve(condition, method="exhaustive").plan
    assert a.metrics.objective == pytest.approx(b.metrics.objective, rel=1e-9)


def test_verifier_catches_memory_overflow_and_slo():
    """A plan that is fine for one condition breaks a tighter one; the verifier names both."""
    condition = load_condition(ROOT / "conditions" / "llama70b-h100x8.yaml")
    plan = solve(condition).plan
    tight = condition.model_copy(update={
        "cluster": condition.cluster.model_copy(update={"usable_memory_fraction": 0.2}),
        "slo": condition.slo.model_copy(update={"ttft_ms": 100.0}),
    })
    failed = {c.name for c in violations(verify_plan(tight, plan))}
    assert "memory.stage0" in failed
    assert "slo.ttft_ms" in failed


def test_verifier_catches_tampered_device_map():
    condition = load_condition(ROOT / "conditions" / "mixtral8x7b-a100x4.yaml")
    plan = solve(condition).plan
    devices = list(plan.devices)
    devices[0] = devices[0].model_copy(update={"experts": [], "first_layer": 1})
    tampered = plan.model_copy(update={"devices": devices})
    failed = {c.name for c in violations(verify_plan(condition, tampered))}
    assert {"experts.every_expert_hosted", "layers.devices_match_stages"} <= failed


def test_uneven_split_beats_even_when_stages_differ():
    """Embedding and LM head make the end stages heavier: the optimal split is uneven and no worse
    than the even split."""
    condition = load_condition(ROOT / "conditions" / "llama8b-l40sx2.yaml")
    forced = condition.model_copy(update={
        "policy": condition.policy.model_copy(update={"pp": [2], "use_all_gpus": True}),
        "workload": condition.workload.model_copy(update={"batch_size": 64, "max_batch_size": None}),
    })
    plan = solve(forced).plan
    even = build_plan(forced, plan.parallelism.shape(), plan.batch_size, [0, 16, 32], "checked",
                      plan.solver)
    assert plan.metrics.objective <= even.metrics.objective + 1e-12
    sizes = [s.num_layers for s in plan.stages]
    assert sum(sizes) == 32
