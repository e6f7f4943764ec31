"""CP-SAT must reach exactly the exhaustive optimum (same integer objective) on a generated corpus."""

from __future__ import annotations

from functools import cache

import pytest

from solver.errors import InfeasibleError
from solver.inputs.condition import build_condition
from solver.optimize.exhaustive import solve_exhaustive
from solver.optimize.formulation import solve_cpsat
from solver.optimize.problem import build_problem
from solver.optimize.screening import evaluate_split
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from tests.corpus import generate, generate_continuous

CORPUS = generate()
CONTINUOUS = generate_continuous()


def _problem(data):
    return build_problem(build_condition(data, data["name"], data["name"]))


@cache
def _oracle(index: int):
    problem = _problem(CORPUS[index])
    return problem, solve_exhaustive(problem)


@cache
def _oracle_continuous(index: int):
    problem = _problem(CONTINUOUS[index])
    return problem, solve_exhaustive(problem)


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[d["name"] for d in CORPUS])
def test_cpsat_matches_exhaustive(index):
    _agree(*_oracle(index))


@pytest.mark.parametrize("index", range(len(CONTINUOUS)), ids=[d["name"] for d in CONTINUOUS])
def test_cpsat_matches_exhaustive_continuous(index):
    """Continuous batching: candidates are shape x max-num-seqs x chunk budget x utilization,
    the forms mix sums, slowest stages and rounds of two step kinds."""
    _agree(*_oracle_continuous(index))


def _outcomes(solved, extra: str, has_extra) -> dict[str, int]:
    """How many of the (data, problem, oracle) cases are feasible, infeasible, pipelined, MoE and
    have the `extra` property."""
    outcomes = {"feasible": 0, "infeasible": 0, "pp>1": 0, "moe": 0, extra: 0}
    for data, problem, oracle in solved:
        if oracle.table is None:
            outcomes["infeasible"] += 1
            continue
        outcomes["feasible"] += 1
        outcomes["pp>1"] += oracle.table.pp > 1
        outcomes["moe"] += problem.condition.model.is_moe
        outcomes[extra] += has_extra(data, problem)
    return outcomes


def test_continuous_corpus_is_interesting():
    outcomes = _outcomes(((data, *_oracle_continuous(i)) for i, data in enumerate(CONTINUOUS)),
                         "slo", lambda data, _: "slo" in data)
    assert outcomes["feasible"] >= 12 and outcomes["infeasible"] >= 2
    assert outcomes["pp>1"] >= 3 and outcomes["moe"] >= 5 and outcomes["slo"] >= 5


def _agree(problem, oracle):
    for screen in (True, False):
        result = solve_cpsat(problem, SolverSettings(time_limit_s=60, screen_candidates=screen))
        if oracle.objective is None:
            assert result.status == "infeasible", f"screen={screen}: oracle says infeasible"
            continue
        assert result.status == "optimal", f"screen={screen}"
        assert result.objective == oracle.objective, f"screen={screen}"
        assert result.best_bound == oracle.objective
        # the decoded split really achieves the objective it claims
        assert evaluate_split(problem, result.table, result.boundaries) == result.objective


def test_corpus_is_interesting():
    """The corpus exercises pipelines, MoE, infeasible cases and several layer kinds."""
    outcomes = _outcomes(((data, *_oracle(i)) for i, data in enumerate(CORPUS)),
                         "multi-kind", lambda _, problem: len(problem.kinds) > 1)
    assert len(CORPUS) >= 30
    assert outcomes["feasible"] >= 20 and outcomes["infeasible"] >= 2
    assert outcomes["pp>1"] >= 3 and outcomes["moe"] >= 5 and outcomes["multi-kind"] >= 3


@pytest.mark.parametrize("data", CORPUS[:12], ids=[d["name"] for d in CORPUS[:12]])
def test_plan_objective_matches_float_evaluator(data):
    """The float objective of the decoded plan is within rounding of the integer optimum."""
    condition = build_condition(data, data["name"], data["name"])
    try:
        solution = solve(condition)
    except InfeasibleError:
        return
    plan = solution.plan
    assert plan.solver.objective == pytest.approx(plan.metrics.objective, rel=1e-5)


