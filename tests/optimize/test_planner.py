"""End-to-end library tests: bundled conditions, determinism, time limits, verifier teeth."""

from __future__ import annotations

import pytest

from solver.document.building import build_plan
from solver.document.verify import verify_plan, violations
from solver.inputs.condition import load_condition
from solver.inputs.serving import ServingSpec
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from solver.render.outputs import plan_folder_files, plan_json
from solver.runtime.limits import Deadline
from tests.bundled import bundled_solution
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
# serving.mode disaggregated | auto conditions are planned by planning/modes.py (tests/render/
# test_pools_outputs.py solves them)
BUNDLED = sorted(p for p in (ROOT / "conditions").glob("*.yaml")
                 if "mode: auto" not in p.read_text() and "mode: disaggregated" not in p.read_text())


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_condition_solves_to_verified_optimum(path):
    condition, solution = bundled_solution(path.stem)
    plan = solution.plan
    assert plan.status == "optimal"
    assert plan.solver.gap == 0.0
    assert not violations(solution.checks)
    assert plan.gpus.model_parts == plan.gpus.used == len(plan.devices)
    files = plan_folder_files(condition, solution)
    assert f"{plan.gpus.model_parts} parts" in files["plan.md"]
    assert files["balance.csv"].count("\n") == plan.gpus.used + 1


@pytest.mark.parametrize("name", ["llama70b-h100x8", "qwen3-235b-h200x8", "mixtral8x7b-a100x4"])
def test_same_plan_across_runs_and_workers(name):
    condition = load_condition(ROOT / "conditions" / f"{name}.yaml")
    texts = {
        plan_json(solve(condition, settings=SolverSettings(num_workers=w, random_seed=s)).plan)
        for w, s in ((1, 0), (2, 0), (4, 0), (2, 0))
    }
    assert len(texts) == 1


def _static(condition):
    """The condition with static batching (many candidates whose bound is below the incumbent's)."""
    return condition.model_copy(update={"serving": ServingSpec(mode="static")})


def test_work_limit_returns_a_verified_plan_with_its_gap():
    """A deterministic work limit too small for a proof: the same feasible plan every time, with
    the screening's bound and the limit named in plan.json."""
    condition = _static(load_condition(ROOT / "conditions" / "llama70b-h100x8.yaml"))
    settings = SolverSettings(screen_candidates=False, plan_work=0.0)
    plans = [solve(condition, settings=settings).plan for _ in range(2)]
    assert plan_json(plans[0]) == plan_json(plans[1])
    plan = plans[0]
    assert plan.status == "feasible" and plan.solver.limits_hit == ["work limit: plan search"]
    assert 0 < plan.solver.best_bound <= plan.solver.objective and plan.solver.gap > 0
    assert not violations(verify_plan(condition, plan))


def test_deadline_passed_before_the_search_returns_the_incumbent():
    """The run's wall-clock deadline already passed: no search runs; the balanced-split incumbent,
    verified, and plan.json says which stage the time limit cut."""
    condition = _static(load_condition(ROOT / "conditions" / "llama70b-h100x8.yaml"))
    solution = solve(condition, settings=SolverSettings(deadline=Deadline(0.0), screen_candidates=False))
    plan = solution.plan
    assert plan.status == "feasible" and "time limit: plan search" in plan.solver.limits_hit
    assert plan.solver.best_bound <= plan.solver.objective
    assert not violations(solution.checks)


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
