"""Calibration of the cost model's efficiency parameters against published serving measurements.

The measurements (docs/calibration/measured.csv: TensorRT-LLM and NIM tables) are mapped row by
row onto a paraplan condition and shape, predicted with the shared cost model
(solver.physics.evaluate.evaluate_plan; there is no second cost model here), and a few physical parameters are
fitted on a training split:

    per GPU card:                  memory_bandwidth_utilization, layer_overhead_us
    per GPU card and precision:    mfu (achievable fraction of the dense tensor-core peak)

No per-row factors. What this module adds on top of the cost model is only the *measurement
protocol*: how a benchmark's load (an engine's own maximum batch, a static batch, N closed-loop
users, a Poisson request rate, a burst of requests) turns into the batch the cost model is
evaluated at, and how in-flight batching composes the cost model's prefill time P(B) (prompts of B
sequences) and decode step D(B) (B sequences) into the measured metric. docs/accuracy.md states
every rule; in short:

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

import datetime as _dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path

import pandas as pd
import yaml

from solver.errors import InputError
from solver.inputs.card_library import bundled_folder, source_checkout
from solver.inputs.cards import GpuCard
from solver.inputs.condition import Condition, build_condition
from solver.physics.cost import CostModel
from solver.physics.evaluate import evaluate_plan, evaluate_stages
from solver.physics.shapes import ParallelShape

# The shipped measurements, relative to a source checkout (docs/calibration/README.md: sources)
DATA_SOURCE = "docs/calibration/measured.csv"
HARDWARE_CARDS = "conditions/hardware"  # what --write-cards rewrites, in a source checkout


def default_measured() -> Path:
    """docs/calibration/measured.csv of this source checkout (not part of the installed package)."""
    root = source_checkout()
    if root is None:
        raise InputError("MEASURED", "", f"give the measurements CSV: {DATA_SOURCE} is part of a "
                         "source checkout of paraplan, not of the installed package")
    return root / DATA_SOURCE


def checkout_hardware_folder() -> Path:
    """conditions/hardware of this source checkout: the cards --write-cards rewrites."""
    root = source_checkout()
    if root is None:
        raise InputError("--write-cards", "", f"rewrites {HARDWARE_CARDS}/*.yaml of a source "
                         "checkout of paraplan; this one is an installed package")
    return root / HARDWARE_CARDS

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
# (docs/calibration/models_and_gpus.yaml note under Llama-3.1-70B).
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
    "Falcon-180B": "no model card: Falcon's parallel attention+MLP block with a 2-matrix GELU FFN "
                   "is not a ModelCard architecture (SwiGLU decoders only)",
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

LOAD_MAX, LOAD_STATIC, LOAD_CLOSED = "max", "static", "closed"
LOAD_OPEN, LOAD_BURST = "open", "burst"
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
    """One usable measurement in canonical units: output tokens/s of the TP group, or seconds."""

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


def load_measured(path: Path | str | None = None) -> tuple[list[MeasuredRow], list[SkippedRow]]:
    """Read measured.csv (default: docs/calibration/measured.csv): the usable rows (canonical
    units, with their split) and the others with the reason each is left out."""
    path = default_measured() if path is None else Path(path)
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


def _configuration(rec: dict[str, str]) -> tuple[str, str, int, int, int] | str:
    """(gpu card, precision, tp, isl, osl) of a row of a known model, or why it cannot be used."""
    gpu_card = _gpu_card(rec["gpu"])
    if gpu_card is None:
        return f"no hardware card for {rec['gpu'].strip()!r}"
    precision = _precision(rec["precision"])
    if precision is None:
        return f"precision {rec['precision']!r} not understood"
    tp, isl, osl = _int(rec["tp"]), _int(rec["isl"]), _int(rec["osl"])
    if tp is None:
        return f"parallel configuration not stated (tp {rec['tp']!r})"
    if (_int(rec["pp"]) or 1) != 1 or (_int(rec["dp"]) or 1) != 1 or rec.get("ep", "").strip():
        return "pp, dp or ep other than 1"
    if isl is None or osl is None:
        return f"input/output length not stated (isl {rec['isl']!r}, osl {rec['osl']!r})"
    return gpu_card, precision, tp, isl, osl


def _value(rec: dict[str, str], factor: float) -> float | str:
    try:
        measured = float(rec["value"]) * factor
    except ValueError:
        return f"value {rec['value']!r} is not a number"
    if not (measured > 0 and math.isfinite(measured)):
        return f"value {rec['value']!r} is not a positive number"
    return measured


def _parse(index: int, rec: dict[str, str]) -> MeasuredRow | SkippedRow:
    model, gpu, metric = rec["model"].strip(), rec["gpu"].strip(), rec["metric"].strip()

    def skip(reason: str) -> SkippedRow:
        return SkippedRow(index, model, gpu, metric, reason)

    if model in UNSUPPORTED_MODELS:
        return skip(UNSUPPORTED_MODELS[model])
    if model not in MODEL_CARDS:
        return skip(f"no model card for {model!r}")
    config = _configuration(rec)
    if isinstance(config, str):
        return skip(config)
    gpu_card, precision, tp, isl, osl = config
    load = _load(rec["batch_or_concurrency"], rec["notes"])
    if isinstance(load, str):
        return skip(load)
    kind, value, requests = load
    canonical = _metric(metric, rec["unit"], tp, kind)
    if isinstance(canonical, str):
        return skip(canonical)
    name, factor = canonical
    measured = _value(rec, factor)
    if isinstance(measured, str):
        return skip(measured)
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


@cache
def _card(name: str) -> GpuCard:
    data = yaml.safe_load((bundled_folder("GPU") / f"{name}.yaml").read_text(encoding="utf-8"))
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



# ---- which rows are fitted -----------------------------------------------------------------------

# Cards whose intra-node link is PCIe: their card bandwidth is the x16 link rate, while an 8-GPU
# PCIe server's all-reduce crosses PCIe switches and CPU sockets (the TP4/TP8 L40S rows imply
# ~12-16 GB/s achieved). No card parameter describes that topology, so those rows are evaluated,
# not fitted.
PCIE_CARDS = frozenset({"l40s"})

ROLE_TRAIN, ROLE_TEST, ROLE_LEGACY, ROLE_EXCLUDED = "train", "held-out", "legacy", "not fitted"
ROLE_LABELS = {
    ROLE_TRAIN: "train (fitted)",
    ROLE_TEST: "held-out",
    ROLE_LEGACY: "TensorRT-LLM < v0.14 (not fitted)",
    ROLE_EXCLUDED: "L40S TP>1 over PCIe (not fitted)",
}


def fit_exclusion(row: MeasuredRow) -> str | None:
    """Why a row is evaluated but never fitted (None: it is fitted when in the training split)."""
    if row.legacy:
        return ROLE_LEGACY
    if row.gpu_card in PCIE_CARDS and row.tp > 1:
        return ROLE_EXCLUDED
    return None


def role(row: MeasuredRow) -> str:
    return fit_exclusion(row) or (ROLE_TRAIN if row.split == "train" else ROLE_TEST)


# ---- fitting -------------------------------------------------------------------------------------

# Physical ranges: fractions of the spec-sheet peaks, and a per-layer overhead of at most 100 us
# (3.2 ms per decode step of a 32-layer model: beyond that it would not be an overhead any more).
BOUNDS = {"mfu": (0.05, 1.0), "mbu": (0.05, 1.0), "overhead": (0.0, 100.0)}


def _log_error(predicted: float | None, measured: float) -> float:
    if predicted is None or not predicted > 0:
        return math.inf
    return abs(math.log(predicted / measured))


def metric_weights(rows: Sequence[MeasuredRow]) -> dict[str, float]:
    """Each metric weighs the same in total (the many max-throughput rows must not drown the
    latency rows): a row of metric m weighs 1 / (number of rows of m)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.metric] = counts.get(row.metric, 0) + 1
    return {m: 1 / n for m, n in counts.items()}


