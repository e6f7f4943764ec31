"""The measurement protocol: which load a benchmark ran, as the planner's own serving model sees it.

Every prediction is `solver.physics.evaluate.evaluate_plan` (the evaluator behind plan.json, the
verifier and `check`) for the row's condition and shape at the row's own load, and the predicted
metric is the plan.json field: `throughput_tokens_per_s`, `ttft_ms` (mean), `tpot_ms` (mean
inter-token latency). This module only chooses the load; it composes no metric of its own and has
no fitted parameter. docs/accuracy.md states every rule; in short:

    max-load (trtllm-bench)  C = the KV-memory limit, at most 4096; T = trtllm-bench's
                             max_num_tokens for C; every slot busy (u = 1, or the largest u the
                             budget feeds)
    N closed-loop users      C = min(N, KV-memory limit), T = 8192; closed-loop arrivals (every
                             slot busy; users beyond C wait for one)
    Poisson rate X           C = min(2048, KV-memory limit), T = 8192; the utilization whose
                             completed requests per second equal X (Erlang-C slot wait)
    burst of R requests      C as for Poisson; R active (or as many as the budget feeds); the
                             burst's arrivals (each waits for the prompts ahead of it)
    static batch N           the static evaluator at batch N (gptSessionBenchmark)

The KV-memory limit follows TensorRT-LLM, the engine of every row: its KV cache takes 90% of the
memory left free once weights, activation buffers and the runtime are loaded
(kv_cache_free_gpu_mem_fraction 0.9), and its default capacity scheduler (GUARANTEED_NO_EVICT)
admits a request only when the KV blocks of its whole sequence are free. So C is the most
sequences whose full-context KV cache fits 0.9 x (device memory - everything else), in the
planner's memory accounting, and the row's condition states that engine share as its
`usable_memory_fraction`.
"""

from __future__ import annotations

import math
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
from solver.physics.continuous import ContinuousLoad, steady_state
from solver.physics.cost import CostModel
from solver.physics.evaluate import Metrics, evaluate_plan, evaluate_stages
from solver.physics.points import Load
from solver.physics.queueing import BURST, CLOSED, Arrivals
from solver.physics.shapes import ParallelShape


@dataclass(frozen=True)
class Engine:
    """How a benchmark's engine was configured: what bounds the row's load."""

    name: str
    max_batch: int  # max-num-seqs (max_batch_size); the KV memory may allow fewer
    chunk_tokens: int | None  # max-num-batched-tokens; None: trtllm-bench's rule from the batch


# trtllm-bench (tensorrt_llm/bench/build/tuning.py, finetune_setting): max batch from the KV cache,
# capped at 4096; max_num_tokens = batch x (1 + isl / osl), capped at 32768, rounded up.
# The Triton rows ran engines built with trtllm-build's defaults (tensorrt_llm/builder.py
# BuildConfig: max_batch_size 2048, max_num_tokens 8192). NIM does not state its settings: the KV
# memory bounds the batch, and the chunk budget is the engines' common default, 8192.
ENGINES = {
    LOAD_MAX: Engine("trtllm-bench", 4096, None),
    LOAD_OPEN: Engine("trtllm-build defaults", 2048, 8192),
    LOAD_BURST: Engine("trtllm-build defaults", 2048, 8192),
    LOAD_CLOSED: Engine("NIM", 4096, 8192),
    LOAD_STATIC: Engine("gptSessionBenchmark", 4096, 8192),
}
MAX_ENGINE_BATCH = ENGINES[LOAD_MAX].max_batch
KV_FREE_MEMORY_FRACTION = 0.9  # TensorRT-LLM's kv_cache_free_gpu_mem_fraction default
TRTLLM_BENCH_MAX_TOKENS = 32768
MAX_UTILIZATION = 0.99  # the top of the planner's utilization grid (physics/continuous.py)

# TensorRT-LLM's trtllm-bench does not set max_attention_window_size, so the engine attends to the
# whole context: the measured Mistral-7B throughput at 20000/2000 equals Llama-3.1-8B's (within 3%),
# where a 4096-token window would be ~2x faster. The card's window is switched off for these rows.
CARD_OVERRIDES: dict[str, dict[str, object]] = {
    "mistral-7b": {"sliding_window": None, "sliding_window_every": None},
}


