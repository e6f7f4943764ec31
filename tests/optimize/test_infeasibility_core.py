"""Binding constraint families named from CP-SAT's sufficient assumptions (issue 5)."""

from __future__ import annotations

import pytest

import solver.optimize.core as core
from solver.errors import InfeasibleError
from solver.inputs.condition import build_condition, load_condition
from solver.optimize.core import binding_families
from solver.optimize.families import TPOT
from solver.optimize.problem import build_problem
from solver.optimize.screening import classify, excludes_every_candidate
from solver.planning.planner import solve
from tests.corpus import generate, generate_continuous
from tests.paths import CONDITIONS

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


# ---- the core the screening bounds prove (bound_core.py) ---------------------------------------
INFEASIBLE = sorted((CONDITIONS / "infeasible").glob("*.yaml"))
RATED = BASE | {"workload": {"input_tokens": 1024, "output_tokens": 128, "max_batch_size": 64}}


def _generated(data: dict, slo: dict) -> object:
    """A corpus condition with its SLOs replaced by `slo` (the percentile kept)."""
    kept = {k: v for k, v in (data.get("slo") or {}).items() if k == "percentile"}
    return build_condition(data | {"slo": kept | slo}, "c.yaml", data["name"])


def _rated(tpot_ms: float, rate: float) -> object:
    workload = RATED["workload"] | {"request_rate": rate}
    return build_condition(RATED | {"workload": workload, "slo": {"tpot_ms": tpot_ms}}, "c.yaml", "c")


CORE_CASES = {  # name: (condition, whether the screening bounds prove the core)
    **{p.stem: (lambda p=p: load_condition(p), "tpot" in p.stem) for p in INFEASIBLE},
    **{f"{data['name']}-{key}": (lambda data=data, key=key: _generated(data, {f"{key}_ms": 0.01}), True)
       for data in (generate()[3], generate()[13], generate_continuous()[2], generate_continuous()[10])
       for key in ("ttft", "tpot", "e2e_latency")},
    # slo.tpot_ms alone excludes every plan; the rate is met by some plan: proven by the bounds
    "tpot-under-a-rate": (lambda: _rated(4, 10), True),
    # slo.tpot_ms alone excludes every plan, and so does the request rate, which CP-SAT names:
    # no plan without the TPOT SLO exists, so the bounds prove nothing
    "tpot-and-rate-each": (lambda: _rated(4, 100), False),
}  # neither alone, the two together: test_two_families_needed_together_go_through_cp_sat


@pytest.mark.parametrize("name", sorted(CORE_CASES))
def test_the_core_from_the_bounds_is_the_cp_sat_core(name, monkeypatch):
    """The core named from the screening bounds is the one the CP-SAT search names with the
    shortcut off; when the bounds prove it, no core model is built (and few tables)."""
    make, proven = CORE_CASES[name]
    condition = make()
    built = []
    model = core.PlacementModel
    monkeypatch.setattr(core, "PlacementModel", lambda *a, **k: built.append(1) or model(*a, **k))
    problem = build_problem(condition)
    fast = binding_families(problem)
    assert len(built) == (0 if proven else 1)
    if proven:
        assert problem.tables_built < problem.num_candidates
    full = binding_families(build_problem(condition), from_bounds=False)
    assert fast == full and fast
    assert len(built) == (1 if proven else 2)


def test_two_families_needed_together_go_through_cp_sat(monkeypatch):
    """slo.tpot_ms and the request rate each leave plans, together none: CP-SAT's core."""
    built = []
    model = core.PlacementModel
    monkeypatch.setattr(core, "PlacementModel", lambda *a, **k: built.append(1) or model(*a, **k))
    problem = build_problem(_rated(6, 10))
    assert not excludes_every_candidate(problem, TPOT)
    assert binding_families(problem) == ["slo.tpot_ms", "workload.request_rate"]
    assert len(built) == 1


def test_every_candidate_is_checked_against_the_family_own_bound():
    """llama70b-tpot-1ms: screening records kv_capacity first for some candidates; the TPOT bound
    breaks those too, so slo.tpot_ms alone excludes every plan."""
    problem = build_problem(load_condition(CONDITIONS / "infeasible" / "llama70b-tpot-1ms.yaml"))
    reasons = set(classify(problem).reasons)
    assert "kv_capacity" in reasons and "tpot_slo" in reasons
    assert excludes_every_candidate(problem, TPOT)
