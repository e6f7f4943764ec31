"""The published measurements as rows paraplan can predict (docs/calibration/measured.csv:
TensorRT-LLM and NIM tables).

Each CSV row is mapped onto a model card, a hardware card, one precision (weights = KV cache =
compute), a TP degree, input/output lengths, the benchmark's load (LOAD_*) and one metric in
canonical units (output tokens/s of the TP group, or seconds); a row that cannot be mapped comes
back as a SkippedRow with the reason. The rows of one measurement point share a deterministic
train/held-out split, and `role` says whether a row is fitted, held out or evaluated only.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from solver.errors import InputError
from solver.inputs.card_library import source_checkout

# The shipped measurements, relative to a source checkout (docs/calibration/README.md: sources)
DATA_SOURCE = "docs/calibration/measured.csv"


def default_measured() -> Path:
    """docs/calibration/measured.csv of this source checkout (not part of the installed package)."""
    root = source_checkout()
    if root is None:
        raise InputError("MEASURED", "", f"give the measurements CSV: {DATA_SOURCE} is part of a "
                         "source checkout of paraplan, not of the installed package")
    return root / DATA_SOURCE


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


# ---- which rows are fitted -----------------------------------------------------------------------

ROLE_TRAIN, ROLE_TEST, ROLE_LEGACY = "train", "held-out", "legacy"
ROLE_LABELS = {
    ROLE_TRAIN: "train (fitted)",
    ROLE_TEST: "held-out",
    ROLE_LEGACY: "TensorRT-LLM < v0.14 (not fitted)",
}


def fit_exclusion(row: MeasuredRow) -> str | None:
    """Why a row is evaluated but never fitted (None: it is fitted when in the training split)."""
    return ROLE_LEGACY if row.legacy else None


def role(row: MeasuredRow) -> str:
    return fit_exclusion(row) or (ROLE_TRAIN if row.split == "train" else ROLE_TEST)
