"""The measurement protocol: how a benchmark's load turns into the batch the cost model is
evaluated at, and how in-flight batching composes the cost model's prefill time P(B) (prompts of B
sequences) and decode step D(B) (B sequences) into the measured metric.

Every prediction is the shared cost model (solver.physics.evaluate.evaluate_plan; there is no second
cost model here) for the row's condition and shape; none of these rules has a fitted parameter.
docs/accuracy.md states every rule; in short:

    max-load (engine's own batch)  B = largest batch whose KV cache fits memory, capped at 4096
                                   (trtllm-bench's cap); throughput = planner throughput at B
    static batch N                 B = N; throughput, TTFT = P(N) (all prompts prefilled together)
    in-flight batching at B        ITL = D(B) + (B-1)/B * P(B)/osl     (the other sequences' prompts
                                   are prefilled in the iterations between one's tokens)
                                   TTFT = P(B)/B + (B-1)/B * D(B)      (own prompt + others' decode)
    N closed-loop users            B = min(N, memory); beyond memory, Little's law gives the queue
    Poisson rate lambda            B = lambda * e2e(B) (Little's law, fixed point); TTFT adds half
                                   an iteration (residual); above capacity, the run's queue grows
    burst of R requests            B = min(R, memory); later requests wait for free slots
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import yaml

from solver.calibration.measurements import (
    LOAD_BURST,
    LOAD_CLOSED,
    LOAD_MAX,
    LOAD_OPEN,
    LOAD_STATIC,
    MeasuredRow,
)
from solver.calibration.parameters import Params
from solver.inputs.card_library import bundled_folder
from solver.inputs.condition import Condition, build_condition
from solver.physics.cost import CostModel
from solver.physics.evaluate import evaluate_plan, evaluate_stages
from solver.physics.shapes import ParallelShape

# trtllm-bench caps the engine's max batch size at 4096 (tensorrt_llm/bench/build/tuning.py,
# finetune_setting: raw_bs = min(kv_cache_max_requests, 4096) / pp_size).
MAX_ENGINE_BATCH = 4096

# TensorRT-LLM's trtllm-bench does not set max_attention_window_size, so the engine attends to the
# whole context: the measured Mistral-7B throughput at 20000/2000 equals Llama-3.1-8B's (within 3%),
# where a 4096-token window would be ~2x faster. The card's window is switched off for these rows.
CARD_OVERRIDES: dict[str, dict[str, object]] = {
    "mistral-7b": {"sliding_window": None, "sliding_window_every": None},
}


def _model_spec(model_card: str) -> str | dict[str, object]:
    if model_card not in CARD_OVERRIDES:
        return model_card
    data = yaml.safe_load((bundled_folder("model") / f"{model_card}.yaml").read_text(encoding="utf-8"))
    return {**data, **CARD_OVERRIDES[model_card]}


@lru_cache(maxsize=4096)
def _base_condition(model_card: str, gpu_card: str, precision: str, isl: int,
                    osl: int) -> Condition:
    data = {
        "name": "calibration",
        "model": _model_spec(model_card),
        "precision": {"weights": precision, "kv_cache": precision, "activations": precision},
        "hardware": {"gpu": gpu_card, "num_nodes": 1},
        "workload": {"input_tokens": isl, "output_tokens": osl, "batch_size": 1},
        "policy": {"use_all_gpus": False},
    }
    return build_condition(data, f"calibration row ({model_card} on {gpu_card})", "calibration")


def row_condition(row: MeasuredRow, params: Params | None = None) -> Condition:
    """The condition of a row; with `params`, its GPU's fitted values replace the card's."""
    cond = _base_condition(row.model_card, row.gpu_card, row.precision, row.isl, row.osl)
    if params is None:
        return cond
    p = params[row.gpu_card]
    cluster = cond.cluster.model_copy(update={
        "mfu": p.mfu_for(row.precision, cond.cluster.mfu),
        "memory_bandwidth_utilization": p.memory_bandwidth_utilization,
        "layer_overhead_s": p.layer_overhead_us * 1e-6,
    })
    return cond.model_copy(update={"cluster": cluster})


def _boundaries(cond: Condition) -> list[int]:
    return [0, cond.model.num_hidden_layers]


def row_shape(cond: Condition, tp: int) -> ParallelShape:
    """TP only ("MoE EP not stated (TP only)"): MoE experts are split by expert-TP = tp."""
    return ParallelShape(tp=tp, etp=tp if cond.model.is_moe else 1)


@lru_cache(maxsize=4096)
def _max_batch_cached(model_card: str, gpu_card: str, precision: str, isl: int, osl: int,
                      tp: int) -> int:
    cond = _base_condition(model_card, gpu_card, precision, isl, osl)
    model = CostModel(cond)
    shape = row_shape(cond, tp)
    limit = cond.cluster.usable_memory_bytes

    def fits(batch: int) -> bool:
        stages = evaluate_stages(model.candidate(shape, batch), model.arch.layer_kinds,
                                 _boundaries(cond))
        return max(s.memory_bytes for s in stages) <= limit

    if not fits(1):
        return 0
    lo, hi = 1, MAX_ENGINE_BATCH
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def max_batch(row: MeasuredRow) -> int:
    """Largest batch whose weights + full-context KV cache fit the modelled memory (<= 4096);
    0 when not even one sequence fits. Independent of the efficiency parameters."""
    return _max_batch_cached(row.model_card, row.gpu_card, row.precision, row.isl, row.osl, row.tp)


@dataclass(frozen=True)
class _Point:
    """The cost model at one batch: P = prefill of the batch's prompts, D = one decode step."""

    batch: int
    prefill_s: float
    decode_s: float
    throughput: float  # planner throughput: B osl / (P + osl D)
    osl: int

    @property
    def itl_s(self) -> float:
        """In-flight batching: the other sequences' prompts are prefilled between one's tokens."""
        b = self.batch
        return self.decode_s + (b - 1) / b * self.prefill_s / self.osl

    @property
    def ttft_s(self) -> float:
        """Own prompt (its share of P) in an iteration that also decodes the others."""
        b = self.batch
        return self.prefill_s / b + (b - 1) / b * self.decode_s

    @property
    def e2e_s(self) -> float:
        return self.ttft_s + (self.osl - 1) * self.itl_s

    @property
    def requests_per_s(self) -> float:
        return self.batch / self.e2e_s


