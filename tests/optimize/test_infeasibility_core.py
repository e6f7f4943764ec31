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
