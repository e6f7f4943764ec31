"""Every bundled mixed condition: a verified, proven-optimal plan at least as good as the best
single pool and the proportional-split heuristic, the same plan.json twice, and the device map."""

from __future__ import annotations

import functools

import pytest

from solver.inputs.condition import load_condition
from solver.planning.mixed_planner import MixedSolution, solve_mixed
from tests.paths import CONDITIONS

MIXED = sorted((CONDITIONS / "mixed").glob("*.yaml"))


@functools.cache
def solved(name: str) -> MixedSolution:
    return solve_mixed(load_condition(CONDITIONS / "mixed" / name))


@pytest.mark.parametrize("path", MIXED, ids=[p.stem for p in MIXED])
def test_bundled_mixed_plans(path) -> None:  # noqa: ANN001
    solution = solved(path.name)
    plan = solution.plan
    assert plan.status == "optimal"
    assert all(row[3] for row in solution.checks)
    comparison = plan.baselines
    assert comparison is not None
    assert comparison.mixed_tokens_per_s >= comparison.best_single_pool_tokens_per_s
    assert comparison.mixed_tokens_per_s >= comparison.proportional_tokens_per_s
    assert plan.metrics.throughput_tokens_per_s == pytest.approx(comparison.mixed_tokens_per_s, rel=1e-3)
    assert len(plan.gpu_pools) >= 2
    # every GPU used appears once, on its own pool's card
    cond = load_condition(path)
    kinds = {p.name: p.gpu_name for p in cond.mixed.pools}
    assert all(d.kind == kinds[d.pool] for d in plan.devices)
    assert len(plan.devices) == plan.gpus.used
    # the single-kind fields describe the largest replica group
    sizes = [g.count * g.gpus_per_replica for g in plan.replicas]
    big = plan.replicas[sizes.index(max(sizes))]
    assert (plan.parallelism.pp, plan.parallelism.dp) == (len(big.stages), big.count)


def test_same_input_same_plan_json() -> None:
    path = CONDITIONS / "mixed" / "llama70b-h100x16-a100x16.yaml"
    first = solve_mixed(load_condition(path)).plan.model_dump_json()
    assert solve_mixed(load_condition(path)).plan.model_dump_json() == first