def trtllm_bench_tokens(batch: int, isl: int, osl: int) -> int:
    """trtllm-bench's max_num_tokens for a max batch (finetune_setting, pp = 1)."""
    raw = min(batch * (1 + isl / osl), TRTLLM_BENCH_MAX_TOKENS)
    if raw < 4096:
        return max(2048, 256 * math.ceil(raw / 256))
    if raw < 8192:
        return 512 * math.ceil(raw / 512)
    return 1024 * math.ceil(raw / 1024)


def _model_spec(model_card: str) -> str | dict[str, object]:
    if model_card not in CARD_OVERRIDES:
        return model_card
    data = yaml.safe_load((bundled_folder("model") / f"{model_card}.yaml").read_text(encoding="utf-8"))
    return {**data, **CARD_OVERRIDES[model_card]}


@lru_cache(maxsize=4096)
def base_condition(model_card: str, gpu_card: str, precision: str, isl: int, osl: int,
                   chunk_tokens: int, continuous: bool, memory_fraction: float = 0.9) -> Condition:
    """The condition of a measurement: one node, the row's precision everywhere, mean metrics."""
    data = {
        "name": "calibration",
        "model": _model_spec(model_card),
        "precision": {"weights": precision, "kv_cache": precision, "activations": precision},
        "hardware": {"gpu": gpu_card, "num_nodes": 1, "usable_memory_fraction": memory_fraction},
        "workload": {"input_tokens": isl, "output_tokens": osl, "batch_size": 1,
                     "prefill_chunk_tokens": chunk_tokens},
        "serving": ({"mode": "continuous", "chunk_tokens": chunk_tokens} if continuous
                    else {"mode": "static"}),
        "slo": {"percentile": "mean"},
        "policy": {"use_all_gpus": False},
    }
    return build_condition(data, f"calibration row ({model_card} on {gpu_card})", "calibration")


def row_shape(cond: Condition, tp: int) -> ParallelShape:
    """TP only ("MoE EP not stated (TP only)"): MoE experts are split by expert-TP = tp."""
    return ParallelShape(tp=tp, etp=tp if cond.model.is_moe else 1)


def boundaries(cond: Condition) -> list[int]:
    return [0, cond.model.num_hidden_layers]


@dataclass(frozen=True)
class Settings:
    """A row's engine: max-num-seqs (0: not one sequence fits), max-num-batched-tokens, and the
    engine's share of the device memory (the condition's usable_memory_fraction)."""

    slots: int
    chunk_tokens: int
    memory_fraction: float


@lru_cache(maxsize=4096)
def _kv_limit(model_card: str, gpu_card: str, precision: str, isl: int, osl: int, tp: int,
              chunk_tokens: int, cap: int) -> Settings:
    cond = base_condition(model_card, gpu_card, precision, isl, osl, chunk_tokens, False)
    model, shape = CostModel(cond), row_shape(cond, tp)
    device = cond.cluster.gpu.memory_bytes

    def admits(batch: int) -> tuple[bool, float]:
        """Whether `batch` full-context sequences fit the engine's KV cache; its memory share."""
        (stage,) = evaluate_stages(model.candidate(shape, batch), model.arch.layer_kinds,
                                   boundaries(cond))
        rest = stage.memory_bytes - stage.kv_cache_bytes
        kv = KV_FREE_MEMORY_FRACTION * (device - rest)
        return stage.kv_cache_bytes <= kv, (rest + kv) / device

    if not admits(1)[0]:
        return Settings(0, chunk_tokens, admits(1)[1])
    lo, hi = 1, cap
    if admits(hi)[0]:
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if admits(mid)[0] else (lo, mid)
    return Settings(lo, chunk_tokens, admits(lo)[1])


def engine_settings(row: MeasuredRow) -> Settings:
    """The row's engine settings; independent of the efficiency parameters."""
    engine = ENGINES[row.load]

    def limit(chunk: int) -> Settings:
        return _kv_limit(row.model_card, row.gpu_card, row.precision, row.isl, row.osl, row.tp,
                         chunk, engine.max_batch)

    if engine.chunk_tokens is not None:
        return limit(engine.chunk_tokens)
    first = limit(8192).slots  # trtllm-bench sizes the budget from the batch, the batch beside it
    return limit(trtllm_bench_tokens(max(first, 1), row.isl, row.osl))


