"""The bundled conditions solved once per test session with the default settings.

Several test modules check different things about the same plans (test_planner: every bundled
condition verified and rendered; test_moe: the DeepSeek plans' expert placement and plan document;
test_limits: the quiet-machine side of its determinism test);
the DeepSeek conditions take seconds each to solve, so each is solved once and shared. The
solutions are frozen (pydantic plans, a frozen dataclass); tests only read them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from solver.inputs.condition import Condition, load_condition
from solver.planning.planner import Solution, solve

CONDITIONS = Path(__file__).resolve().parent.parent / "conditions"


@functools.cache
def bundled_solution(name: str) -> tuple[Condition, Solution]:
    """(condition, solution) of conditions/NAME.yaml (NAME may start with a subfolder: published/...)."""
    condition = load_condition(CONDITIONS / f"{name}.yaml")
    return condition, solve(condition)
