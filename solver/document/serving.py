"""plan.json's `serving` block: how the plan serves (the engine's batching, its settings, the
operating load and, with workload.request_rate, the offered rate)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from solver.inputs.condition import Condition
from solver.physics.cost import CandidateCosts
from solver.physics.evaluate import Metrics

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ServingBlock(BaseModel):
    """How the plan serves: the engine's batching, its settings and the operating load.

    `max_num_seqs` is plan.json's batch_size (vLLM/SGLang --max-num-seqs, TensorRT-LLM
    max_batch_size); continuous batching adds the chunk budget (--max-num-batched-tokens) and the
    operating point: the mean active sequences, which the planner chose on its utilization grid.
    """

    model_config = _FROZEN
    mode: str  # continuous | static
    max_num_seqs: int
    chunk_tokens: int | None = None
    utilization: float | None = None  # mean active sequences / max_num_seqs
    active_sequences: float | None = None  # mean, per replica
    prefill_steps: int | None = None  # engine steps a prompt takes
    prefill_step_share: float | None = None  # share of steps that carry prompt tokens
    percentile: str = "mean"  # metrics.ttft_ms and tpot_ms hold at this percentile
    ttft_mean_ms: float
    tpot_mean_ms: float
    requests_per_s: float  # completed requests per second at the operating point, all replicas
    requests_per_s_per_gpu: float
    throughput_counts: str = "output tokens"  # what metrics.throughput_* count
    request_rate: float | None = None  # workload.request_rate: offered requests/s, all replicas
    replicas_for_request_rate: int | None = None  # GPUs to buy: replicas of this plan the rate needs


def _rate_fields(condition: Condition, metrics: Metrics) -> dict[str, float | int]:
    """The offered rate, and when the planner chooses the GPU count, the replicas it needs
    (with a fixed cluster the rate is a hard constraint instead: families.RATE)."""
    rate = condition.workload.request_rate
    if rate is None:
        return {}
    if condition.cluster.fixed or metrics.requests_per_s <= 0:
        return {"request_rate": rate}
    replicas = math.ceil(rate / metrics.requests_per_s - 1e-9)
    return {"request_rate": rate, "replicas_for_request_rate": replicas}


def serving_block(condition: Condition, costs: CandidateCosts, metrics: Metrics) -> ServingBlock:
    point, state = costs.point, costs.point.state
    common = {"mode": point.mode, "max_num_seqs": int(point.sequences),
              "percentile": condition.slo.percentile if state is not None else "mean",
              "ttft_mean_ms": metrics.ttft_mean_s * 1e3, "tpot_mean_ms": metrics.tpot_mean_s * 1e3,
              "requests_per_s": metrics.requests_per_s,
              "requests_per_s_per_gpu": metrics.requests_per_s / costs.shape.gpus_used,
              "throughput_counts": "output tokens" if point.output_tokens > 1 else "input tokens",
              **_rate_fields(condition, metrics)}
    if state is None:
        return ServingBlock(**common)
    return ServingBlock(**common, chunk_tokens=int(state.budget),
                        utilization=_decimal(point.active_sequences / point.sequences),
                        active_sequences=_decimal(point.active_sequences),
                        prefill_steps=int(state.prefill_steps),
                        prefill_step_share=float(state.prefill_step_share))


def _decimal(value: float) -> float:
    """A grid value as written (0.7, not 0.6999999999999998 from u C / C): 12 significant digits."""
    return float(f"{float(value):.12g}")
