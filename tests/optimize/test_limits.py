"""Search limits: deterministic work limits decide every answer; --time-limit is a run-wide
wall-clock safety net. No test here asserts a wall time: they assert refusals, the limits that were
hit, what the plan says about them, and byte-identical plans with a CPU hog running beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

import solver.optimize.core as core
import solver.planning.relax as relax
from solver.cli import app
from solver.errors import InfeasibleError, InputError
from solver.inputs.condition import build_condition, load_condition
from solver.optimize.exhaustive import MAX_ORACLE_LAYERS
from solver.optimize.formulation import PlacementModel
from solver.optimize.problem import build_problem
from solver.optimize.screening import Screening
from solver.optimize.settings import SolverSettings
from solver.physics.placement import PLACEMENT_WORK, place_all_degrees, zipf_loads
from solver.planning.modes import plan_serving
from solver.planning.planner import solve
from solver.render.infeasibility import infeasibility_markdown
from solver.render.outputs import plan_json
from solver.render.plan_markdown import plan_markdown
from solver.runtime.limits import Deadline
from tests.bundled import bundled_solution
from tests.paths import CONDITIONS
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
BUNDLED = sorted(p for folder in ("", "published", "paper")
                 for p in (CONDITIONS / folder).glob("*.yaml")
                 if not p.name.endswith(".plan.yaml") and "mode: auto" not in p.read_text()
                 and "mode: disaggregated" not in p.read_text())  # planned by planning/modes.py


def _deep(layers: int) -> dict:
    """A dense model with `layers` layers that fits on 32 H100 with pipelines."""
    return {"name": f"deep-{layers}", "model": {
        "name": "deep", "num_hidden_layers": layers, "hidden_size": 256, "num_attention_heads": 8,
        "num_key_value_heads": 4, "intermediate_size": 1024, "vocab_size": 32000},
        "precision": {"weights": "bf16", "kv_cache": "bf16", "activations": "bf16"},
        "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 4, "gpus_per_node": 8},
        "workload": {"input_tokens": 1024, "output_tokens": 256, "max_batch_size": 64}}


# ---- determinism under load ------------------------------------------------------------------
def _plans(shared: bool) -> dict[str, str]:
    """plan.json of every bundled condition; `shared`: the solutions tests/bundled.py keeps for this
    session (solved once with the default settings, as here: test_planner and test_moe read the
    same ones), else solved now."""
    out = {}
    for path in BUNDLED:
        try:
            if shared:
                plan = bundled_solution(path.relative_to(CONDITIONS).with_suffix("").as_posix())[1].plan
            else:
                plan = solve(load_condition(path)).plan
        except InfeasibleError as exc:
            out[path.name] = f"infeasible: {exc}"
            continue
        assert not [hit for hit in plan.solver.limits_hit if hit.startswith("time limit")], path
        out[path.name] = plan_json(plan)
    return out


def test_bundled_plans_are_byte_identical_with_a_cpu_hog_beside_them():
    """Every bundled condition, solved on a quiet machine and again while a busy loop competes for
    the CPU: the same plan.json, and the wall-clock safety net never hit."""
    assert len(BUNDLED) >= 15
    quiet = _plans(shared=True)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _plans(shared=False)
    finally:
        hog.kill()
        hog.wait()
    assert busy == quiet


def _mode_plans() -> dict[str, str]:
    """plan.json of the conditions planned in another serving mode (planning/modes.py): the
    bundled auto condition, and a small disaggregated one (the DeepSeek pools take ~10 s each)."""
    small = build_condition({
        "model": "llama-3.1-8b", "hardware": {"gpu": "l40s", "num_nodes": 2, "gpus_per_node": 2},
        "workload": {"input_tokens": 1024, "output_tokens": 128},
        "serving": {"mode": "disaggregated"}}, "disagg.yaml", "disagg")
    conditions = {"auto": load_condition(CONDITIONS / "llama8b-h100x8-auto.yaml"), "disaggregated": small}
    return {name: plan_json(plan_serving(c).plan) for name, c in conditions.items()}


def test_auto_and_disaggregated_plans_are_byte_identical_with_a_cpu_hog_beside_them():
    quiet = _mode_plans()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _mode_plans()
    finally:
        hog.kill()
        hog.wait()
    assert busy == quiet
    assert '"prefill"' in quiet["disaggregated"]  # the pools were planned, not an aggregated plan


# ---- deep models and big clusters ------------------------------------------------------------
def test_model_size_does_not_grow_with_the_number_of_layers():
    """Stage-boundary kind counts are closed forms: 100,000 layers give the same CP-SAT model as
    100 for the same candidate. 30,000 layers plan to a verified optimum; at 100,000 every step of
    the H100's fitted 100 us per layer reaches past the integer model's range, and the refusal says
    so instead of running out of memory."""
    sizes = []
    for layers in (100, 100_000):
        problem = build_problem(build_condition(_deep(layers), "deep", "deep"))
        index = next(i for i in range(problem.num_candidates) if problem.candidates.shape(i).pp == 16)
        model = PlacementModel(problem, Screening(kept=[problem.table(index)])).model.proto
        sizes.append((len(model.variables), len(model.constraints),
                      sum(len(c.linear.vars) for c in model.constraints)))
    assert sizes[0] == sizes[1]
    solution = solve(build_condition(_deep(30_000), "deep", "deep"))
    assert solution.plan.status == "optimal" and solution.plan.parallelism.pp > 1
    with pytest.raises(InfeasibleError) as refused:  # the screening counts say why; no core
        solve(build_condition(_deep(100_000), "deep", "deep"),
              settings=SolverSettings(name_binding_core=False))
    assert any(line.startswith("out_of_range: ") for line in refused.value.binding)


def test_exhaustive_method_refuses_models_deeper_than_its_matrices():
    condition = build_condition(_deep(MAX_ORACLE_LAYERS + 1), "deep.yaml", "deep")
    with pytest.raises(InputError) as err:
        solve(condition, method="exhaustive")
    assert "--method" in str(err.value) and "cp-sat" in str(err.value)


def test_runner_up_table_is_not_searched_beyond_its_size_limit():
    condition = build_condition(_deep(30_000), "deep", "deep")
    solution = solve(condition, with_runner_ups=True)
    assert "beyond this table's size limit" in plan_markdown(condition, solution)


def test_infeasibility_core_is_skipped_above_its_model_size(monkeypatch):
    """Too many candidate stages for one model: no core, the screening counts name what binds."""
    data = {"name": "tight", "model": "llama-3.1-70b",
            "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1},
            "workload": {"input_tokens": 1024, "output_tokens": 128, "max_batch_size": 8},
            "slo": {"tpot_ms": 0.01}}
    condition = build_condition(data, "tight", "tight")
    monkeypatch.setattr(core, "MAX_CORE_STAGE_ROWS", 10)
    with pytest.raises(InfeasibleError) as err:
        solve(condition)
    assert not any("infeasibility core" in b for b in err.value.binding)
    assert any(b.startswith("tpot_slo:") for b in err.value.binding)


# ---- the run-wide deadline and the work limits -------------------------------------------------
def test_placement_searches_share_one_deterministic_budget():
    """Per-layer loads on several EP degrees: all packing searches together stay within the
    budget, and the same placements come out twice."""
    loads = [zipf_loads(64, alpha)[layer:] + zipf_loads(64, alpha)[:layer]
             for layer, alpha in enumerate((0.3, 0.6, 0.9, 1.2))]
    runs = [place_all_degrees(loads, [2, 4, 8], 8, per_layer=True, budget=1.0) for _ in range(2)]
    (first, work), (second, _) = runs
    assert work.work <= 1.0 * 1.05 and PLACEMENT_WORK > 1.0
    assert {ep: p.layers for ep, p in first.items()} == {ep: p.layers for ep, p in second.items()}


def test_expired_deadline_keeps_the_greedy_placement_and_says_so():
    loads = [zipf_loads(256, 0.4)]
    deadline = Deadline(0.0)
    placements, work = place_all_degrees(loads, [8, 32], 0, per_layer=False, deadline=deadline)
    assert work.deadline_hit and work.descent_cells == 0 and work.searches == 0
    assert {p.layers[0].method for p in placements.values()} == {"greedy"}
    assert deadline.hits == ["expert placement"]


def test_relaxations_stop_at_their_solve_count(monkeypatch):
    condition = load_condition(ROOT / "conditions" / "infeasible" / "llama70b-tpot-1ms.yaml")
    with pytest.raises(InfeasibleError) as err:  # the relaxations need the error, not its core
        solve(condition, settings=SolverSettings(name_binding_core=False))
    monkeypatch.setattr(relax, "MAX_RELAXATION_SOLVES", 2)
    report = relax.explain_infeasibility(condition, err.value, SolverSettings())
    assert report.solves == 2 and report.budget_hit == "solves"
    assert "stopped at the limit of 2 solves" in infeasibility_markdown(report)


def test_relaxations_stop_at_the_run_deadline():
    condition = load_condition(ROOT / "conditions" / "infeasible" / "llama70b-tpot-1ms.yaml")
    with pytest.raises(InfeasibleError) as err:
        solve(condition, settings=SolverSettings(name_binding_core=False))
    deadline = Deadline(0.0)
    report = relax.explain_infeasibility(condition, err.value, SolverSettings(deadline=deadline))
    assert report.solves == 0 and report.budget_hit == "time"
    assert "stopped at --time-limit" in infeasibility_markdown(report) and deadline.hits == ["relaxations"]


def test_runner_up_table_stops_at_the_deadline_and_plan_json_says_so():
    condition = load_condition(ROOT / "conditions" / "llama70b-h100x8.yaml")
    solution = solve(condition, settings=SolverSettings(deadline=Deadline(0.0)), with_runner_ups=True)
    assert solution.runner_ups and all(r.metrics is None for r in solution.runner_ups)
    assert "not computed: --time-limit reached" in {r.reason for r in solution.runner_ups}
    assert "not computed: --time-limit reached" in plan_markdown(condition, solution)
    assert "time limit: runner-up table" in json.loads(plan_json(solution.plan))["solver"]["limits_hit"]


def test_cli_time_limit_bounds_the_whole_run_and_says_when_it_was_hit(tmp_path):
    """A 10 ms --time-limit for a 144-GPU DeepSeek condition: every search stage is cut, the plan
    is still written and verified, and both the console and plan.json name the stages."""
    out = tmp_path / "plan"
    result = CliRunner().invoke(app, ["solve", str(ROOT / "conditions" / "deepseek-v3-h800x144.yaml"),
                                      "-o", str(out), "--time-limit", "0.01"])
    assert result.exit_code == 0, result.output
    assert "time limit reached (0.01 s) in: expert placement" in result.output
    limits = json.loads((out / "plan.json").read_text())["solver"]["limits_hit"]
    assert "time limit: expert placement" in limits and "time limit: plan search" in limits


# ---- the CpSolver factory ----------------------------------------------------------------------
def test_cp_solver_factory_sets_every_limit_and_leaves_sigint_to_python():
    from solver.runtime.limits import new_cp_solver

    solver = new_cp_solver(2.5, Deadline(30.0), workers=3, seed=7, log=True)
    p = solver.parameters
    assert (p.max_deterministic_time, p.num_workers, p.random_seed) == (2.5, 3, 7)
    assert 0 < p.max_time_in_seconds <= 30.0 and p.log_search_progress
    assert not p.catch_sigint_signal


def test_an_invalid_model_is_an_internal_error_not_unknown():
    from ortools.sat.python import cp_model

    from solver.runtime.limits import new_cp_solver, status_of

    model = cp_model.CpModel()
    model.new_int_var(0, 10, "x")
    broken = model.proto.constraints.add()  # refers to a variable that does not exist
    broken.linear.vars.append(5)
    broken.linear.coeffs.append(1)
    broken.linear.domain.extend([0, 1])
    solver = new_cp_solver(1.0, None)
    with pytest.raises(RuntimeError, match="CP-SAT rejected the model: Out of bound"):
        status_of(solver, solver.solve(model), model)


def test_plan_json_has_no_wall_time_and_older_plans_still_load():
    from solver.document.plan import Plan

    condition = load_condition(ROOT / "conditions" / "llama70b-h100x8.yaml")
    data = json.loads(plan_json(solve(condition).plan))
    assert "seconds" not in data["solver"] and data["solver"]["limits_hit"] == []
    older = json.loads(json.dumps(data))
    older["solver"]["seconds"] = 1.23  # plan.json written before wall time left it
    del older["solver"]["limits_hit"]
    assert Plan.model_validate(older).solver == Plan.model_validate(data).solver


@pytest.mark.parametrize("mode", ["continuous", "static"])
def test_an_slo_beyond_the_integer_range_binds_no_plan(mode):
    """An SLO whose limit in a candidate's units is beyond the integer model's range (e2e <= 10^7
    s here) is held at the top of the range, where no candidate left in can reach it. It used to be
    cut to 2^50 units, below metrics the range still allows: the imported json-trio condition (e2e
    <= 30 s) went infeasible although its plan ends in 23 s."""
    data = yaml.safe_load((ROOT / "conditions" / "llama70b-h100x8.yaml").read_text())
    data["serving"] = {"mode": mode}
    plain = json.loads(plan_json(solve(build_condition(data, "plain", "plain")).plan))
    data["slo"]["e2e_latency_ms"] = 1e10
    loose = json.loads(plan_json(solve(build_condition(data, "loose", "loose")).plan))
    for key in ("parallelism", "batch_size", "metrics"):
        assert loose[key] == plain[key], key
