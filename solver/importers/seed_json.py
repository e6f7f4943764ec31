"""Import the JSON trio of the seed (tests/assets/seed-formats/json-trio):

    hardware_env.json            nodes with per-device lists, node link bandwidths, cluster summary
    model_params.json            a Hugging Face config (plus quantization / moe / memory_estimates)
    performance_requirements.json  SLO percentiles, throughput targets, batch and memory caps

Units: the seed's `*_bw_gbps` fields are read as GB/s (its nvlink_bw_gbps 900 is H100 NVLink's
900 GB/s aggregate; in Gb/s it would be 8x slower than PCIe). Latency percentiles: paraplan predicts
one latency per request (static batch, fixed lengths), so a p50 and a p99 bound both apply and the
tighter one is enforced.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.importers.common import Imported, precision_of
from solver.importers.hf_config import model_from_hf
from solver.inputs.card_library import find_card, known_cards_text
from solver.inputs.loading import read_mapping

HARDWARE_FILE = "hardware_env.json"
MODEL_FILES = ("model_params.json", "config.json")
PERFORMANCE_FILE = "performance_requirements.json"
DEFAULT_INPUT_TOKENS = 2048
DEFAULT_OUTPUT_TOKENS = 512

# GPU name token -> card (longest first so "h200" wins over "h20")
GPU_NAMES = (
    ("mi300x", "mi300x"),
    ("h200", "h200-sxm-141gb"),
    ("h100", "h100-sxm-80gb"),
    ("h800", "h800"),
    ("h20", "h20"),
    ("a100", "a100-sxm-80gb"),
    ("l40s", "l40s"),
    ("b200", "b200"),
)


def _o(path: Path, key: str, value: Any) -> str:
    return f'{path.name}: "{key}": {value!r}'


def gpu_card_for(name: str, path: Path, key: str) -> str:
    """The GPU card for a device name: a card of exactly that name on the card search path (the
    user's folders first), else the bundled card whose token the name contains."""
    for exact in dict.fromkeys((name, name.lower())):
        if find_card("GPU", exact) is not None:
            return exact
    tokens = re.split(r"[^a-z0-9]+", name.lower())
    for token_name, card in GPU_NAMES:
        if any(
            t == token_name or (t.startswith(token_name) and not t[len(token_name)].isdigit())
            for t in tokens
        ):
            return card
    raise InputError(str(path), key, f"GPU {name!r} matches no card; {known_cards_text('GPU')}")


def trio_files(folder: Path) -> tuple[Path, Path, Path | None]:
    hardware = folder / HARDWARE_FILE
    if not hardware.is_file():
        raise InputError(
            str(folder),
            "",
            f"no {HARDWARE_FILE} here (the JSON trio needs {HARDWARE_FILE}, "
            f"{MODEL_FILES[0]} or {MODEL_FILES[1]}, and {PERFORMANCE_FILE})",
        )
    model = next((folder / n for n in MODEL_FILES if (folder / n).is_file()), None)
    if model is None:
        raise InputError(
            str(folder), "", f"no {MODEL_FILES[0]} or {MODEL_FILES[1]} beside {HARDWARE_FILE}"
        )
    perf = folder / PERFORMANCE_FILE
    return hardware, model, perf if perf.is_file() else None


def import_trio(folder: Path) -> Imported:
    hardware_path, model_path, perf_path = trio_files(folder)
    imp = Imported(source=str(folder), kind="condition")
    imp.data = {"name": folder.name, "model": {}, "precision": {}, "hardware": {}, "workload": {}}
    cluster_name = _hardware(imp, hardware_path, read_mapping(hardware_path))
    model_name = _model(imp, model_path, read_mapping(model_path))
    imp.put("name", f"{model_name}-{cluster_name}", "model name + cluster name")
    if perf_path is not None:
        _performance(imp, perf_path, read_mapping(perf_path))
    else:
        imp.assumptions.append(f"no {PERFORMANCE_FILE}: no SLOs")
    _workload_defaults(imp)
    return imp


# ---- hardware_env.json ---------------------------------------------------------------------------


def _hardware(imp: Imported, path: Path, data: dict[str, Any]) -> str:
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise InputError(str(path), "nodes", "a non-empty list of nodes is required")
    per_node, names, memories = set(), set(), set()
    for i, node in enumerate(nodes):
        devices = node.get("gpu_devices") if isinstance(node, dict) else None
        if not isinstance(devices, list) or not devices:
            raise InputError(
                str(path), f"nodes[{i}].gpu_devices", "a non-empty list of devices is required"
            )
        per_node.add(len(devices))
        for j, dev in enumerate(devices):
            if not isinstance(dev, dict) or "gpu_name" not in dev:
                raise InputError(str(path), f"nodes[{i}].gpu_devices[{j}].gpu_name", "missing")
            names.add(dev["gpu_name"])
            memories.add(dev.get("gpu_memory_gb"))
    if len(per_node) > 1:
        raise InputError(
            str(path),
            "nodes[].gpu_devices",
            f"nodes have different GPU counts {sorted(per_node)}; paraplan plans identical nodes",
        )
    if len(names) > 1:
        raise InputError(
            str(path),
            "nodes[].gpu_devices[].gpu_name",
            f"mixed GPU types {sorted(names)}; paraplan plans one GPU type",
        )
    gpus_per_node, gpu_name = per_node.pop(), names.pop()
    card = gpu_card_for(gpu_name, path, "nodes[0].gpu_devices[0].gpu_name")
    first = nodes[0]["gpu_devices"][0]
    imp.put("hardware.gpu", card, _o(path, "nodes[0].gpu_devices[0].gpu_name", gpu_name))
    _memory_override(imp, path, card, memories)
    imp.put("hardware.num_nodes", len(nodes), f'{path.name}: {len(nodes)} entries in "nodes"')
    imp.put(
        "hardware.gpus_per_node",
        gpus_per_node,
        f'{path.name}: {gpus_per_node} entries in "nodes[0].gpu_devices"',
    )
    cluster = data.get("cluster", {}) if isinstance(data.get("cluster"), dict) else {}
    total = cluster.get("total_gpus")
    if total is not None and total != len(nodes) * gpus_per_node:
        raise InputError(
            str(path),
            "cluster.total_gpus",
            f"{total}, but the nodes list "
            f"{len(nodes)} x {gpus_per_node} = {len(nodes) * gpus_per_node} devices",
        )
    _links(imp, path, nodes[0], first)
    ignored = sorted(
        {
            k
            for n in nodes
            for k in n
            if k not in ("node_id", "gpu_devices", "intra_node_bw_gbps", "inter_node_bw_gbps")
        }
    )
    ignored += sorted(
        {
            f"gpu_devices[].{k}"
            for k in first
            if k not in ("device_id", "gpu_name", "gpu_memory_gb", "nvlink_bw_gbps", "pcie_bw_gbps")
        }
    )
    if ignored:
        imp.assumptions.append(
            f"{path.name}: ignored (no effect on GPU planning): {', '.join(ignored)}"
        )
    return str(cluster.get("name") or path.parent.name)


def _memory_override(imp: Imported, path: Path, card: str, memories: set[Any]) -> None:
    from solver.inputs.condition import load_gpu_card

    if len(memories) > 1:
        raise InputError(
            str(path),
            "nodes[].gpu_devices[].gpu_memory_gb",
            f"different memory sizes {sorted(memories)}",
        )
    memory = memories.pop()
    gpu = load_gpu_card(card)
    if memory is None or memory == gpu.memory_gb:
        return
    if not isinstance(memory, int | float) or memory <= 0:
        raise InputError(
            str(path), "nodes[0].gpu_devices[0].gpu_memory_gb", f"{memory!r} is not a size in GB"
        )
    inline = gpu.model_dump(exclude_defaults=False)
    inline["memory_gb"] = float(memory)
    inline["name"] = f"{gpu.name}-{memory:g}gb"
    imp.put(
        "hardware.gpu",
        inline,
        _o(path, "nodes[0].gpu_devices[0].gpu_memory_gb", memory)
        + f" (card {card} with this memory)",
    )


def _links(imp: Imported, path: Path, node: dict[str, Any], device: dict[str, Any]) -> None:
    intra = node.get("intra_node_bw_gbps")
    if intra is not None:
        imp.put(
            "hardware.intra_node_gb_per_s",
            float(intra),
            _o(path, "nodes[0].intra_node_bw_gbps", intra) + " read as GB/s per GPU per direction",
        )
    elif device.get("nvlink_bw_gbps") is not None:
        nvlink = device["nvlink_bw_gbps"]
        imp.put(
            "hardware.intra_node_gb_per_s",
            nvlink / 2,
            _o(path, "nodes[0].gpu_devices[0].nvlink_bw_gbps", nvlink) + " / 2 (bidirectional)",
        )
    inter = node.get("inter_node_bw_gbps")
    if inter is not None:
        imp.put(
            "hardware.inter_node_gb_per_s",
            float(inter),
            _o(path, "nodes[0].inter_node_bw_gbps", inter) + " read as GB/s per GPU",
        )
    imp.assumptions.append(
        "hardware_env.json bandwidths (*_bw_gbps) read as GB/s: intra_node_bw_gbps as the per-GPU "
        "per-direction NVLink bandwidth, inter_node_bw_gbps as the per-GPU network bandwidth "
        "(if it is "
        "per node or in Gb/s, divide hardware.inter_node_gb_per_s by 8)"
    )
    recorded = {k: device[k] for k in ("nvlink_bw_gbps", "pcie_bw_gbps") if k in device}
    if recorded:
        imp.read_only.append(
            f"{path.name}: device links {recorded} recorded; the node-level figures are used"
        )


# ---- model_params.json ---------------------------------------------------------------------------


def _model(imp: Imported, path: Path, data: dict[str, Any]) -> str:
    extras = {k: data[k] for k in ("quantization", "moe", "memory_estimates") if k in data}
    hf = {k: v for k, v in data.items() if k not in extras}
    moe = extras.get("moe")
    if isinstance(moe, dict) and (moe.get("num_experts") or 0) > 1 and "num_experts" not in hf:
        hf["num_experts"], hf["num_experts_per_tok"] = moe["num_experts"], moe.get("top_k")
    card, precision = model_from_hf(hf, str(path), path.parent.name)
    imp.data["model"] = card.data
    imp.origins.update({f"model.{k}": v for k, v in card.origins.items()})
    imp.read_only += card.read_only
    imp.assumptions += [f"{path.name}: {a}" for a in card.assumptions]
    if isinstance(moe, dict) and (moe.get("num_experts") or 0) <= 1:
        imp.read_only.append(f"{_o(path, 'moe', moe)}: a dense model")
    _model_precision(imp, path, extras.get("quantization"), precision)
    estimates = extras.get("memory_estimates")
    if isinstance(estimates, dict):
        imp.read_only.append(
            f"{_o(path, 'memory_estimates', estimates)}: paraplan computes memory "
            "itself (plan.md memory table)"
        )
    return str(card.data["name"])


def _model_precision(imp: Imported, path: Path, quant: Any, hf_precision: str | None) -> None:
    if isinstance(quant, dict):
        for key in ("weights", "kv_cache", "activations"):
            if key not in quant:
                continue
            value = precision_of(str(quant[key]), str(path), f"quantization.{key}")
            imp.put(f"precision.{key}", value, _o(path, f"quantization.{key}", quant[key]))
        return
    if hf_precision is not None:
        imp.put(
            "precision.weights", hf_precision, f"{path.name}: quantization_config / torch_dtype"
        )
        if hf_precision in ("fp16", "bf16", "fp32"):
            imp.put("precision.kv_cache", hf_precision, "same as the weights")
            imp.put("precision.activations", hf_precision, "same as the weights")
        return
    imp.assume("precision.weights", "bf16", f"{path.name} states no precision")


# ---- performance_requirements.json ---------------------------------------------------------------

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


def _performance(imp: Imported, path: Path, data: dict[str, Any]) -> None:
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
            _o(path, "memory.max_gpu_memory_usage_percent", pct),
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
        key = next((k for k in keys if k in workload), None)
        if key is not None:
            imp.put(f"workload.{target}", workload[key], _o(path, f"workload.{key}", workload[key]))


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
            _o(path, "throughput.max_num_batched_tokens", tput["max_num_batched_tokens"]),
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


def _workload_defaults(imp: Imported) -> None:
    if imp.get("workload.input_tokens") is None:
        imp.assume("workload.input_tokens", DEFAULT_INPUT_TOKENS, "the trio gives no prompt length")
    if imp.get("workload.output_tokens") is None:
        imp.assume(
            "workload.output_tokens", DEFAULT_OUTPUT_TOKENS, "the trio gives no output length"
        )
    if imp.get("workload.max_batch_size") is None and imp.get("workload.batch_size") is None:
        imp.assume("workload.max_batch_size", 256, "no batch cap given")
    order = [
        "input_tokens",
        "output_tokens",
        "max_batch_size",
        "batch_size",
        "prefill_chunk_tokens",
    ]
    w = imp.data["workload"]
    imp.data["workload"] = {k: w[k] for k in order if k in w}
