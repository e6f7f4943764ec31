"""DeepSeek-class models, expert placement under skew, sequence parallelism, ample GPUs (issue 3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.document.verify import violations
from solver.errors import InfeasibleError, InputError
from solver.inputs.condition import build_condition, load_condition
from solver.optimize.exhaustive import best_split
from solver.optimize.problem import build_problem
from solver.physics.evaluate import evaluate_plan
from solver.physics.packing import (
    LOAD_SCALE,
    PackingProblem,
    greedy_pack,
    imbalance,
    replica_items,
    water_fill,
)
from solver.physics.placement import place_experts, zipf_loads
from solver.planning.planner import solve
from tests.bundled import bundled_solution
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
PUBLISHED = ROOT / "conditions" / "published"


# ---- expert placement -------------------------------------------------------------------------
@pytest.mark.parametrize("experts,ep,redundant,alpha", [
    (256, 32, 0, 1.2), (256, 32, 32, 1.2), (256, 32, 0, 0.4), (128, 8, 0, 1.2), (128, 16, 16, 0.8),
    (64, 8, 8, 0.3), (160, 20, 20, 1.0), (8, 2, 0, 1.2),
])
def test_placement_never_worse_than_greedy(experts, ep, redundant, alpha):
    loads = zipf_loads(experts, alpha)
    placement = place_experts(loads, ep, redundant)
    replicas = water_fill(loads, redundant, ep)
    greedy = greedy_pack(replica_items(loads, replicas), ep, (experts + redundant) // ep)
    assert placement.max_over_mean <= imbalance(greedy, loads) + 1e-4
    assert placement.max_over_mean == pytest.approx(imbalance(placement.experts_by_gpu, loads))
    hosted = sorted(e for gpu in placement.experts_by_gpu for e in gpu)
    assert set(hosted) == set(range(experts)) and len(hosted) == experts + redundant
    assert all(len(g) == (experts + redundant) // ep and len(set(g)) == len(g)
               for g in placement.experts_by_gpu)
    assert placement.bound_max_over_mean <= placement.max_over_mean + 1e-9


@pytest.mark.parametrize("alpha", [1.2, 0.4])
def test_256_experts_on_32_gpus_proven_optimal_within_the_work_limits(alpha):
    """Proven optimal (the packing meets the lower bound) by steps bounded by work counts, so the
    proof holds on a busy machine too: nothing here depends on wall time."""
    problem = PackingProblem.of(zipf_loads(256, alpha), 32, 0)
    assert problem.optimal and not problem.worth_searching
    placement = place_experts(zipf_loads(256, alpha), 32, 0)
    assert placement.optimal and placement.method in ("greedy", "swaps")
    assert placement.max_over_mean <= placement.greedy_max_over_mean
    assert placement.max_over_mean - placement.bound_max_over_mean <= 2 * 32 / LOAD_SCALE


def test_packing_search_stops_at_its_deterministic_work_limit():
    """A CP-SAT packing search ends on CP-SAT's deterministic time, with the same answer twice."""
    problem = PackingProblem.of(zipf_loads(256, 0.4), 72, 32)
    runs = [problem.search(0.3, deadline=None) for _ in range(2)]
    assert all(work <= 0.3 * 1.05 for _, work in runs)
    assert runs[0][0] == runs[1][0]
    assert runs[0][0].max_over_mean <= problem.placement().max_over_mean


def test_skewed_placement_beats_greedy_somewhere():
    placement = place_experts(zipf_loads(256, 0.4), 8, 0)
    assert placement.max_over_mean < placement.greedy_max_over_mean - 0.01


def test_water_fill_gives_replicas_to_the_hottest_experts():
    assert water_fill([0.8, 0.1, 0.1], 2, 4) == [3, 1, 1]  # 0.8 -> 0.4 -> 0.27 per replica
    assert water_fill([0.5, 0.3, 0.2], 2, 4) == [2, 2, 1]  # 0.5 -> 0.25, then 0.3 is the largest
    assert water_fill([0.9, 0.1], 5, 2) == [2, 2]  # at most one replica per GPU (max_replicas)


