"""Binding constraint families named from CP-SAT's sufficient assumptions (issue 5)."""

from __future__ import annotations

import pytest

from solver.errors import InfeasibleError
from solver.inputs.condition import build_condition
from solver.optimize.core import binding_families
from solver.optimize.problem import build_problem
from solver.planning.planner import solve

BASE = {"model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1, "gpus_per_node": 2},
        "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 8}}


def _condition(**changes):
    return build_condition(BASE | changes, "c.yaml", "c")


def test_tpot_alone_binds_when_memory_is_ample():
    families = binding_families(build_problem(_condition(slo={"tpot_ms": 0.01})))
    assert families == ["slo.tpot_ms"]


def test_ttft_and_tpot_both_named_when_each_alone_is_impossible():
    families = binding_families(build_problem(_condition(slo={"tpot_ms": 0.01, "ttft_ms": 0.01})))
    assert families is not None and set(families) <= {"slo.ttft_ms", "slo.tpot_ms"} and families


def test_memory_named_per_stage_when_the_model_cannot_fit():
    condition = build_condition(
        {"model": "llama-3.1-405b", "hardware": {"gpu": "l40s", "num_nodes": 1, "gpus_per_node": 2},
         "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 1}}, "c.yaml", "c")
    families = binding_families(build_problem(condition))
    assert families and all(f.startswith("memory on pipeline stage") for f in families)


def test_solve_reports_the_core_in_the_binding_list():
    with pytest.raises(InfeasibleError) as err:
        solve(_condition(slo={"tpot_ms": 0.01}))
    assert any("infeasibility core" in line and "slo.tpot_ms" in line for line in err.value.binding)


def test_feasible_problem_has_no_core():
    assert binding_families(build_problem(_condition())) is None


def _is_feasible_with(problem, names: set[str]) -> bool:
    """An independent check of a core's claim: the model with only `names` enforced."""
    from ortools.sat.python import cp_model

    from solver.optimize.formulation import PlacementModel
    from solver.optimize.screening import Screening

    for index in range(problem.num_candidates):
        problem.table(index)
    model = PlacementModel(problem, Screening(kept=problem.tables), with_assumptions=True)
    model.model.clear_assumptions()
    model.model.add_assumptions([v for n, v in model.family_literals.items() if n in names])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.stop_after_first_solution = True  # any plan answers the question
    status = solver.solve(model.model)
    assert status in (cp_model.FEASIBLE, cp_model.OPTIMAL, cp_model.INFEASIBLE)
    return status != cp_model.INFEASIBLE


def _llama70b_bf16_on_two_l40s() -> object:
    return build_condition(
        {"model": "llama-3.1-70b",
         "precision": {"weights": "bf16", "kv_cache": "bf16", "activations": "bf16"},
         "hardware": {"gpu": "l40s", "num_nodes": 1, "gpus_per_node": 2},
         "workload": {"input_tokens": 2048, "output_tokens": 512, "max_batch_size": 256},
         "slo": {"ttft_ms": 2000, "tpot_ms": 50}}, "c.yaml", "c")


@pytest.fixture(scope="module")
def llama70b_core() -> tuple[object, list[str] | None]:
    """(problem, binding_families(problem)) of Llama-70B bf16 on two L40S, computed once for the
    two tests below (the core's search takes seconds)."""
    problem = build_problem(_llama70b_bf16_on_two_l40s())
    return problem, binding_families(problem)


def test_memory_is_named_when_memory_alone_excludes_every_plan(llama70b_core):
    """Llama-70B bf16 on two L40S: memory alone excludes every plan (70.6 GB of weights per GPU
    > 43.5 GB usable), and so does slo.tpot_ms alone (141 GB read per token over 2 x 864 GB/s is
    82 ms at the roofline); the core names the physical limit."""
    _, families = llama70b_core
    assert families == ["memory on pipeline stage 0", "memory on pipeline stage 1"]


@pytest.mark.parametrize("changes", [
    {"slo": {"tpot_ms": 0.01}},
    {"slo": {"tpot_ms": 0.01, "ttft_ms": 0.01}},
    {"slo": {"ttft_ms": 30}, "workload": {"input_tokens": 8192, "output_tokens": 128, "batch_size": 64}},
])
def test_every_core_is_minimal_and_infeasible(changes):
    problem = build_problem(_condition(**changes))
    families = binding_families(problem)
    assert families
    assert not _is_feasible_with(problem, set(families))
    for member in families:
        assert _is_feasible_with(problem, set(families) - {member}), member


def test_the_llama70b_core_is_verified_independently(llama70b_core):
    problem, core = llama70b_core
    families = set(core or [])
    assert families and not _is_feasible_with(problem, families)
    assert all(_is_feasible_with(problem, families - {m}) for m in families)
