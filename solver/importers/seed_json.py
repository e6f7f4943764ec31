"""Import the JSON trio of the seed (tests/assets/seed-formats/json-trio):

    hardware_env.json            nodes with per-device lists, node link bandwidths, cluster summary
                                 (seed_json_hardware.py)
    model_params.json            a Hugging Face config (plus quantization / moe / memory_estimates)
    performance_requirements.json  SLO percentiles, throughput targets, batch and memory caps
                                 (seed_json_performance.py)

The trio is recognized by its folder, its hardware_env.json, or a Hugging Face config beside a
hardware_env.json; it yields a condition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.importers.common import Imported, key_origin, precision_of
from solver.importers.hf_config import is_hf_config, model_from_hf
from solver.importers.paper_plans import is_paper_plan
from solver.importers.seed_json_hardware import read_hardware
from solver.importers.seed_json_performance import read_performance
from solver.importers.source import Format, Source
from solver.inputs.loading import read_mapping

HARDWARE_FILE = "hardware_env.json"
MODEL_FILES = ("model_params.json", "config.json")
PERFORMANCE_FILE = "performance_requirements.json"
DEFAULT_INPUT_TOKENS = 2048
DEFAULT_OUTPUT_TOKENS = 512


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
    cluster_name = read_hardware(imp, hardware_path, read_mapping(hardware_path))
    model_name = _model(imp, model_path, read_mapping(model_path))
    imp.put("name", f"{model_name}-{cluster_name}", "model name + cluster name")
    if perf_path is not None:
        read_performance(imp, perf_path, read_mapping(perf_path))
    else:
        imp.assumptions.append(f"no {PERFORMANCE_FILE}: no SLOs")
    _workload_defaults(imp)
    return imp


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
        imp.read_only.append(f"{key_origin(path, 'moe', moe)}: a dense model")
    _model_precision(imp, path, extras.get("quantization"), precision)
    estimates = extras.get("memory_estimates")
    if isinstance(estimates, dict):
        imp.read_only.append(
            f"{key_origin(path, 'memory_estimates', estimates)}: paraplan computes memory "
            "itself (plan.md memory table)"
        )
    return str(card.data["name"])


def _model_precision(imp: Imported, path: Path, quant: Any, hf_precision: str | None) -> None:
    if isinstance(quant, dict):
        for key in ("weights", "kv_cache", "activations"):
            if key not in quant:
                continue
            value = precision_of(str(quant[key]), str(path), f"quantization.{key}")
            imp.put(f"precision.{key}", value, key_origin(path, f"quantization.{key}", quant[key]))
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


def recognizes(source: Source) -> bool:
    """A trio folder, its hardware_env.json, or a Hugging Face config beside a hardware_env.json
    (a paper config is never one: paper_plans reads it)."""
    path = source.path
    if path.is_dir() or path.name == HARDWARE_FILE:
        return True
    data = source.json
    return (
        data is not None
        and not is_paper_plan(data)
        and is_hf_config(data)
        and (path.parent / HARDWARE_FILE).is_file()
    )


def read_trio(source: Source) -> Imported:
    return import_trio(source.path if source.path.is_dir() else source.path.parent)


FORMAT = Format(name="trio", yields="condition", recognizes=recognizes, read=read_trio)
