"""Calibration of the cost model's efficiency parameters against published serving measurements.

The measurements (shared/calibration/measured.csv: TensorRT-LLM and NIM tables) are mapped row by row
onto a paraplan condition and shape, predicted with the shared cost model (solver.plan.evaluate_plan;
there is no second cost model here), and a few physical parameters are fitted on a training split:

    per GPU card:                  memory_bandwidth_utilization, layer_overhead_us
    per GPU card and precision:    mfu (achievable fraction of the dense tensor-core peak)

No per-row factors. What this module adds on top of the cost model is only the *measurement
protocol*: how a benchmark's load (an engine's own maximum batch, a static batch, N closed-loop users,
a Poisson request rate, a burst of requests) turns into the batch the cost model is evaluated at, and
how in-flight batching composes the cost model's prefill time P(B) (prompts of B sequences) and decode
step D(B) (B sequences) into the measured metric. docs/accuracy.md states every rule; in short:

    max-load (engine's own batch)  B = largest batch whose KV cache fits memory, capped at 4096
                                   (trtllm-bench's cap); throughput = planner throughput at B
    static batch N                 B = N; throughput, TTFT = P(N) (all prompts prefilled together)
    in-flight batching at B        ITL = D(B) + (B-1)/B * P(B)/osl     (the other sequences' prompts
                                   are prefilled in the iterations between one's tokens)
                                   TTFT = P(B)/B + (B-1)/B * D(B)      (own prompt + others' decode)
    N closed-loop users            B = min(N, memory); beyond memory, Little's law gives the queue
    Poisson rate lambda            B = lambda * e2e(B) (Little's law, fixed point); TTFT adds half an
                                   iteration (residual); above capacity, the queue of the run grows
    burst of R requests            B = min(R, memory); later requests wait for free slots
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from solver.cards import HARDWARE_DIR, MODELS_DIR, REPO_ROOT, GpuCard
from solver.condition import Condition, build_condition
from solver.cost import CostModel
from solver.errors import InputError
from solver.evaluate import evaluate_stages
from solver.plan import evaluate_plan
from solver.shapes import ParallelShape

DEFAULT_MEASURED = REPO_ROOT.parent / "shared" / "calibration" / "measured.csv"
DATA_SOURCE = "shared/calibration/measured.csv"

# trtllm-bench caps the engine's max batch size at 4096 (tensorrt_llm/bench/build/tuning.py,
# finetune_setting: raw_bs = min(kv_cache_max_requests, 4096) / pp_size).
MAX_ENGINE_BATCH = 4096
HELD_OUT_PERCENT = 30  # of measurement points, chosen by hash (deterministic)
# The cards describe current engines: TensorRT-LLM releases before v0.14 (v0.5-v0.7, 2023) ran
# without today's kernels and runtime, so their rows are reported but not fitted.
LEGACY_BEFORE = (0, 14)

METRICS = ("throughput", "ttft", "itl")
METRIC_LABELS = {"throughput": "output throughput", "ttft": "TTFT", "itl": "inter-token latency"}

REQUIRED_COLUMNS = (
    "source_url_or_repo_path", "model", "gpu", "num_gpus", "tp", "pp", "dp", "precision", "isl",
    "osl", "batch_or_concurrency", "metric", "value", "unit", "notes",
)

# CSV model label -> model card. Llama-3.3-70B has Llama-3.1-70B's arch_args
# (shared/calibration/models_and_gpus.yaml note under Llama-3.1-70B).
MODEL_CARDS = {
    "Llama-3.1-8B": "llama-3.1-8b",
    "Llama-3.1-70B": "llama-3.1-70b",
    "Llama-3.3-70B-Instruct": "llama-3.1-70b",
    "Llama-3.1-405B": "llama-3.1-405b",
    "Llama-2-7B": "llama-2-7b",
    "Llama-2-13B": "llama-2-13b",
    "Llama-2-70B": "llama-2-70b",
    "Mistral-7B": "mistral-7b",
    "Mixtral-8x7B": "mixtral-8x7b",
    "Mixtral-8x22B": "mixtral-8x22b",
}
UNSUPPORTED_MODELS = {
    "GPT-J-6B": "no model card: GPT-J's parallel attention+MLP block with a 2-matrix GELU FFN and "
                "rotary partial heads is not a ModelCard architecture (SwiGLU decoders only)",
    "Falcon-180B": "no model card: Falcon's parallel attention+MLP block with a 2-matrix GELU FFN is "
                   "not a ModelCard architecture (SwiGLU decoders only)",
}
# GPU label prefix -> hardware card (GH200 before H200: the label contains 'H200').
GPU_CARDS = (
    ("GH200", "gh200"),
    ("H200", "h200-sxm-141gb"),
    ("H100", "h100-sxm-80gb"),
    ("A100", "a100-sxm-80gb"),
    ("L40S", "l40s"),
)
# Weights, KV cache and compute in one precision ("FP8 weights+FP8 KV cache where FP8").
PRECISIONS = (("FP8", "fp8"), ("FP16", "fp16"), ("BF16", "bf16"))

LOAD_MAX, LOAD_STATIC, LOAD_CLOSED, LOAD_OPEN, LOAD_BURST = "max", "static", "closed", "open", "burst"
LOAD_LABELS = {
    LOAD_MAX: "max-load (engine's own batch)",
    LOAD_STATIC: "static batch",
    LOAD_CLOSED: "closed-loop concurrency",
    LOAD_OPEN: "Poisson request rate",
    LOAD_BURST: "burst (all requests at once)",
}


# ---- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredRow:
    """One usable measurement, in canonical units: output tokens/s of the whole TP group, seconds."""

    index: int  # 0-based data row of the CSV
    source: str
    model: str  # the CSV's label
    model_card: str
    gpu: str
    gpu_card: str
    precision: str  # weights = KV cache = compute precision
    tp: int
    isl: int
    osl: int
    load: str  # LOAD_*
    load_value: float  # batch | users | requests per second | requests in the burst
    metric: str  # throughput | ttft | itl
    measured: float
    point: str  # measurement point: the rows of one run share it (and their split)
    split: str  # train | test
    requests: int = 500  # requests of an open-loop or burst run
    software: str = ""  # engine version from the notes ("TensorRT-LLM v0.17", "NIM 1.8.0")

    @property
    def legacy(self) -> bool:
        """2023 TensorRT-LLM releases (v0.5-v0.7): not used for fitting (see LEGACY_BEFORE)."""
        m = re.search(r"v(\d+)\.(\d+)", self.software)
        return bool(m) and (int(m.group(1)), int(m.group(2))) < LEGACY_BEFORE

    @property
    def family(self) -> str:
        return model_family(self.model)


@dataclass(frozen=True)
class SkippedRow:
    index: int
    model: str
    gpu: str
    metric: str
    reason: str


def model_family(label: str) -> str:
    for prefix in ("Llama-3", "Llama-2", "Mixtral", "Mistral", "GPT-J", "Falcon"):
        if label.startswith(prefix):
            return prefix
    return label


def _split_of(point: str) -> str:
    digest = int(hashlib.sha256(point.encode("utf-8")).hexdigest()[:8], 16)
    return "test" if digest % 100 < HELD_OUT_PERCENT else "train"


def _int(value: object) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number == int(number) and number > 0 else None


def _gpu_card(label: str) -> str | None:
    return next((card for prefix, card in GPU_CARDS if label.strip().startswith(prefix)), None)


def _precision(label: str) -> str | None:
    return next((p for prefix, p in PRECISIONS if label.strip().upper().startswith(prefix)), None)


def _load(text: str, notes: str) -> tuple[str, float, int] | str:
    """(kind, value, requests) of the benchmark's load, or the reason it cannot be used."""
    text = text.strip()
    requests = int(m.group(1)) if (m := re.search(r"(\d+) requests", text)) else 500
    if text.startswith("max-load"):
        return LOAD_MAX, 0.0, requests
    if m := re.match(r"(?:static )?batch (\d+)", text):
        return LOAD_STATIC, float(m.group(1)), requests
    if m := re.match(r"concurrency (\d+)", text):
        return LOAD_CLOSED, float(m.group(1)), requests
    if m := re.search(r"QPS=(\w+)", text):
        if m.group(1).upper() == "INF":
            return LOAD_BURST, float(requests), requests
        achieved = re.search(r"[Aa]chieved request throughput ([\d.]+) req/s", notes)
        if not achieved:
            return "request rate without the achieved request throughput"
        return LOAD_OPEN, float(achieved.group(1)), requests
    return f"load not understood: {text!r}"


