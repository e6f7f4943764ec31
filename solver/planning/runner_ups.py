"""Runner-ups: the nearest rivals of the chosen plan's own shape family (other shapes, closest
first) and the best plan of each other family, evaluated and compared with the chosen plan. The
planner carries them in its Solution; the reports (plan.md, report.html, the console) only format
them.

A rival whose objective is within the cost model's stated error for this model and GPU
(inputs/model_error.py: the calibration's held-out median error) is a close call: the model cannot
tell the two apart, so the winner is optimal for the cost model but not proven better in practice;
what decides is measuring both, and the runner-up says which one is cheaper to run.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.inputs.model_error import ErrorBand, error_band
from solver.optimize.alternatives import Alternative, best_per_family, nearest_rivals
from solver.optimize.problem import PlanningProblem
from solver.physics.evaluate import Metrics, evaluate_plan
from solver.physics.points import Load
from solver.physics.shapes import ParallelShape
from solver.runtime.limits import Deadline


@dataclass(frozen=True)
class RunnerUp:
    """The best plan of one other shape family (or, `same_family`, of another shape of the chosen
    plan's family), as the reports show it: evaluated with the expert placement the solver costed
    for its EP degree, and compared with the chosen plan. A family without a plan has only
    `family` and `reason`."""

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
    same_family: bool = False  # a nearest rival: another shape of the chosen plan's family
    band: ErrorBand | None = None  # the cost model's stated error for this model and GPU
    close_call: bool = False  # objective within the band: the model cannot tell the two apart
    decides: str = ""  # a close call: what would decide between the two


def runner_ups(problem: PlanningProblem, plan: Plan, deadline: Deadline | None = None) -> list[RunnerUp]:
    """The nearest rivals in the chosen plan's family, then the best plan of every other family,
    evaluated and compared with `plan`; families not reached before the run's deadline say so."""
    chosen = plan.parallelism.shape()
    band = model_error_band(problem.condition)
    rivals = [_runner_up(problem, plan, a, band, same_family=True)
              for a in nearest_rivals(problem, chosen, deadline)]
    others = [_runner_up(problem, plan, a, band)
              for a in best_per_family(problem, chosen.family, deadline)]
    return rivals + others


def model_error_band(condition: Condition) -> ErrorBand:
    """The cost model's stated error for this condition's model and GPU."""
    return error_band(condition.model.name, condition.model.is_moe, condition.cluster.gpu.name)


def close_calls(found: tuple[RunnerUp, ...] | list[RunnerUp] | None) -> list[RunnerUp]:
    return [r for r in found or () if r.close_call]


def _runner_up(problem: PlanningProblem, plan: Plan, alternative: Alternative, band: ErrorBand,
               same_family: bool = False) -> RunnerUp:
    if alternative.table is None or alternative.objective is None:
        return RunnerUp(alternative.family, alternative.reason, same_family=same_family, band=band)
    shape, batch = alternative.table.costs.shape, int(alternative.table.costs.batch_size)
    layout = problem.cost_model.expert_layout(shape.ep)  # the placement the solver costed
    load = problem.candidates.load(alternative.table.index)
    _, _, metrics = evaluate_plan(problem.condition, shape, load, alternative.boundaries, layout)
    ours = plan.metrics
    ratio = metrics.objective / ours.objective
    close = ratio - 1 <= band.fraction
    family = plan.parallelism.shape().family if same_family else alternative.family
    return RunnerUp(
        family, alternative.reason, shape, batch, load, tuple(alternative.boundaries), metrics,
        alternative.objective,
        objective_ratio=ratio,
        throughput_per_gpu_ratio=(metrics.throughput_tokens_per_s_per_gpu
                                  / ours.throughput_tokens_per_s_per_gpu),
        e2e_ratio=metrics.e2e_latency_s * 1e3 / ours.e2e_latency_ms,
        same_family=same_family, band=band, close_call=close,
        decides=_decides(problem.condition, plan, shape, metrics) if close else "",
    )


def _decides(condition: Condition, plan: Plan, shape: ParallelShape, metrics: Metrics) -> str:
    """What decides a close call: measure both; and which one is cheaper to run."""
    ours_label, ours_gpus = plan.parallelism.shape().label, plan.gpus.used
    theirs_gpus = shape.gpus_used
    ours_rate = plan.metrics.throughput_tokens_per_s_per_gpu
    theirs_rate = metrics.throughput_tokens_per_s_per_gpu
    if theirs_gpus != ours_gpus:
        cheaper, fewer, more = ((shape.label, theirs_gpus, ours_gpus) if theirs_gpus < ours_gpus
                                else (ours_label, ours_gpus, theirs_gpus))
        cost = f"{cheaper} is cheaper to run ({fewer} GPUs instead of {more})"
    else:
        faster = shape.label if theirs_rate > ours_rate else ours_label
        gain = max(theirs_rate, ours_rate) / min(theirs_rate, ours_rate) - 1
        cost = (f"{faster} is cheaper per token ({gain:.1%} more tokens/s per GPU on the same "
                f"{ours_gpus} GPUs)" if gain >= 0.0005 else
                f"both cost the same per token (tokens/s per GPU within 0.05% on {ours_gpus} GPUs)")
        price = condition.cluster.gpu_hour_usd
        if price:
            per_million = [price / (rate * 3600) * 1e6 for rate in (ours_rate, theirs_rate)]
            cost += (f"; ${per_million[0]:.2f} vs ${per_million[1]:.2f} per million output tokens "
                     f"at ${price:g} per GPU hour")
    return f"measure both under your load: the cost model cannot tell them apart; {cost}"