# ---- closed-form layer counts (the model has no arrays of length L) ----------------------------
def test_layer_pattern_counts_match_the_layer_kinds():
    """LayerPattern's closed form equals counting Architecture.layer_kind, for every boundary."""
    from solver.inputs.cards import ModelCard
    from solver.physics.architecture import Architecture, LayerPattern

    for layers, first_dense, every in [(7, 0, None), (9, 3, None), (12, 0, 2), (13, 5, 3), (10, 4, 1),
                                       (8, 7, 4), (6, 1, 5)]:
        card = ModelCard(name="t", num_hidden_layers=layers, hidden_size=64, num_attention_heads=4,
                         intermediate_size=128, vocab_size=100, num_experts=4, num_experts_per_tok=2,
                         moe_intermediate_size=32, first_k_dense_layers=first_dense,
                         sliding_window=8 if every else None, sliding_window_every=every)
        arch = Architecture(card)
        pattern = arch.layer_pattern
        for b in range(layers + 1):
            counts = pattern.counts_before(b)
            for kind in arch.distinct_kinds:
                expected = sum(1 for k in arch.layer_kinds[:b] if k == kind)
                assert counts[LayerPattern.key(kind)] == expected, (layers, first_dense, every, b, kind)


FOUR_KINDS = [  # dense-first MoE with windows on every 2nd / 3rd layer: all four layer kinds
    {"name": f"four-kinds-{i}", "model": {
        "name": "four", "num_hidden_layers": layers, "hidden_size": 1024, "num_attention_heads": 8,
        "num_key_value_heads": 8, "intermediate_size": 4096, "vocab_size": 32000, "num_experts": 8,
        "num_experts_per_tok": 2, "moe_intermediate_size": 1024, "first_k_dense_layers": dense,
        "sliding_window": 256, "sliding_window_every": every},
     "hardware": {"gpu": "l40s", "num_nodes": 1, "gpus_per_node": 8},
     "workload": {"input_tokens": 1024, "output_tokens": 128, "max_batch_size": 16},
     # continuous batching on small grids: every candidate goes into one unscreened model
     "serving": {"mode": "continuous", "utilization": [0.5, 0.9], "chunk_tokens": [2048, 8192]},
     "policy": {"pp": pps, "use_all_gpus": False}}
    for i, (layers, dense, every, pps) in enumerate([(9, 3, 2, [2, 4]), (11, 4, 3, [4, 8]),
                                                      (8, 2, 2, [2, 8])])
]


@pytest.mark.parametrize("data", FOUR_KINDS, ids=[d["name"] for d in FOUR_KINDS])
def test_cpsat_matches_exhaustive_with_four_layer_kinds(data):
    problem = _problem(data)
    assert len(problem.kinds) == 4
    oracle = solve_exhaustive(problem)
    # deterministic limits decide; the wall clock is only a safety net on a busy machine
    result = solve_cpsat(problem, SolverSettings(screen_candidates=False, time_limit_s=900))
    assert result.status == "optimal" and result.objective == oracle.objective
    assert result.table.pp > 1  # boundaries cross the first MoE layer and the windows
    assert evaluate_split(problem, result.table, result.boundaries) == result.objective


@pytest.mark.parametrize("data", [*CORPUS[:12], *CONTINUOUS[:12]], ids=lambda d: d["name"])
def test_one_stage_split_is_what_the_split_search_finds(data):
    """pp = 1 takes a shortcut (exhaustive.one_stage_split); the general search (searched_split)
    must give the same result for every one-stage candidate, with and without a cutoff."""
    from solver.optimize.exhaustive import one_stage_split, searched_split

    problem = _problem(data)
    one_stage = [i for i in range(problem.num_candidates)
                 if problem.shapes[int(problem.candidates.shape_index[i])].pp == 1]
    if not one_stage:
        pytest.skip("no one-stage candidate (the model needs pipeline stages)")
    for i in one_stage[:40]:
        table = problem.table(i)
        found = searched_split(problem, table)
        assert one_stage_split(problem, table) == found
        if found is not None:
            for cutoff in (found.objective, found.objective - 1):
                assert one_stage_split(problem, table, cutoff) == searched_split(problem, table, cutoff)
