"""Screening on the vectorized cost model: the same verdicts as full tables, far fewer tables built.

The reference is the definition of the screening, computed from every candidate's full table:
removed for memory / an SLO when its balanced-split bounds break it (first reason in that order),
dominated when its objective bound exceeds the best balanced-split plan, kept otherwise.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import yaml

from solver.inputs.condition import build_condition, load_condition
from solver.optimize.problem import build_problem
from solver.optimize.screening import (
    balanced_boundaries,
    bound_violation,
    bounds_of,
    classify,
    evaluate_split,
    objective_bound,
    presolve_candidates,
)
from solver.physics.cost import LayerCost, PhaseCost
from tests.corpus import generate, generate_continuous
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
BUNDLED = ["deepseek-v3-h800x144", "gpt-oss-120b-h100x4", "mixtral8x22b-h100x16", "llama70b-h100x8",
           "qwen3-30b-a3b-h100x2"]
CORPUS = generate()[:12]
CONTINUOUS = generate_continuous()[:12]


STATIC = {"mode": "static"}
SMALL_CONTINUOUS = {"mode": "continuous", "utilization": [0.5, 0.93], "chunk_tokens": [2048, 8192]}


def _bundled(name, serving=None):
    """A bundled condition, in its own serving mode or with `serving` instead."""
    path = ROOT / "conditions" / f"{name}.yaml"
    if serving is None:
        return build_problem(load_condition(path))
    data = yaml.safe_load(path.read_text(encoding="utf-8")) | {"serving": serving}
    return build_problem(build_condition(data, str(path), name))


def _static(name):
    return _bundled(name, STATIC)


def _continuous(name):
    return _bundled(name, SMALL_CONTINUOUS)


def _corpus(data):
    return build_problem(build_condition(data, data["name"], data["name"]))


def _reference(problem):
    """Screening from full tables: (removed counts, kept indices)."""
    removed, survivors, best = {}, [], None
    for t in problem.tables:
        b = bounds_of(problem, t)
        reason = bound_violation(t, b)
        if reason is not None:
            removed[reason] = removed.get(reason, 0) + 1
            continue
        survivors.append((t.index, objective_bound(problem, t)))
        value = evaluate_split(problem, t, balanced_boundaries(problem.num_layers, t.pp))
        if value is not None and (best is None or value < best):
            best = value
    kept = [i for i, lb in survivors if best is None or lb <= best]
    if len(survivors) > len(kept):
        removed["dominated"] = len(survivors) - len(kept)
    return removed, kept


def _leaves(x, ys, name):
    """(name, grid array, scalar values) for every number of a cost structure."""
    if isinstance(x, (PhaseCost, LayerCost)):
        for f in fields(x):
            yield from _leaves(getattr(x, f.name), [getattr(y, f.name) for y in ys], f"{name}.{f.name}")
    elif isinstance(x, dict):  # a LayerCost's step kinds
        for key in x:
            yield from _leaves(x[key], [y[key] for y in ys], f"{name}.{key}")
    else:
        yield name, np.broadcast_to(np.asarray(x, dtype=float), (len(ys),)), np.array(ys, dtype=float)


@pytest.mark.parametrize("problem_of", [_static, _continuous])
@pytest.mark.parametrize("name", BUNDLED[1:])
def test_grid_costs_equal_the_scalar_cost_model(name, problem_of):
    """candidate_grid runs candidate()'s formulas on arrays: every number agrees with one-by-one."""
    problem = problem_of(name)
    model = problem.cost_model
    grid = model.candidate_grid(problem.candidates.grid(), problem.candidates.grid_load())
    scalar = [model.candidate(problem.candidates.shape(i), problem.candidates.load(i))
              for i in range(problem.num_candidates)]
    parts = [(f, getattr(grid, f), [getattr(s, f) for s in scalar]) for f in (
        "microbatches", "activation_bytes", "last_stage_activation_bytes", "first_stage", "last_stage",
        "transfer")]
    parts.append(("sequences per micro-batch", grid.point.sequences_per_microbatch,
                  [s.point.sequences_per_microbatch for s in scalar]))
    parts += [(k.label, grid.layer[k], [s.layer[k] for s in scalar]) for k in grid.kinds]
    for field_name, value, values in parts:
        for leaf, got, want in _leaves(value, values, field_name):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=f"{name}: {leaf}")


@pytest.mark.parametrize("problem_of,arg", [(_static, n) for n in BUNDLED]
                         + [(_continuous, n) for n in BUNDLED[1:]]
                         + [(_corpus, d) for d in CORPUS + CONTINUOUS],
                         ids=[f"{n}-static" for n in BUNDLED] + [f"{n}-continuous" for n in BUNDLED[1:]]
                         + [d["name"] for d in CORPUS + CONTINUOUS])
def test_screening_equals_the_full_table_definition(problem_of, arg):
    problem = problem_of(arg)
    screening = presolve_candidates(problem)
    full = problem_of(arg)  # a fresh problem, no screening state: the reference builds every table
    removed, kept = _reference(full)
    assert screening.removed == removed
    assert [t.index for t in screening.kept] == kept
    verdict = classify(problem)
    for t in full.tables:  # every grid bound within its slack of the exact one, same verdict
        b = bounds_of(full, t)
        assert verdict.reasons[t.index] == bound_violation(t, b)
        assert abs(verdict.objective_lb[t.index] - objective_bound(full, t)) <= verdict.slack[t.index]


def test_deepseek_144_builds_full_tables_only_for_survivors():
    """9,481 candidates, one survives: the screening builds a handful of full tables."""
    problem = _static("deepseek-v3-h800x144")
    screening = presolve_candidates(problem)
    assert problem.num_candidates == 9481 and len(screening.kept) == 1
    assert problem.tables_built <= 5