def _metric(metric: str, unit: str, tp: int, load: str) -> tuple[str, float] | str:
    """(canonical metric, factor to canonical units) or the reason the row is not used."""
    unit_l = unit.lower()
    if metric in ("ttft", "ttft_mean", "itl_mean"):
        if unit_l.strip() != "ms":
            return f"latency unit {unit!r} not understood"
        return ("ttft" if metric.startswith("ttft") else "itl"), 1e-3
    if metric == "total_token_throughput":
        return "input+output tokens/s: the same run's output throughput x (isl+osl)/osl (not a " \
               "separate measurement)"
    if metric.startswith("output_throughput"):
        if load == LOAD_OPEN:
            return "throughput at a finite request rate is the offered load (rate x osl), not a " \
                   "prediction of the cost model"
        if "not stated" in unit_l and tp > 1:
            return "per-GPU vs per-TP-group throughput not stated by the source"
        return "throughput", float(tp) if "/gpu" in unit_l else 1.0
    return f"metric {metric!r} not used"


def load_measured(path: Path | str = DEFAULT_MEASURED) -> tuple[list[MeasuredRow], list[SkippedRow]]:
    """Read measured.csv: the usable rows (canonical units, with their split) and the others with
    the reason each is left out."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(str(path), "", f"cannot read the measurements: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(str(path), "", f"missing columns: {', '.join(missing)}")
    rows: list[MeasuredRow] = []
    skipped: list[SkippedRow] = []
    for index, rec in enumerate(frame.to_dict("records")):
        parsed = _parse(index, rec)
        (rows if isinstance(parsed, MeasuredRow) else skipped).append(parsed)
    return rows, skipped


def _parse(index: int, rec: dict[str, str]) -> MeasuredRow | SkippedRow:
    model, gpu, metric = rec["model"].strip(), rec["gpu"].strip(), rec["metric"].strip()

    def skip(reason: str) -> SkippedRow:
        return SkippedRow(index, model, gpu, metric, reason)

    if model in UNSUPPORTED_MODELS:
        return skip(UNSUPPORTED_MODELS[model])
    if model not in MODEL_CARDS:
        return skip(f"no model card for {model!r}")
    gpu_card = _gpu_card(gpu)
    if gpu_card is None:
        return skip(f"no hardware card for {gpu!r}")
    precision = _precision(rec["precision"])
    if precision is None:
        return skip(f"precision {rec['precision']!r} not understood")
    tp, isl, osl = _int(rec["tp"]), _int(rec["isl"]), _int(rec["osl"])
    if tp is None:
        return skip(f"parallel configuration not stated (tp {rec['tp']!r})")
    if (_int(rec["pp"]) or 1) != 1 or (_int(rec["dp"]) or 1) != 1 or rec.get("ep", "").strip():
        return skip("pp, dp or ep other than 1")
    if isl is None or osl is None:
        return skip(f"input/output length not stated (isl {rec['isl']!r}, osl {rec['osl']!r})")
    load = _load(rec["batch_or_concurrency"], rec["notes"])
    if isinstance(load, str):
        return skip(load)
    kind, value, requests = load
    canonical = _metric(metric, rec["unit"], tp, kind)
    if isinstance(canonical, str):
        return skip(canonical)
    name, factor = canonical
    try:
        measured = float(rec["value"]) * factor
    except ValueError:
        return skip(f"value {rec['value']!r} is not a number")
    if not (measured > 0 and math.isfinite(measured)):
        return skip(f"value {rec['value']!r} is not a positive number")
    if kind == LOAD_MAX and name != "throughput":
        return skip("latency at an unstated batch")
    if kind == LOAD_STATIC and name == "itl":
        return skip("inter-token latency of a static batch is not reported by the sources")
    source = rec["source_url_or_repo_path"].strip()
    point = "|".join([source, model, gpu, str(tp), precision, str(isl), str(osl),
                      rec["batch_or_concurrency"].strip()])
    return MeasuredRow(
        index=index, source=source, model=model, model_card=MODEL_CARDS[model], gpu=gpu,
        gpu_card=gpu_card, precision=precision, tp=tp, isl=isl, osl=osl, load=kind,
        load_value=value, metric=name, measured=measured, point=point, split=_split_of(point),
        requests=requests, software=_software(rec["notes"]),
    )


def _software(notes: str) -> str:
    if m := re.search(r"TensorRT-LLM (v\d+\.\d+[\w.]*)", notes):
        return f"TensorRT-LLM {m.group(1).rstrip('.')}"
    if m := re.search(r"\(v(\d+\.\d+[\w.]*) data", notes):
        return f"TensorRT-LLM v{m.group(1).rstrip('.')}"
    if m := re.search(r"NIM (\d+\.\d+[\d.]*)", notes):
        return f"NIM {m.group(1).rstrip('.')}"
    return ""


# ---- parameters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuParams:
    """The fitted parameters of one GPU card."""

    memory_bandwidth_utilization: float
    layer_overhead_us: float
    mfu: dict[str, float] = field(default_factory=dict)  # per compute precision

    def mfu_for(self, precision: str, default: float) -> float:
        return self.mfu.get(precision, default)


Params = dict[str, GpuParams]


@lru_cache(maxsize=None)
def _card(name: str) -> GpuCard:
    data = yaml.safe_load((HARDWARE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return GpuCard.model_validate(data)


def baseline_params(rows: Iterable[MeasuredRow]) -> Params:
    """Uncalibrated: the card's default mfu / bandwidth utilization, no per-layer overhead."""
    out: Params = {}
    for row in rows:
        card = _card(row.gpu_card)
        current = out.get(row.gpu_card) or GpuParams(card.memory_bandwidth_utilization, 0.0, {})
        out[row.gpu_card] = replace(current, mfu={**current.mfu, row.precision: card.mfu})
    return out


