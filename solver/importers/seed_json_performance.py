"""performance_requirements.json of the JSON trio: SLOs, batch caps and workload lengths.

Latency percentiles: paraplan predicts one latency per request (static batch, fixed lengths), so a
p50 and a p99 bound both apply and the tighter one is enforced. What has no paraplan equivalent is
listed in the condition's assumptions as ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.importers.common import Imported, key_origin

SLO_KEYS = {
    "ttft_ms": (
        "prefill_latency_p50_ms",
        "prefill_latency_p99_ms",
        "first_token_latency_p50_ms",
        "first_token_latency_p99_ms",
        "ttft_ms",
        "ttft_p50_ms",
        "ttft_p99_ms",
    ),
    "tpot_ms": (
        "decode_latency_per_token_p50_ms",
        "decode_latency_per_token_p99_ms",
        "tpot_ms",
        "tpot_p50_ms",
        "tpot_p99_ms",
        "itl_p50_ms",
        "itl_p99_ms",
    ),
    "e2e_latency_ms": ("total_inference_timeout_ms", "e2e_latency_ms", "e2e_latency_p99_ms"),
}


def read_performance(imp: Imported, path: Path, data: dict[str, Any]) -> None:
    slo = data.get("slo", {})
    known = {k for keys in SLO_KEYS.values() for k in keys}
    for target, keys in SLO_KEYS.items():
        given = [(k, slo[k]) for k in keys if isinstance(slo.get(k), int | float)]
        if not given:
            continue
        key, value = min(given, key=lambda kv: kv[1])
        note = ", ".join(f"{k} {v:g}" for k, v in given)
        imp.put(f"slo.{target}", float(value), f"{path.name}: slo.{key} (the tightest of: {note})")
    unknown = sorted(k for k in slo if k not in known)
    if unknown:
        imp.assumptions.append(f"{path.name}: slo keys not modelled, ignored: {', '.join(unknown)}")
    _throughput(imp, path, data.get("throughput", {}))
    memory = data.get("memory", {})
    if "max_gpu_memory_usage_percent" in memory:
        pct = memory["max_gpu_memory_usage_percent"]
        if not isinstance(pct, int | float) or not 0 < pct <= 100:
            raise InputError(
                str(path), "memory.max_gpu_memory_usage_percent", f"{pct!r} is not a percentage"
            )
        imp.put(
            "hardware.usable_memory_fraction",
            pct / 100,
            key_origin(path, "memory.max_gpu_memory_usage_percent", pct),
        )
    rest = [f"memory.{k}" for k in memory if k != "max_gpu_memory_usage_percent"]
    rest += [f"load_balancing.{k}" for k in data.get("load_balancing", {})]
    rest += [
        k for k in data if k not in ("slo", "throughput", "memory", "load_balancing", "workload")
    ]
    if rest:
        imp.assumptions.append(
            f"{path.name}: not modelled, ignored: {', '.join(rest)} (per-GPU balance "
            "is reported in balance.csv)"
        )
    workload = data.get("workload", {})
    for target, keys in (
        ("input_tokens", ("input_tokens", "avg_input_length", "input_length")),
        ("output_tokens", ("output_tokens", "avg_output_length", "output_length")),
    ):
        name = next((k for k in keys if k in workload), None)
        if name is not None:
            value = workload[name]
            imp.put(f"workload.{target}", value, key_origin(path, f"workload.{name}", value))


def _throughput(imp: Imported, path: Path, tput: dict[str, Any]) -> None:
    caps = [
        (k, tput[k]) for k in ("max_batch_size", "max_num_seqs") if isinstance(tput.get(k), int)
    ]
    if caps:
        key, value = min(caps, key=lambda kv: kv[1])
        note = ", ".join(f"{k} {v}" for k, v in caps)
        imp.put(
            "workload.max_batch_size",
            value,
            f"{path.name}: throughput.{key} (the tighter of: {note})",
        )
    if isinstance(tput.get("max_num_batched_tokens"), int):
        imp.put(
            "workload.prefill_chunk_tokens",
            tput["max_num_batched_tokens"],
            key_origin(path, "throughput.max_num_batched_tokens", tput["max_num_batched_tokens"]),
        )
    rps = tput.get("target_requests_per_second")
    if rps is not None:
        imp.assumptions.append(
            f"{path.name}: throughput.target_requests_per_second = {rps} is not a hard "
            "constraint (the objective maximizes throughput); requests/s = plan "
            "throughput / workload.output_tokens"
        )
    extra = [
        k
        for k in tput
        if k
        not in (
            "max_batch_size",
            "max_num_seqs",
            "max_num_batched_tokens",
            "target_requests_per_second",
        )
    ]
    if extra:
        imp.assumptions.append(f"{path.name}: throughput keys ignored: {', '.join(extra)}")

