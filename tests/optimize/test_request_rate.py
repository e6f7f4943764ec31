"""workload.request_rate: the offered load a plan must serve (issue 13). With a fixed cluster it
is a constraint family (the plan's capacity at its operating point is at least the rate); when the
planner chooses the GPU count, the plan says how many replicas the rate needs."""

from __future__ import annotations

import math
from functools import cache

import pytest

from solver.errors import InfeasibleError
from solver.inputs.condition import build_condition
from solver.optimize.exhaustive import solve_exhaustive
from solver.optimize.formulation import solve_cpsat
from solver.optimize.problem import build_problem
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from solver.planning.relax import explain_infeasibility
from solver.render.console import solved_lines
from tests.corpus import generate, generate_continuous

LLAMA70B = {
    "name": "rate", "model": "llama-3.1-70b",
    "precision": {"weights": "fp8", "kv_cache": "fp8", "activations": "bf16"},
    "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
    "workload": {"input_tokens": 2048, "output_tokens": 512},
    "slo": {"ttft_ms": 1000, "tpot_ms": 30},
}


def _with_rate(data: dict, rate: float | None) -> dict:
    out = {**data, "workload": {**data["workload"]}}
    if rate is not None:
        out["workload"]["request_rate"] = rate
    return out


def _condition(data: dict):
    return build_condition(data, f"{data['name']}.yaml", data["name"])


@cache
def _unconstrained_capacity() -> float:
    plan = solve(_condition(LLAMA70B)).plan
    assert plan.serving is not None
    return plan.serving.requests_per_s


def test_a_rate_the_optimum_serves_changes_nothing() -> None:
    capacity = _unconstrained_capacity()
    free = solve(_condition(LLAMA70B)).plan
    bound = solve(_condition(_with_rate(LLAMA70B, capacity / 2))).plan
    assert bound.parallelism == free.parallelism and bound.metrics == free.metrics
    assert bound.serving is not None and bound.serving.request_rate == capacity / 2
    row = next(c for c in solve(_condition(_with_rate(LLAMA70B, capacity / 2))).checks
               if c.name == "workload.request_rate")
    assert row.passed and "requests/s" in row.value


def test_a_rate_just_below_the_optimums_capacity_is_served() -> None:
    """The integer rate constraint is within 0.2% of the float capacity: seconds per scored token
    has coefficients near 1 / the active sequences (here 1 / 57.6), which 1 / 1024 units cut 1.3%
    short before the request form was kept 64x finer."""
    capacity = _unconstrained_capacity()
    plan = solve(_condition(_with_rate(LLAMA70B, capacity * 0.998))).plan
    assert plan.serving is not None and plan.serving.requests_per_s >= capacity * 0.998


def test_a_rate_above_every_plan_is_infeasible_and_the_fix_is_the_most_it_serves() -> None:
    data = _with_rate(LLAMA70B, 20.0)
    quick = SolverSettings(name_binding_core=False)  # the screening counts name the rate already
    with pytest.raises(InfeasibleError) as err:
        solve(_condition(data), settings=quick)
    assert any(line.startswith("request_rate: ") for line in err.value.binding)
    report = explain_infeasibility(_condition(data), err.value)
    fix = next(r for r in report.relaxations if r.kind == "rate")
    served = fix.changes["workload.request_rate"]
    assert fix.found and served < 20.0
    plan = solve(_condition(_with_rate(LLAMA70B, served))).plan
    assert plan.serving is not None and plan.serving.requests_per_s >= served
    # the bisection stops within 1% (and 3 significant digits) of a rate that is not served
    with pytest.raises(InfeasibleError):
        solve(_condition(_with_rate(LLAMA70B, served * 1.03)), settings=quick)


def test_gpus_to_buy_state_the_replicas_the_rate_needs() -> None:
    data = _with_rate({**LLAMA70B, "hardware": {"gpu": "h100-sxm-80gb", "max_gpus": 8}}, 50.0)
    plan = solve(_condition(data)).plan
    assert plan.serving is not None
    per_replica = plan.serving.requests_per_s
    assert plan.serving.replicas_for_request_rate == math.ceil(50.0 / per_replica)
    assert plan.serving.replicas_for_request_rate > 1
    replicas = plan.serving.replicas_for_request_rate
    assert (f"  {replicas} replicas of {plan.gpus.used} GPUs (= {replicas * plan.gpus.used} GPUs to "
            "buy) serve workload.request_rate 50 requests/s") in solved_lines(plan, 0.1)


def _bound_corpus() -> list[dict]:
    """Corpus conditions with a rate 1.25 x the capacity of their unconstrained optimum: the
    rate binds (a different plan, or none)."""
    cases = []
    for data in generate_continuous()[:10] + generate(12)[:4]:
        if "max_gpus" in data["hardware"]:
            continue
        try:
            plan = solve(_condition(data)).plan
        except InfeasibleError:
            continue
        assert plan.serving is not None
        cases.append(_with_rate(data, plan.serving.requests_per_s * 1.25))
    return cases


BOUND = _bound_corpus()


def test_the_bound_corpus_covers_both_modes() -> None:
    modes = [d.get("serving", {}).get("mode", "continuous") for d in BOUND]
    assert modes.count("continuous") >= 4 and modes.count("static") >= 2


@pytest.mark.parametrize("index", range(len(BOUND)), ids=[d["name"] for d in BOUND])
def test_cpsat_matches_the_oracle_under_a_binding_rate(index: int) -> None:
    data = BOUND[index]
    problem = build_problem(_condition(data))
    oracle = solve_exhaustive(problem)
    result = solve_cpsat(problem, SolverSettings(time_limit_s=60))
    if oracle.objective is None:
        assert result.status == "infeasible"
        return
    assert result.status == "optimal" and result.objective == oracle.objective
    plan = solve(_condition(data)).plan
    assert plan.serving is not None
    assert plan.serving.requests_per_s >= data["workload"]["request_rate"] * (1 - 1e-9)


def test_the_node_fix_for_a_large_rate_is_bisected_down_after_doubling() -> None:
    """12,000 req/s of Llama-3.1-8B FP8 on H100 nodes: the node scan passes 25 nodes and doubles
    to 50; the fix is then bisected down to a count whose predecessor has no plan."""
    data = {"name": "many", "model": "llama-3.1-8b", "precision": {"weights": "fp8", "kv_cache": "fp8"},
            "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
            "workload": {"input_tokens": 1024, "output_tokens": 256, "request_rate": 12000}}
    quick = SolverSettings(name_binding_core=False)
    with pytest.raises(InfeasibleError) as err:
        solve(_condition(data), settings=quick)
    fix = next(r for r in explain_infeasibility(_condition(data), err.value).relaxations
               if r.kind == "gpus")
    nodes = fix.changes["hardware.num_nodes"]
    assert 25 < nodes < 50
    at = {**data, "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": nodes}}
    assert solve(_condition(at), settings=quick).plan.serving.requests_per_s >= 12000
    with pytest.raises(InfeasibleError):
        solve(_condition({**data, "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": nodes - 1}}),
              settings=quick)