def test_imbalance_feeds_moe_time():
    """A skewed placement makes the MoE layers slower than the uniform spread."""
    data = {"model": "mixtral-8x7b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
            "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 64},
            "serving": {"utilization": [0.8], "chunk_tokens": 8192},  # one load: same steps
            "policy": {"ep": [8], "tp": [1]}}
    uniform = solve(build_condition(data, "u", "u")).plan
    data["workload"]["expert_load"] = {"distribution": "zipf", "alpha": 1.2}
    skewed = solve(build_condition(data, "s", "s")).plan
    assert skewed.expert_placement is not None
    assert skewed.expert_placement.max_over_mean_token_load > 1.5
    assert skewed.metrics.ttft_ms > uniform.metrics.ttft_ms
    assert skewed.metrics.tpot_ms > uniform.metrics.tpot_ms


def test_per_layer_loads_give_experts_by_layer():
    card = {"name": "moe-toy", "num_hidden_layers": 4, "hidden_size": 1024, "num_attention_heads": 8,
            "num_key_value_heads": 8, "vocab_size": 32000, "num_experts": 8, "num_experts_per_tok": 2,
            "moe_intermediate_size": 1024}
    loads = [[8, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 8], [1] * 8, [4, 4, 1, 1, 1, 1, 1, 1]]
    data = {"model": card, "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 4},
            "workload": {"input_tokens": 512, "output_tokens": 64, "batch_size": 16, "expert_load": loads},
            "policy": {"ep": [4]}}
    solution = solve(build_condition(data, "toy", "toy"))
    devices = [d for d in solution.plan.devices if d.stage == 0 and d.replica == 0]
    assert all(d.experts_by_layer is not None and len(d.experts_by_layer) == 4 for d in devices)
    assert not violations(solution.checks)


@pytest.mark.parametrize("load,reason", [
    ([1.0] * 7, "7 loads given; the model has 8 routed experts"),
    ([1, 1, 1, 1, 1, 1, 1, -1], "greater than or equal to 0"),
    ([0] * 8, "sum to zero"),
    ([[1.0] * 8] * 3, "3 per-layer lists given; the model has 32 MoE layers"),
])
def test_bad_expert_loads_name_the_key(load, reason):
    data = {"model": "mixtral-8x7b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
            "workload": {"input_tokens": 64, "output_tokens": 8, "batch_size": 1, "expert_load": load}}
    with pytest.raises(InputError) as err:
        build_condition(data, "c.yaml", "c")
    assert "workload.expert_load" in str(err.value) and reason in str(err.value)


def test_expert_load_on_a_dense_model_is_an_error():
    data = {"model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
            "workload": {"input_tokens": 64, "output_tokens": 8, "batch_size": 1,
                         "expert_load": {"distribution": "zipf"}}}
    with pytest.raises(InputError, match="workload.expert_load: model 'llama-3.1-8b' has no experts"):
        build_condition(data, "c.yaml", "c")


def test_unplaceable_redundant_slots_and_unhostable_ep_are_infeasible():
    base = {"model": "mixtral-8x7b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
            "workload": {"input_tokens": 64, "output_tokens": 8, "batch_size": 8}}
    with pytest.raises(InfeasibleError) as err:
        solve(build_condition(base | {"policy": {"redundant_experts": 3}}, "c.yaml", "c"))
    assert any("redundant_experts" in b for b in err.value.binding)
    with pytest.raises(InfeasibleError) as err:
        solve(build_condition(base | {"policy": {"ep": [16]}}, "c.yaml", "c"))
    assert any("policy.ep=[16]" in b for b in err.value.binding)


# ---- DeepSeek-V3 -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["deepseek-v3-h800x32", "deepseek-v3-h200x16", "deepseek-v3-h800x144"])
def test_deepseek_conditions_solve_to_verified_optimal_plans(name):
    condition, solution = bundled_solution(name)  # shared with test_planner
    plan = solution.plan
    assert plan.status == "optimal" and plan.solver.gap == 0.0
    assert not violations(solution.checks)
    assert plan.gpus.used == plan.gpus.model_parts == condition.cluster.num_gpus
    assert plan.expert_placement is not None
    assert plan.expert_placement.max_over_mean_token_load <= (
        plan.expert_placement.greedy_max_over_mean_token_load + 1e-4)


