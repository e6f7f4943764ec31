"""Property-based tests (hypothesis): verifier on every plan, CP-SAT = exhaustive, monotonicity.

Conditions are built by composite strategies over the model and GPU cards and both serving modes
(small sizes and serving grids so the exhaustive oracle stays fast); derandomized so CI runs the
same examples every time.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.document.verify import violations
from solver.errors import InfeasibleError
from solver.inputs.condition import Condition, build_condition
from solver.optimize.exhaustive import solve_exhaustive
from solver.optimize.formulation import solve_cpsat
from solver.optimize.problem import build_problem
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve

PROPERTY_SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])

MODELS = ["llama-3.1-8b", "mistral-7b", "mixtral-8x7b", "qwen3-30b-a3b"]
GPUS = ["h100-sxm-80gb", "a100-sxm-80gb", "l40s", "h20", "mi300x"]


@st.composite
def conditions(draw: Any, objective: dict[str, float] | None = None,
               use_all_gpus: bool | None = None) -> dict[str, Any]:
    """A valid condition mapping over real cards."""
    gpus_per_node = draw(st.sampled_from([1, 2, 4, 8]))
    data: dict[str, Any] = {
        "name": "property",
        "model": draw(st.sampled_from(MODELS)),
        "precision": {"weights": draw(st.sampled_from(["bf16", "fp8"])),
                      "kv_cache": draw(st.sampled_from(["bf16", "fp8"]))},
        "hardware": {"gpu": draw(st.sampled_from(GPUS)), "num_nodes": draw(st.sampled_from([1, 2])),
                     "gpus_per_node": gpus_per_node},
        "workload": {"input_tokens": draw(st.sampled_from([128, 512, 2048])),
                     "output_tokens": draw(st.sampled_from([16, 128, 512]))},
        "objective": objective or {"latency_weight": draw(st.sampled_from([0, 1, 2])),
                                   "throughput_weight": draw(st.sampled_from([1, 3]))},
        "policy": {"use_all_gpus": draw(st.booleans()) if use_all_gpus is None else use_all_gpus},
    }
    if draw(st.booleans()):
        data["workload"]["batch_size"] = draw(st.sampled_from([1, 8, 32]))
    else:
        data["workload"]["max_batch_size"] = draw(st.sampled_from([8, 48, 128]))
    if draw(st.booleans()):
        data["slo"] = {"tpot_ms": draw(st.sampled_from([10, 40, 200]))}
    data["serving"] = draw(st.sampled_from([
        {"mode": "static"},
        {"mode": "continuous", "utilization": [0.5, 0.9], "chunk_tokens": 2048},
        {"mode": "continuous", "utilization": [0.25, 0.7, 0.97], "chunk_tokens": [1024, 8192]},
    ]))
    return data


def _build(data: dict[str, Any]) -> Condition:
    return build_condition(data, "property.yaml", "property")


def _optimum(data: dict[str, Any]) -> int | None:
    return solve_exhaustive(build_problem(_build(data))).objective


@PROPERTY_SETTINGS
@given(conditions())
def test_every_plan_passes_the_verifier_and_matches_the_oracle(data):
    condition = _build(data)
    problem = build_problem(condition)
    oracle = solve_exhaustive(problem)
    result = solve_cpsat(problem, SolverSettings())
    assert result.objective == oracle.objective
    try:
        solution = solve(condition)
    except InfeasibleError:
        assert oracle.objective is None  # infeasible answers confirmed by exhaustive search
        return
    assert not violations(solution.checks)
    assert solution.plan.status == "optimal"


@PROPERTY_SETTINGS
@given(conditions(objective={"latency_weight": 1, "throughput_weight": 0}, use_all_gpus=False))
def test_more_gpus_never_raise_the_best_latency(data):
    """Latency-only objective, idle GPUs allowed: every plan on N GPUs exists on 2N."""
    small = _build(data)
    bigger = dict(data, hardware=dict(data["hardware"], num_nodes=data["hardware"]["num_nodes"] * 2))
    try:
        few = solve(small).plan.metrics.e2e_latency_ms
    except InfeasibleError:
        return
    many = solve(_build(bigger)).plan.metrics.e2e_latency_ms
    assert many <= few * (1 + 1e-6)


@PROPERTY_SETTINGS
@given(conditions(), st.sampled_from([0.5, 0.9]))
def test_loosening_an_slo_never_makes_the_optimum_worse(data, factor):
    tight = dict(data, slo={"tpot_ms": 30.0 * factor, "ttft_ms": 5000.0 * factor})
    loose = dict(data, slo={"tpot_ms": 30.0, "ttft_ms": 5000.0})
    tight_opt, loose_opt = _optimum(tight), _optimum(loose)
    if tight_opt is not None:
        assert loose_opt is not None and loose_opt <= tight_opt


@PROPERTY_SETTINGS
@given(conditions(objective={"latency_weight": 0, "throughput_weight": 1}),
       st.sampled_from([(8, 32), (32, 128), (6, 100)]))
def test_raising_the_batch_limit_never_lowers_the_best_throughput(data, limits):
    workload = {k: v for k, v in data["workload"].items() if k != "batch_size"}
    low = dict(data, workload=dict(workload, max_batch_size=limits[0]))
    high = dict(data, workload=dict(workload, max_batch_size=limits[1]))
    try:
        low_tput = solve(_build(low)).plan.metrics.throughput_tokens_per_s
    except InfeasibleError:
        return
    high_tput = solve(_build(high)).plan.metrics.throughput_tokens_per_s
    assert high_tput >= low_tput * (1 - 1e-6)