def objective(rows: Sequence[MeasuredRow], params: Params,
              weights: dict[str, float] | None = None) -> float:
    """Weighted sum of absolute log errors |ln(predicted / measured)| (the fit minimizes it)."""
    weights = weights or metric_weights(rows)
    return sum(weights[r.metric] * _log_error(predict(r, params), r.measured) for r in rows)


@dataclass(frozen=True)
class _Coordinate:
    """One fitted number of one card: bandwidth utilization, per-layer overhead, or mfu."""

    name: str  # "mbu" | "overhead" | "mfu"
    gpu: str
    precision: str = ""

    def get(self, params: Params) -> float:
        p = params[self.gpu]
        if self.name == "overhead":
            return p.layer_overhead_us
        if self.name == "mbu":
            return p.memory_bandwidth_utilization
        return p.mfu[self.precision]

    def set(self, params: Params, value: float) -> Params:
        lo, hi = BOUNDS[self.name]
        value = min(max(value, lo), hi)
        p = params[self.gpu]
        if self.name == "overhead":
            p = replace(p, layer_overhead_us=value)
        elif self.name == "mbu":
            p = replace(p, memory_bandwidth_utilization=value)
        else:
            p = replace(p, mfu={**p.mfu, self.precision: value})
        return {**params, self.gpu: p}

    def trials(self, value: float, step: float) -> tuple[float, float]:
        """Fractions move by factors exp(+-step), the overhead by +-50 us x step."""
        if self.name == "overhead":
            return value + 50 * step, value - 50 * step
        return value * math.exp(step), value * math.exp(-step)


