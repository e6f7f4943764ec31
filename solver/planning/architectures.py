"""serving.mode auto: plan aggregated continuous batching and disaggregated serving, keep the
better by goodput per GPU (requests per second per GPU meeting every SLO) and put the other beside
it in plan.json's `comparison` block."""

from __future__ import annotations

from dataclasses import dataclass

from solver.document.plan import ArchitectureResult, Comparison, Plan
from solver.errors import InfeasibleError
from solver.inputs.condition import Condition
from solver.optimize.settings import SolverSettings
from solver.physics.disaggregation import goodput_condition
from solver.planning.disaggregated import solve_disaggregated
from solver.planning.planner import Solution, solve

AGGREGATED, DISAGGREGATED = "aggregated", "disaggregated"


def _shape_words(plan: Plan) -> str:
    s = plan.parallelism
    return f"TP{s.tp} x PP{s.pp} x EP{s.ep} x attn-DP{s.attn_dp} x {s.dp} at {plan.batch_size} seqs"


def _result(name: str, plan: Plan | None) -> ArchitectureResult:
    if plan is None:
        return ArchitectureResult(architecture=name, status="infeasible", requests_per_s_per_gpu=None,
                                  output_tokens_per_s_per_gpu=None, summary="no plan meets every SLO")
    if plan.pools is not None:
        goodput = plan.pools.requests_per_s_per_gpu
        p, d = plan.pools.prefill, plan.pools.decode
        summary = f"prefill {_shape_words(p.plan)}; decode {_shape_words(d.plan)}"
    else:
        assert plan.serving is not None
        goodput, summary = plan.serving.requests_per_s_per_gpu, _shape_words(plan)
    return ArchitectureResult(architecture=name, status=plan.status, requests_per_s_per_gpu=goodput,
                              output_tokens_per_s_per_gpu=plan.metrics.throughput_tokens_per_s_per_gpu,
                              summary=summary)


@dataclass(frozen=True)
class ArchitectureChoice:
    plan: Plan  # the winner's plan, with the comparison block
    aggregated_solution: Solution | None  # solved under goodput_condition
    disaggregated: Plan | None

    @property
    def aggregated(self) -> Plan | None:
        return self.aggregated_solution.plan if self.aggregated_solution else None


def compare_architectures(condition: Condition, method: str = "cp-sat",
                          settings: SolverSettings | None = None, *,
                          with_runner_ups: bool = False) -> ArchitectureChoice:
    """Both architectures; InfeasibleError when neither has a plan. `with_runner_ups`: the
    aggregated side's runner-up table too (for its reports)."""
    settings = (settings or SolverSettings()).with_deadline()
    try:
        solution: Solution | None = solve(goodput_condition(condition), method, settings,
                                          with_runner_ups=with_runner_ups)
    except InfeasibleError:
        solution = None
    aggregated = solution.plan if solution else None
    try:
        disaggregated: Plan | None = solve_disaggregated(condition, method, settings.deadline).plan
    except InfeasibleError:
        disaggregated = None
    results = [_result(AGGREGATED, aggregated), _result(DISAGGREGATED, disaggregated)]
    ranked = sorted(results, key=lambda r: -(r.requests_per_s_per_gpu or -1.0))  # ties: aggregated
    winner = ranked[0]
    if winner.requests_per_s_per_gpu is None:
        raise InfeasibleError(f"{condition.name}: neither aggregated nor disaggregated serving meets "
                              "every SLO", ["serving.mode"])
    plan = aggregated if winner.architecture == AGGREGATED else disaggregated
    assert plan is not None
    comparison = Comparison(winner=winner.architecture, results=ranked)
    return ArchitectureChoice(plan.model_copy(update={"comparison": comparison}), solution, disaggregated)