def card_params(rows: Iterable[MeasuredRow]) -> Params:
    """What the planner uses today: the cards' calibrated values where present, else defaults."""
    out: Params = {}
    for row in rows:
        card = _card(row.gpu_card)
        eff = card.efficiency.get(row.precision)  # type: ignore[call-overload]
        mbu = eff.memory_bandwidth_utilization if eff else card.memory_bandwidth_utilization
        current = out.get(row.gpu_card) or GpuParams(mbu, card.layer_overhead_us, {})
        out[row.gpu_card] = replace(current, mfu={**current.mfu,
                                                  row.precision: eff.mfu if eff else card.mfu})
    return out


# ---- prediction ----------------------------------------------------------------------------------


# TensorRT-LLM's trtllm-bench does not set max_attention_window_size, so the engine attends to the
# whole context: the measured Mistral-7B throughput at 20000/2000 equals Llama-3.1-8B's (within 3%),
# where a 4096-token window would be ~2x faster. The card's window is switched off for these rows.
CARD_OVERRIDES: dict[str, dict[str, object]] = {
    "mistral-7b": {"sliding_window": None, "sliding_window_every": None},
}


def _model_spec(model_card: str) -> str | dict[str, object]:
    if model_card not in CARD_OVERRIDES:
        return model_card
    data = yaml.safe_load((MODELS_DIR / f"{model_card}.yaml").read_text(encoding="utf-8"))
    return {**data, **CARD_OVERRIDES[model_card]}


@lru_cache(maxsize=4096)
def _base_condition(model_card: str, gpu_card: str, precision: str, isl: int, osl: int) -> Condition:
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


