"""Regret of a checked plan: how far it is from the optimum under the same condition.

The checked plan is re-evaluated with the condition's cost model (a plan.json made for another
condition is graded on this one), the condition is solved, and the two are compared on the
objective (ratio, >= 1 for a valid plan up to the optimality gap), throughput and latencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from solver.document.plan import Plan
from solver.document.verify import evaluate_plan_document
from solver.errors import InfeasibleError
from solver.inputs.condition import Condition
from solver.optimize.settings import SolverSettings
from solver.physics.evaluate import Metrics
from solver.planning.planner import solve

DEFAULT_TIME_LIMIT_S = 20.0


@dataclass(frozen=True)
class Regret:
    feasible: bool  # the condition has a plan meeting every hard constraint
    optimum_label: str = ""
    optimum_batch: int = 0
    optimum_status: str = ""
    objective_ratio: float | None = None  # checked / optimum objective
    deltas: dict[str, float] = field(default_factory=dict)  # checked - optimum
    optimum_metrics: dict[str, float] = field(default_factory=dict)
    binding: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "feasible": self.feasible,
            "optimum": self.optimum_label or None,
            "optimum_batch_size": self.optimum_batch or None,
            "optimum_status": self.optimum_status or None,
            "objective_ratio": self.objective_ratio,
            "deltas": self.deltas,
            "optimum_metrics": self.optimum_metrics,
            "binding": self.binding,
            "note": self.note or None,
        }

    def lines(self) -> list[str]:
        if not self.feasible:
            return [
                "regret: the condition is infeasible (no plan meets every hard constraint), so "
                "there is no optimum to compare with"
            ] + [f"  binding: {b}" for b in self.binding]
        head = (f"regret: the optimum is {self.optimum_label}, batch {self.optimum_batch} "
                f"({self.optimum_status})")
        if self.objective_ratio is None:
            return [head, f"  {self.note}"]
        d, o = self.deltas, self.optimum_metrics
        tput, per_gpu = "throughput_tokens_per_s", "throughput_tokens_per_s_per_gpu"
        optimal = " (the checked plan is optimal)" if self.objective_ratio <= 1 + 1e-6 else ""
        return [
            head,
            f"  objective {self.objective_ratio:.3f}x the optimum's{optimal}",
            f"  throughput {d[tput]:+,.0f} tok/s ({_pct(d[tput], o[tput])}), "
            f"per GPU {d[per_gpu]:+,.1f} ({_pct(d[per_gpu], o[per_gpu])})",
            f"  TTFT {d['ttft_ms']:+,.1f} ms, TPOT {d['tpot_ms']:+,.2f} ms, "
            f"e2e {d['e2e_latency_ms']:+,.0f} ms (checked minus optimum)",
        ]


def _pct(delta: float, base: float) -> str:
    return f"{delta / base:+.0%}" if base else "-"


def _as_ms(m: Metrics) -> dict[str, float]:
    return {
        "ttft_ms": m.ttft_s * 1e3,
        "tpot_ms": m.tpot_s * 1e3,
        "e2e_latency_ms": m.e2e_latency_s * 1e3,
        "throughput_tokens_per_s": m.throughput_tokens_per_s,
        "throughput_tokens_per_s_per_gpu": m.throughput_tokens_per_s_per_gpu,
        "objective": m.objective,
    }


def evaluate_checked(condition: Condition, plan: Plan) -> Metrics:
    return evaluate_plan_document(condition, plan)[2]


def regret_of(
    condition: Condition, checked: Plan | None, settings: SolverSettings | None = None
) -> Regret:
    settings = settings or SolverSettings(time_limit_s=DEFAULT_TIME_LIMIT_S)
    try:
        best = solve(condition, settings=settings).plan
    except InfeasibleError as exc:
        return Regret(feasible=False, binding=list(exc.binding))
    optimum = {
        k: getattr(best.metrics, k)
        for k in (
            "ttft_ms",
            "tpot_ms",
            "e2e_latency_ms",
            "throughput_tokens_per_s",
            "throughput_tokens_per_s_per_gpu",
            "objective",
        )
    }
    base = {
        "feasible": True,
        "optimum_label": best.parallelism.shape().label,
        "optimum_batch": best.batch_size,
        "optimum_status": best.status,
        "optimum_metrics": optimum,
    }
    if checked is None:
        return Regret(**base, note="the checked plan could not be evaluated (invalid layer split)")
    try:
        ours = _as_ms(evaluate_checked(condition, checked))
    except (ArithmeticError, ValueError, IndexError) as exc:
        return Regret(**base, note=f"the checked plan could not be evaluated: {exc}")
    deltas = {k: ours[k] - optimum[k] for k in optimum if k != "objective"}
    return Regret(**base, objective_ratio=ours["objective"] / optimum["objective"], deltas=deltas)
