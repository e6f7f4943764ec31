"""Regret of a checked plan: how far it is from the optimum under the same condition.

The checked plan is re-evaluated with the condition's cost model (a plan.json made for another
condition is graded on this one), the condition is solved, and the two are compared on the
objective (ratio, >= 1 for a valid plan up to the optimality gap), throughput and latencies.
Regret is only defined for a plan that meets every hard constraint: a plan that breaks one (it
does not fit in memory, misses an SLO, breaks a divisibility rule) is not a worse plan but no
plan, so it gets "invalid: no regret" with its violations, and the optimum only for reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from solver.document.plan import Plan
from solver.document.verify import ConstraintCheck, evaluate_plan_document
from solver.errors import InfeasibleError, ParaplanError
from solver.inputs.condition import Condition
from solver.inputs.serving import AUTO, DISAGGREGATED
from solver.optimize.settings import SolverSettings
from solver.physics.evaluate import Metrics
from solver.planning.modes import plan_serving
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
    violations: list[str] = field(default_factory=list)  # the checked plan's; non-empty: no regret

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
            "valid": not self.violations,
            "violations": self.violations,
        }

    def lines(self) -> list[str]:
        if self.violations:
            return self._invalid_lines()
        if not self.feasible:
            return [
                "regret: the condition is infeasible (no plan meets every hard constraint), so "
                "there is no optimum to compare with"
            ] + [f"  binding: {b}" for b in self.binding]
        if not self.optimum_label:
            return [f"regret: {self.note}"]
        head = (f"regret: the optimum is {self.optimum_label}, batch {self.optimum_batch} "
                f"({self.optimum_status})")
        if self.objective_ratio is None:
            return [head, f"  {self.note}"]
        d, o = self.deltas, self.optimum_metrics
        tput, per_gpu = "throughput_tokens_per_s", "throughput_tokens_per_s_per_gpu"
        return [
            head,
            f"  objective {self.objective_ratio:.3f}x the optimum's{_verdict(self.objective_ratio)}",
            f"  throughput {d[tput]:+,.0f} tok/s ({_pct(d[tput], o[tput])}), "
            f"per GPU {d[per_gpu]:+,.1f} ({_pct(d[per_gpu], o[per_gpu])})",
            f"  TTFT {d['ttft_ms']:+,.1f} ms, TPOT {d['tpot_ms']:+,.2f} ms, "
            f"e2e {d['e2e_latency_ms']:+,.0f} ms (checked minus optimum)",
            *([f"  {self.note}"] if self.note else []),
        ]


    def _invalid_lines(self) -> list[str]:
        counts: dict[str, int] = {}
        for name in self.violations:
            counts[name] = counts.get(name, 0) + 1
        named = ", ".join(name if n == 1 else f"{name} (x{n})" for name, n in counts.items())
        lines = [f"regret: invalid: no regret (the checked plan breaks {len(self.violations)} hard "
                 f"constraint(s): {named}; a plan that breaks one is not comparable with the optimum)"]
        if not self.feasible:
            return lines + ["  the condition itself is infeasible: no plan meets every hard constraint"]
        if self.optimum_label:
            lines.append(f"  for reference, the optimum is {self.optimum_label}, batch "
                         f"{self.optimum_batch} ({self.optimum_status})")
        return lines


def _verdict(ratio: float) -> str:
    """What an objective ratio of a valid plan says (1: it is the optimum, up to rounding)."""
    if abs(ratio - 1) <= 1e-6:
        return " (the checked plan is optimal)"
    if ratio < 1:
        return (" (below 1: the checked plan beats the planner's plan, which is optimal only over "
                "the enumerated shapes and the batch grid)")
    return ""


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
    condition: Condition, checked: Plan | None, settings: SolverSettings | None = None,
    violations: Sequence[ConstraintCheck] = (),
) -> Regret:
    """The checked plan against the optimum; `violations` (the checked plan's failed rows, as
    check reports them) make it invalid: no ratio and no deltas, the optimum for reference."""
    settings = settings or SolverSettings(time_limit_s=DEFAULT_TIME_LIMIT_S)
    broken = [row.name for row in violations if not row.passed]
    if condition.serving.mode in (DISAGGREGATED, AUTO) or (checked is not None and checked.pools):
        return _serving_regret(condition, checked, settings, broken)
    try:
        best = solve(condition, settings=settings).plan
    except InfeasibleError as exc:
        return Regret(feasible=False, binding=list(exc.binding), violations=broken)
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
    if broken:
        return Regret(**base, violations=broken)
    if checked is None and condition.mixed is not None:
        tokens = best.metrics.throughput_tokens_per_s
        return Regret(**base, note=f"a mixed plan; the optimum serves {tokens:,.1f} tokens/s "
                      "(the note above: the checked plan's)")
    if checked is None:
        return Regret(**base, note="the checked plan could not be evaluated (invalid layer split)")
    try:
        ours = _as_ms(evaluate_checked(condition, checked))
    except (ArithmeticError, ValueError, IndexError) as exc:
        return Regret(**base, note=f"the checked plan could not be evaluated: {exc}")
    deltas = {k: ours[k] - optimum[k] for k in optimum if k != "objective"}
    return Regret(**base, objective_ratio=ours["objective"] / optimum["objective"], deltas=deltas)


def goodput_per_gpu(plan: Plan) -> float:
    """Requests/s per GPU meeting every SLO: the figure serving.mode auto compares."""
    if plan.pools is not None:
        return plan.pools.requests_per_s_per_gpu
    assert plan.serving is not None
    return plan.serving.requests_per_s_per_gpu


def _label(plan: Plan) -> str:
    if plan.pools is None:
        return f"aggregated {plan.parallelism.shape().label}"
    p, d = plan.pools.prefill, plan.pools.decode
    return (f"disaggregated: prefill {p.instances} x {p.plan.parallelism.shape().label}, decode "
            f"{d.instances} x {d.plan.parallelism.shape().label}")


def _serving_regret(condition: Condition, checked: Plan | None, settings: SolverSettings,
                    broken: list[str]) -> Regret:
    """A disaggregated plan, or a plan under serving.mode disaggregated | auto: against the optimum
    of the condition's mode (a continuous condition: its disaggregated optimum), on goodput per GPU
    (objective ratio = the optimum's goodput / the checked plan's: GPU-seconds per request)."""
    target = condition
    if condition.serving.mode not in (DISAGGREGATED, AUTO):
        target = condition.model_copy(update={"serving": condition.serving.model_copy(
            update={"mode": DISAGGREGATED})})
    try:
        best = plan_serving(target, settings=settings).plan
    except InfeasibleError as exc:
        if any(line.startswith("time limit") for line in exc.binding):  # not proven infeasible
            return Regret(feasible=True, violations=broken, note=(
                f"no optimum to compare with: its search passed check's {DEFAULT_TIME_LIMIT_S:g} s "
                "(`paraplan solve` the condition with a larger --time-limit, or check --no-regret)"))
        return Regret(feasible=False, binding=list(exc.binding), violations=broken)
    except ParaplanError as exc:  # the regret's time limit passed first
        return Regret(feasible=True, note=f"no optimum to compare with: {exc}", violations=broken)
    keys = ("ttft_ms", "tpot_ms", "e2e_latency_ms", "throughput_tokens_per_s",
            "throughput_tokens_per_s_per_gpu")
    optimum = {k: getattr(best.metrics, k) for k in keys} | {"requests_per_s_per_gpu": goodput_per_gpu(best)}
    base = {"feasible": True, "optimum_label": _label(best), "optimum_batch": best.batch_size,
            "optimum_status": best.status, "optimum_metrics": optimum}
    if broken:
        return Regret(**base, violations=broken)
    if checked is None:
        return Regret(**base, note="the checked plan could not be evaluated")
    ours = {k: getattr(checked.metrics, k) for k in keys}
    ours["requests_per_s_per_gpu"] = goodput_per_gpu(checked)
    ratio = optimum["requests_per_s_per_gpu"] / ours["requests_per_s_per_gpu"]
    return Regret(**base, objective_ratio=ratio,
                  deltas={k: ours[k] - optimum[k] for k in optimum},
                  note="objective: GPU-seconds per request (1 / goodput per GPU)")