def row_condition(row: MeasuredRow, params: Params | None = None) -> Condition:
    """The condition of a row; with `params`, its GPU's fitted values replace the card's (as
    `paraplan calibrate --write-cards` writes them into the card)."""
    engine = engine_settings(row)
    cond = base_condition(row.model_card, row.gpu_card, row.precision, row.isl, row.osl,
                          engine.chunk_tokens, row.load != LOAD_STATIC, engine.memory_fraction)
    if params is None:
        return cond
    p = params[row.gpu_card]
    cluster = cond.cluster.model_copy(update={
        "mfu": p.mfu_for(row.precision, cond.cluster.mfu),
        "memory_bandwidth_utilization": p.memory_bandwidth_utilization,
        "layer_overhead_s": p.layer_overhead_us * 1e-6,
        "collective_latency_s": p.collective_latency_us * 1e-6,
        "link_bandwidth_utilization": p.link_bandwidth_utilization,
    })
    return cond.model_copy(update={"cluster": cluster})


@lru_cache(maxsize=65536)
def saturation(slots: int, chunk: int, isl: int, osl: int) -> float:
    """The largest utilization (<= 1) whose steady state the chunk budget feeds (bisection)."""
    def feeds(u: float) -> bool:
        return bool(steady_state(ContinuousLoad(slots, u, chunk), 1, isl, osl).feasible)

    if feeds(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if feeds(mid) else (lo, mid)
    return lo


def _evaluate(cond: Condition, row: MeasuredRow, load: Load | int) -> Metrics:
    return evaluate_plan(cond, row_shape(cond, row.tp), load, boundaries(cond))[2]


def _open_utilization(cond: Condition, row: MeasuredRow, slots: int, chunk: int) -> float:
    """The utilization whose completed requests per second equal the row's rate (regula falsi,
    Illinois variant: the rate rises with u from 0 at u = 0); the top of the planner's grid when
    even that serves less."""
    top = min(saturation(slots, chunk, row.isl, row.osl), MAX_UTILIZATION)
    target = row.load_value

    def excess(u: float) -> float:
        return _evaluate(cond, row, ContinuousLoad(slots, u, chunk)).requests_per_s - target

    (lo, f_lo), (hi, f_hi) = (0.0, -target), (top, excess(top))
    if f_hi <= 0:
        return top
    side, u = 0, top
    for _ in range(60):
        u = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f = excess(u)
        if abs(f) <= 1e-9 * target or hi - lo <= 1e-12:
            break
        if f > 0:
            hi, f_hi, f_lo = u, f, f_lo / 2 if side == 1 else f_lo
            side = 1
        else:
            lo, f_lo, f_hi = u, f, f_hi / 2 if side == -1 else f_hi
            side = -1
    return u


def row_load(row: MeasuredRow, cond: Condition) -> Load | int:
    """The load the row's benchmark ran, in the planner's terms (an int: a static batch)."""
    if row.load == LOAD_STATIC:
        return int(row.load_value)
    engine = engine_settings(row)
    limit, chunk = engine.slots, engine.chunk_tokens
    if row.load == LOAD_OPEN:
        return ContinuousLoad(limit, _open_utilization(cond, row, limit, chunk), chunk)
    users = limit if row.load == LOAD_MAX else int(row.load_value)
    slots = limit if row.load == LOAD_BURST else min(users, limit)
    active = min(users, slots) / slots
    u = min(active, saturation(slots, chunk, row.isl, row.osl))
    return ContinuousLoad(slots, u, chunk, Arrivals(BURST if row.load == LOAD_BURST else CLOSED, users))


def metric_value(metrics: Metrics, metric: str) -> float:
    """The plan.json field a measured metric is compared with (canonical units)."""
    if metric == "throughput":
        return metrics.throughput_tokens_per_s
    return metrics.ttft_s if metric == "ttft" else metrics.tpot_s


def predict(row: MeasuredRow, params: Params | None = None) -> float | None:
    """The evaluator's value of the row's metric (canonical units); None when not one sequence
    fits the modelled memory."""
    if engine_settings(row).slots == 0:
        return None
    cond = row_condition(row, params)
    return metric_value(_evaluate(cond, row, row_load(row, cond)), row.metric)