def _point(cond: Condition, tp: int, batch: int) -> _Point:
    _, _, metrics = evaluate_plan(cond, row_shape(cond, tp), batch, _boundaries(cond))
    return _Point(batch, metrics.ttft_s, metrics.tpot_s, metrics.throughput_tokens_per_s,
                  cond.workload.output_tokens)


def predict(row: MeasuredRow, params: Params | None = None) -> float | None:
    """The cost model's value of the row's metric (canonical units); None when the configuration
    does not fit the modelled memory."""
    limit = max_batch(row)
    if limit == 0:
        return None
    cond = row_condition(row, params)
    return _PROTOCOLS[row.load](row, cond, limit)


def _max_load(row: MeasuredRow, cond: Condition, limit: int) -> float:
    return _point(cond, row.tp, limit).throughput


def _static(row: MeasuredRow, cond: Condition, limit: int) -> float:
    point = _point(cond, row.tp, int(row.load_value))
    return point.throughput if row.metric == "throughput" else point.prefill_s


def _closed(row: MeasuredRow, cond: Condition, limit: int) -> float:
    users = int(row.load_value)
    point = _point(cond, row.tp, min(users, limit))
    if row.metric == "itl":
        return point.itl_s
    if row.metric == "throughput":
        return point.batch * row.osl / point.e2e_s
    if users <= limit:
        return point.ttft_s
    # more users than sequences fit: each cycle of N users takes N / X_req (Little's law)
    return users / point.requests_per_s - (row.osl - 1) * point.itl_s


def _open(row: MeasuredRow, cond: Condition, limit: int) -> float:
    rate = row.load_value
    batch, point = 1, _point(cond, row.tp, 1)
    for _ in range(50):  # Little's law fixed point: B = rate x e2e(B), smallest solution
        need = math.ceil(rate * (point.e2e_s + 0.5 * point.itl_s) - 1e-9)
        if need <= batch:
            break
        if need > limit:
            batch, point = limit, _point(cond, row.tp, limit)
            break
        batch, point = need, _point(cond, row.tp, need)
    if row.metric == "itl":
        return point.itl_s
    ttft = point.ttft_s + 0.5 * point.itl_s  # a Poisson arrival waits for the running iteration
    capacity = point.requests_per_s
    if batch == limit and capacity < rate:  # overloaded: request k waits k (1/X - 1/rate)
        ttft += 0.5 * row.requests * (1 / capacity - 1 / rate)
    return ttft


def _burst(row: MeasuredRow, cond: Condition, limit: int) -> float:
    total = row.requests
    batch = min(total, limit)
    point = _point(cond, row.tp, batch)
    if row.metric == "throughput":
        return point.throughput
    if row.metric == "itl":
        return point.itl_s
    # the first `batch` requests are prefilled together (mean: half the prompts before one's own);
    # each later one waits for a free slot: slots free at X_req = B / (P + osl D)
    first = point.prefill_s * (batch + 1) / (2 * batch)
    slot_rate = point.throughput / row.osl  # requests completed per second
    later = total - batch
    waits = later * (later + 1) / 2 / slot_rate + later * point.ttft_s
    return (batch * first + waits) / total


_PROTOCOLS: dict[str, Callable[[MeasuredRow, Condition, int], float]] = {
    LOAD_MAX: _max_load,
    LOAD_STATIC: _static,
    LOAD_CLOSED: _closed,
    LOAD_OPEN: _open,
    LOAD_BURST: _burst,
}