@dataclass(frozen=True)
class FitResult:
    params: Params
    objective: float  # on the fitted rows
    start_objective: float  # the same rows with the uncalibrated defaults
    rounds: int
    rows: int


def fit(rows: Sequence[MeasuredRow], start: Params | None = None, *,
        progress: Callable[[str], None] | None = None, tolerance: float = 0.01,
        max_rounds: int = 80) -> FitResult:
    """Fit every card's parameters on the rows given (the caller passes the training rows).

    Deterministic pattern search from the uncalibrated defaults: each coordinate in turn tries a
    step up and a step down and keeps the first that lowers the objective; when no coordinate
    improves, the step halves, until it is below `tolerance`. The objective separates by card, so
    a card's coordinate re-predicts only that card's rows. Rows whose configuration does not fit
    the modelled memory are left out (they have no prediction)."""
    start = start or baseline_params(rows)
    usable = [r for r in rows if predict(r, start) is not None]
    weights = metric_weights(usable)
    gpus = sorted({r.gpu_card for r in usable})
    by_gpu = {g: [r for r in usable if r.gpu_card == g] for g in gpus}
    params: Params = {g: start[g] for g in gpus}
    coords: list[_Coordinate] = []
    for g in gpus:
        coords += [_Coordinate("mbu", g), _Coordinate("overhead", g)]
        coords += [_Coordinate("mfu", g, p) for p in sorted({r.precision for r in by_gpu[g]})]
    err = {g: objective(by_gpu[g], params, weights) for g in gpus}
    first = sum(err.values())
    step, rounds = math.log(2.0), 0
    while step >= tolerance and rounds < max_rounds:
        rounds += 1
        improved = False
        for c in coords:
            here = c.get(params)
            for value in c.trials(here, step):
                trial = c.set(params, value)
                if c.get(trial) == here:
                    continue
                new = objective(by_gpu[c.gpu], trial, weights)
                if new < err[c.gpu] - 1e-12:
                    params, err[c.gpu], improved = trial, new, True
                    break
        if progress:
            progress(f"round {rounds}: step {step:.3f}, objective {sum(err.values()):.4f}")
        if not improved:
            step /= 2
    return FitResult(params=params, objective=sum(err.values()), start_objective=first,
                     rounds=rounds, rows=len(usable))


# ---- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    row: MeasuredRow
    predicted: float
    role: str

    @property
    def ratio(self) -> float:
        return self.predicted / self.row.measured

    @property
    def error_pct(self) -> float:
        return abs_pct_error(self.predicted, self.row.measured)


def evaluate(rows: Iterable[MeasuredRow],
             params: Params) -> tuple[list[Prediction], list[SkippedRow]]:
    """Predict every row; rows the modelled memory cannot hold come back as skipped."""
    out: list[Prediction] = []
    unusable: list[SkippedRow] = []
    for row in rows:
        value = predict(row, params)
        if value is None:
            unusable.append(SkippedRow(row.index, row.model, row.gpu, row.metric,
                                       "does not fit the modelled memory (weights + runtime "
                                       "overhead exceed the usable memory of the card)"))
        else:
            out.append(Prediction(row, value, role(row)))
    return out, unusable


def abs_pct_error(predicted: float, measured: float) -> float:
    return abs(predicted / measured - 1) * 100


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class ErrorStats:
    n: int
    median: float  # absolute percentage error
    p90: float
    bias: float  # median of predicted / measured

    @classmethod
    def of(cls, predictions: Sequence[Prediction]) -> ErrorStats:
        errors = [p.error_pct for p in predictions]
        return cls(len(errors), percentile(errors, 50), percentile(errors, 90),
                   percentile([p.ratio for p in predictions], 50))