@pytest.mark.parametrize("name,gpus,slots", [
    ("deepseek-v3-prefill-h800x32", 32, 9),
    ("deepseek-v3-decode-h800x320", 320, 1),
    ("deepseek-v3-decode-h800x144", 144, 2),
])
def test_published_deepseek_deployments_pass_check_with_exact_gpu_counts(name, gpus, slots):
    result = CliRunner().invoke(app, ["check", str(PUBLISHED / f"{name}.yaml"),
                                      str(PUBLISHED / f"{name}.plan.yaml"), "--json",
                                      "--no-regret"])  # regret re-solves: tested in test_check_regret
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["valid"]
    p = report["parallelism"]
    assert p["tp"] * p["attn_dp"] * p["sp"] == p["etp"] * p["ep"] == gpus
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["gpu_count.parts_equal_gpus"]["passed"]
    assert checks["gpu_count.parts_equal_gpus"]["value"] == f"{gpus} parts"
    assert checks["experts.slots_per_gpu"]["passed"]
    condition = load_condition(PUBLISHED / f"{name}.yaml")
    assert (condition.model.num_experts + condition.policy.redundant_experts) // p["ep"] == slots


def test_mla_kv_cache_is_not_split_by_tp():
    condition = load_condition(ROOT / "conditions" / "deepseek-v3-h200x16.yaml")
    from solver.physics.shapes import ParallelShape
    a = evaluate_plan(condition, ParallelShape(tp=1, attn_dp=16, ep=16), 16, [0, 61])[1][0]
    b = evaluate_plan(condition, ParallelShape(tp=4, attn_dp=4, ep=16), 16, [0, 61])[1][0]
    # tp=4 groups hold 4x the sequences of tp=1 groups and cannot split the latent cache
    assert b.kv_cache_bytes == pytest.approx(4 * a.kv_cache_bytes, rel=0.01)


# ---- sequence parallelism ----------------------------------------------------------------------
def _long_prompt(intra_gb_per_s: float) -> dict:
    return {"name": "long", "model": "llama-3.1-8b",
            "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 8,
                         "intra_node_gb_per_s": intra_gb_per_s},
            "workload": {"input_tokens": 131072, "output_tokens": 16, "batch_size": 1},
            "objective": {"latency_weight": 1, "throughput_weight": 0}}


@pytest.mark.parametrize("intra", [450.0, 0.5])
def test_128k_prompt_uses_sp_exactly_when_it_lowers_ttft(intra):
    condition = build_condition(_long_prompt(intra), "long", "long")
    plan = solve(condition).plan
    problem = build_problem(condition)
    best = {True: float("inf"), False: float("inf")}
    for table in problem.tables:
        split = best_split(problem, table)
        if split is None:
            continue
        shape = table.costs.shape
        metrics = evaluate_plan(condition, shape, table.costs.batch_size, split.boundaries)[2]
        best[shape.sp > 1] = min(best[shape.sp > 1], metrics.ttft_s)
    assert (plan.parallelism.sp > 1) == (best[True] < best[False])
    if intra == 450.0:
        assert plan.parallelism.sp > 1  # fast NVLink: splitting the prompt pays


# ---- ample GPUs --------------------------------------------------------------------------------
def test_ample_gpus_reports_how_many_to_buy():
    data = {"name": "ample", "model": "llama-3.1-70b",
            "precision": {"weights": "fp8", "kv_cache": "fp8"},
            "hardware": {"gpu": "h100-sxm-80gb", "max_gpus": 64},
            "workload": {"input_tokens": 2048, "output_tokens": 256, "max_batch_size": 128},
            "slo": {"tpot_ms": 30}}
    condition = build_condition(data, "ample", "ample")
    solution = solve(condition)
    plan = solution.plan
    assert plan.gpus.available == 64 and 1 <= plan.gpus.used <= 64
    assert plan.parallelism.dp == 1
    assert plan.metrics.tpot_ms <= 30
    from solver.render.plan_markdown import plan_markdown
    assert f"GPUs to buy: {plan.gpus.used}" in plan_markdown(condition, solution)


def test_plan_document_numbers_include_the_expert_placement():
    """plan.md's formula section and plan.json report the same TTFT/TPOT for a skewed MoE plan."""
    from solver.render.plan_markdown import plan_markdown

    condition, solution = bundled_solution("deepseek-v3-h200x16")
    metrics = solution.figures.metrics  # the plan as written, evaluated by the planner
    assert solution.plan.expert_placement is not None
    assert metrics.ttft_s * 1e3 == pytest.approx(solution.plan.metrics.ttft_ms, rel=1e-12)
    assert metrics.tpot_s * 1e3 == pytest.approx(solution.plan.metrics.tpot_ms, rel=1e-12)
    assert f"**{solution.plan.metrics.tpot_ms:,.3f} ms**" in plan_markdown(condition, solution)
