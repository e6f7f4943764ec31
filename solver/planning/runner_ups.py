"""Runner-ups: the best plan of each other parallel-shape family, evaluated and compared with the
chosen plan. The planner carries them in its Solution; the reports (plan.md, report.html) only
format them."""

from __future__ import annotations

from dataclasses import dataclass

from solver.document.plan import Plan
from solver.optimize.alternatives import Alternative, best_per_family
from solver.optimize.problem import PlanningProblem
from solver.physics.evaluate import Metrics, evaluate_plan
from solver.physics.points import Load
from solver.physics.shapes import ParallelShape
from solver.runtime.limits import Deadline


@dataclass(frozen=True)
class RunnerUp:
    """The best plan of one other shape family, as the reports show it: evaluated with the expert
    placement the solver costed for its EP degree, and compared with the chosen plan. A family
    without a plan has only `family` and `reason`."""

    family: str
    reason: str  # why the family has no plan ("infeasible: ...", "not computed: ..."); "" if it has
    shape: ParallelShape | None = None
    batch_size: int | None = None  # concurrent sequences per replica
    load: Load | None = None  # the static batch, or max-num-seqs, utilization and chunk budget
    boundaries: tuple[int, ...] = ()  # first layer of every stage, then the number of layers
    metrics: Metrics | None = None  # seconds, tokens/s and the objective, as for the chosen plan
    objective: float | None = None  # unitless, as the optimizer sees it (integer objective / scale)
    objective_ratio: float | None = None  # its objective / the chosen plan's (> 1: worse)
    throughput_per_gpu_ratio: float | None = None  # its tokens/s per GPU / the chosen plan's
    e2e_ratio: float | None = None  # its end-to-end latency / the chosen plan's (> 1: slower)


def runner_ups(problem: PlanningProblem, plan: Plan, deadline: Deadline | None = None) -> list[RunnerUp]:
    """The best plan of every family but `plan`'s, evaluated and compared with `plan`; families not
    reached before the run's deadline say so."""
    return [_runner_up(problem, plan, alternative)
            for alternative in best_per_family(problem, plan.parallelism.shape().family, deadline)]


def _runner_up(problem: PlanningProblem, plan: Plan, alternative: Alternative) -> RunnerUp:
    if alternative.table is None or alternative.objective is None:
        return RunnerUp(alternative.family, alternative.reason)
    shape, batch = alternative.table.costs.shape, int(alternative.table.costs.batch_size)
    layout = problem.cost_model.expert_layout(shape.ep)  # the placement the solver costed
    load = problem.candidates.load(alternative.table.index)
    _, _, metrics = evaluate_plan(problem.condition, shape, load, alternative.boundaries, layout)
    ours = plan.metrics
    return RunnerUp(
        alternative.family, alternative.reason, shape, batch, load, tuple(alternative.boundaries),
        metrics,
        alternative.objective,
        objective_ratio=metrics.objective / ours.objective,
        throughput_per_gpu_ratio=(metrics.throughput_tokens_per_s_per_gpu
                                  / ours.throughput_tokens_per_s_per_gpu),
        e2e_ratio=metrics.e2e_latency_s * 1e3 / ours.e2e_latency_ms,
    )


