"""The summary row of one condition or sweep point: SUMMARY_COLUMNS, filled from the planner's
Solution (its plan and its figures) or with the reason there is no plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solver.inputs.condition import DEGREE_NAMES, Condition

if TYPE_CHECKING:  # the driver of a batch never imports the solver
    from solver.planning.mixed_planner import MixedSolution
    from solver.planning.modes import PoolsSolution
    from solver.planning.planner import Solution

OK_STATUSES = ("optimal", "feasible")
FAILED_STATUSES = ("infeasible", "invalid", "error")
DEGREES = DEGREE_NAMES
INT_COLUMNS = (*DEGREES, "batch", "gpus_used", "gpus_available", "microbatches")
SUMMARY_COLUMNS = (
    "name",
    "path",
    "status",
    *DEGREES,
    "batch",
    "microbatches",
    "gpus_used",
    "gpus_available",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "throughput",
    "throughput_per_gpu",
    "tokens_per_s_per_user",
    "requests_per_s",
    "gpu_hours_per_million_tokens",
    "cost_per_million_tokens_usd",
    "balance_max_mean",
    "balance_memory_max_mean",
    "balance_comm_max_mean",
    "max_memory_gb",
    "solve_seconds",
    "plan_dir",
    "error",
)
COLUMN_NOTES = {
    "throughput": "output tokens/s of the whole deployment",
    "throughput_per_gpu": "output tokens/s per GPU used",
    "tokens_per_s_per_user": "1000 / TPOT: decode speed one user sees",
    "requests_per_s": "capacity at the SLOs: completed requests/s of the whole deployment "
                      "(throughput / output tokens)",
    "gpu_hours_per_million_tokens": "GPUs used x 1e6 / (throughput x 3600): what a million output "
                                    "tokens cost in GPU time",
    "cost_per_million_tokens_usd": "gpu_hours_per_million_tokens x hardware.gpu_hour_usd (empty "
                                   "without a price)",
    "balance_max_mean": "per-GPU decode compute time, max / mean (1 = perfectly balanced)",
    "balance_memory_max_mean": "per-GPU memory, max / mean",
    "balance_comm_max_mean": "per-GPU decode communication bytes, max / mean",
    "solve_seconds": "condition validation + solve (+ rendering when plan folders are written)",
}



def empty_row(name: str, path: str, status: str = "error", error: str = "") -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(name=name, path=path, status=status, error=error)
    return row


def capacity_and_cost(tokens_per_s: float, gpus: int, output_tokens: int,
                      gpu_hour_usd: float | None) -> dict[str, float | None]:
    """Capacity at the SLOs (requests/s of the whole deployment) and the price of a million output
    tokens, in GPU-hours and, when the condition gives a GPU-hour price, in dollars."""
    if tokens_per_s <= 0:
        return {"requests_per_s": None, "gpu_hours_per_million_tokens": None,
                "cost_per_million_tokens_usd": None}
    gpu_hours = gpus * 1e6 / (tokens_per_s * 3600)
    return {"requests_per_s": tokens_per_s / output_tokens,
            "gpu_hours_per_million_tokens": gpu_hours,
            "cost_per_million_tokens_usd": gpu_hours * gpu_hour_usd if gpu_hour_usd else None}


def plan_row(solution: Solution | MixedSolution | PoolsSolution, condition: Condition) -> dict[str, Any]:
    """The summary columns a solved plan fills (balance figures computed by the planner; mixed and
    disaggregated plans have none yet: their degrees are the largest replica group's, or the decode
    pool's, and their metrics the whole cluster's)."""
    plan, figures = solution.plan, getattr(solution, "figures", None)
    p, m = plan.parallelism, plan.metrics
    row: dict[str, Any] = {d: getattr(p, d) for d in DEGREES}
    row.update(
        status=plan.status,
        batch=plan.batch_size,
        microbatches=plan.microbatches,
        gpus_used=plan.gpus.used,
        gpus_available=plan.gpus.available,
        ttft_ms=m.ttft_ms,
        tpot_ms=m.tpot_ms,
        e2e_ms=m.e2e_latency_ms,
        throughput=m.throughput_tokens_per_s,
        throughput_per_gpu=m.throughput_tokens_per_s_per_gpu,
        tokens_per_s_per_user=1000.0 / m.tpot_ms if m.tpot_ms > 0 else None,
        **capacity_and_cost(m.throughput_tokens_per_s, plan.gpus.used,
                            condition.workload.output_tokens, condition.cluster.gpu_hour_usd),
    )
    if figures is not None:
        balance = figures.per_gpu
        row.update(
            balance_max_mean=balance["decode_compute_ms"].max_over_mean,
            balance_memory_max_mean=balance["memory_gb"].max_over_mean,
            balance_comm_max_mean=balance["decode_comm_bytes"].max_over_mean,
            max_memory_gb=balance["memory_gb"].max,
        )
    return row