def error_table(predictions: Sequence[Prediction], key: Callable[[Prediction], str]
                ) -> dict[tuple[str, str], ErrorStats]:
    """(group, metric) -> error statistics."""
    groups: dict[tuple[str, str], list[Prediction]] = {}
    for p in predictions:
        groups.setdefault((key(p), p.row.metric), []).append(p)
    return {k: ErrorStats.of(v) for k, v in sorted(groups.items())}


TARGETS_PCT = {"throughput": 15.0, "ttft": 20.0, "itl": 20.0}  # issue 6: held-out median


# ---- the whole calibration -----------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationResult:
    source: str
    rows: list[MeasuredRow]
    skipped: list[SkippedRow]  # not usable: parsing, unsupported model, protocol, memory
    fit: FitResult
    predictions: list[Prediction]  # every usable row with the fitted parameters
    baseline: list[Prediction]  # the same rows with the uncalibrated defaults
    date: str

    @property
    def params(self) -> Params:
        return self.fit.params

    def held_out(self, metric: str) -> ErrorStats:
        return ErrorStats.of([p for p in self.predictions
                              if p.role == ROLE_TEST and p.row.metric == metric])

    def count(self, role_name: str) -> int:
        return sum(p.role == role_name for p in self.predictions)


def calibrate(path: Path | str | None = None, *,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Load (default: docs/calibration/measured.csv), fit on the training rows, evaluate every
    usable row (fitted and uncalibrated)."""
    path = default_measured() if path is None else Path(path)
    rows, skipped = load_measured(path)
    base = baseline_params(rows)
    baseline, unusable = evaluate(rows, base)
    usable_rows = [p.row for p in baseline]
    train = [r for r in usable_rows if role(r) == ROLE_TRAIN]
    if not train:
        raise InputError(str(path), "", "no usable training rows (see the skipped rows)")
    result = fit(train, base, progress=progress)
    params = {**base, **result.params}
    predictions, _ = evaluate(usable_rows, params)
    return CalibrationResult(source=str(path), rows=usable_rows, skipped=skipped + unusable,
                             fit=replace(result, params=params), predictions=predictions,
                             baseline=baseline, date=today())


def today() -> str:
    return _dt.date.today().isoformat()


# ---- writing the cards ---------------------------------------------------------------------------

# precision pairs with the same tensor-core rate on every card here: a fit of one also stands for
# the other when the other was not measured
_SAME_RATE = {"bf16": "fp16", "fp16": "bf16"}
_OWNED_KEYS = ("efficiency", "layer_overhead_us", "calibration")


def card_efficiencies(params: GpuParams) -> dict[str, dict[str, float]]:
    out = {p: {"mfu": round(v, 3),
               "memory_bandwidth_utilization": round(params.memory_bandwidth_utilization, 3)}
           for p, v in sorted(params.mfu.items())}
    for p in list(out):
        alias = _SAME_RATE.get(p)
        if alias and alias not in out:
            out[alias] = dict(out[p])
    return dict(sorted(out.items()))


def calibration_note(result: CalibrationResult, gpu: str) -> str:
    mine = [p for p in result.predictions if p.row.gpu_card == gpu]
    train = sum(p.role == ROLE_TRAIN for p in mine)
    test = [p for p in mine if p.role == ROLE_TEST]
    errors = ", ".join(
        f"{METRIC_LABELS[m]} {ErrorStats.of([p for p in test if p.row.metric == m]).median:.0f}%"
        for m in METRICS if any(p.row.metric == m for p in test))
    software = sorted({p.row.software for p in mine if p.role in (ROLE_TRAIN, ROLE_TEST)})
    fitted = sorted(result.params[gpu].mfu)
    aliases = [f"{_SAME_RATE[p]} = {p}" for p in fitted
               if p in _SAME_RATE and _SAME_RATE[p] not in fitted]
    note = (f"Fitted by `paraplan calibrate` on {result.date} from {_display(result.source)} "
            f"({', '.join(software)} rows): {train} training rows and {len(test)} held-out rows "
            f"on this card; held-out median absolute error {errors or 'n/a'}. Measured precisions: "
            f"{', '.join(fitted)}")
    if aliases:
        note += f" ({'; '.join(aliases)}: same tensor-core rate)"
    return note + ". Method, per-card and per-model errors: docs/accuracy.md."


def _display(path: str) -> str:
    """The data file as the cards cite it: relative to the source checkout when inside it."""
    root = source_checkout()
    try:
        return Path(path).resolve().relative_to(root).as_posix() if root else str(path)
    except ValueError:
        return str(path)


def _strip_keys(text: str, keys: Sequence[str]) -> list[str]:
    """The card's lines without the top-level `keys` (and their indented continuation lines)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        top = line[:1] not in (" ", "\t", "#", "") and ":" in line
        if top:
            skipping = line.split(":", 1)[0].strip() in keys
        elif skipping and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        else:
            skipping = False
        if not skipping:
            out.append(line)
    return out


def card_text(original: str, params: GpuParams, note: str) -> str:
    """The card with the calibrated block in place of any earlier one, before `source:`; every
    other line (comments included) is kept as it was."""
    lines = [line.replace("# default, to be calibrated", "# uncalibrated default (see efficiency)")
             for line in _strip_keys(original, _OWNED_KEYS)]
    block = ["efficiency:                    # calibrated: see `calibration`"]
    for precision, eff in card_efficiencies(params).items():
        block.append(f"  {precision}: {{mfu: {eff['mfu']}, memory_bandwidth_utilization: "
                     f"{eff['memory_bandwidth_utilization']}}}")
    block.append(f"{f'layer_overhead_us: {params.layer_overhead_us:.1f}':<31}"
                 "# calibrated: fixed time per transformer layer per forward pass")
    block.append("calibration: >-")
    block += ["  " + chunk for chunk in _wrap(note, 98)]
    at = next((i for i, line in enumerate(lines) if line.startswith("source:")), len(lines))
    return "\n".join(lines[:at] + block + lines[at:]) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + ([line] if line else [])


def write_cards(result: CalibrationResult, directory: Path | None = None) -> list[Path]:
    """Write the fitted parameters into the hardware cards (validated before writing); by default
    the source checkout's conditions/hardware."""
    from solver.render.writer import write_atomic

    directory = checkout_hardware_folder() if directory is None else directory
    written = []
    fitted_gpus = {p.row.gpu_card for p in result.predictions if p.role == ROLE_TRAIN}
    for gpu in sorted(fitted_gpus):
        path = directory / f"{gpu}.yaml"
        text = card_text(path.read_text(encoding="utf-8"), result.params[gpu],
                         calibration_note(result, gpu))
        GpuCard.model_validate(yaml.safe_load(text))  # never write a card that does not load
        written.append(write_atomic(path, text))
    _card.cache_clear()
    return written


# ---- text report ---------------------------------------------------------------------------------


def params_table(params: Params) -> list[str]:
    lines = ["| card | precision | mfu | memory bandwidth utilization | layer overhead (us) |",
             "|---|---|---|---|---|"]
    for gpu, p in sorted(params.items()):
        for precision, mfu in sorted(p.mfu.items()):
            lines.append(f"| {gpu} | {precision} | {mfu:.3f} | "
                         f"{p.memory_bandwidth_utilization:.3f} | {p.layer_overhead_us:.1f} |")
    return lines


def summary_lines(result: CalibrationResult) -> list[str]:
    """What `paraplan calibrate` prints."""
    lines = [f"{len(result.rows)} usable rows ({result.count(ROLE_TRAIN)} fitted, "
             f"{result.count(ROLE_TEST)} held out, "
             f"{result.count(ROLE_LEGACY) + result.count(ROLE_EXCLUDED)} evaluated only), "
             f"{len(result.skipped)} not usable",
             f"fit: objective {result.fit.start_objective:.4f} -> {result.fit.objective:.4f} "
             f"({result.fit.rounds} rounds, {result.fit.rows} training rows)", ""]
    lines += params_table({g: p for g, p in result.params.items()
                           if any(r.gpu_card == g and role(r) == ROLE_TRAIN for r in result.rows)})
    lines += ["", "| metric | rows | median abs error | p90 | uncalibrated median | target | met |",
              "|---|---|---|---|---|---|---|"]
    for metric in METRICS:
        stats = result.held_out(metric)
        base = ErrorStats.of([p for p in result.baseline
                              if p.role == ROLE_TEST and p.row.metric == metric])
        target = TARGETS_PCT[metric]
        lines.append(f"| {METRIC_LABELS[metric]} (held-out) | {stats.n} | {stats.median:.1f}% | "
                     f"{stats.p90:.1f}% | {base.median:.1f}% | <= {target:.0f}% | "
                     f"{'yes' if stats.median <= target else 'NO'} |")
    reasons: dict[str, int] = {}
    for s in result.skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    lines += ["", "not usable:"] + [f"  {n:4d}  {reason}" for reason, n in
                                    sorted(reasons.items(), key=lambda kv: -kv[1])]
    return lines
