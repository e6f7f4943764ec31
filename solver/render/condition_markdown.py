"""plan.md's sections about the inputs: every condition key and where it enters the model, the
effective values after cards and defaults, the model card, and the modelling assumptions."""

from __future__ import annotations

from typing import Any

from solver.inputs.condition import Condition
from solver.planning.figures import ModelFigures
from solver.render.display import for_markdown, markdown_code
from solver.render.markdown import table

# Where each condition key enters the model (plan.md "Condition" section).
KEY_ROLES: dict[str, str] = {
    "name": "names the plan and its output folder",
    "model": "architecture card: parameters per layer, FLOPs per token, KV bytes per token",
    "precision.weights": "bytes per weight: memory constraint and weight-read time",
    "precision.kv_cache": "bytes per KV element: memory constraint and decode KV reads",
    "precision.activations": "compute precision (peak FLOP/s) and collective message sizes",
    "hardware.gpu": "card: memory, dense peak FLOP/s, HBM bandwidth, link defaults",
    "hardware.num_nodes": "GPU-count constraint (num_nodes x gpus_per_node GPUs)",
    "hardware.gpus_per_node": "node boundary: TP-inside-node rule, intra vs inter-node links",
    "hardware.max_gpus": "GPU-count upper bound; throughput counted per GPU",
    "hardware.intra_node_gb_per_s": "beta of collectives inside a node",
    "hardware.inter_node_gb_per_s": "beta of collectives and pipeline transfers across nodes",
    "hardware.mfu": "compute time = FLOPs / (peak x mfu)",
    "hardware.memory_bandwidth_utilization": "memory time = bytes / (HBM bandwidth x utilization)",
    "hardware.usable_memory_fraction": "memory constraint: per GPU <= memory_gb x fraction",
    "hardware.runtime_overhead_gb": "memory constraint: fixed per-GPU overhead",
    "hardware.collective_latency_us": "alpha of every collective hop",
    "hardware.gpu_hour_usd": "cost per million tokens in the reports (not in the objective)",
    "workload.input_tokens": "prefill FLOPs and TTFT; KV cache size",
    "workload.output_tokens": "decode steps (e2e = TTFT + out x TPOT); KV cache size",
    "workload.batch_size": "fixed concurrent sequences per replica (KV memory, step cost)",
    "workload.max_batch_size": "upper end of the batch grid the planner chooses from",
    "workload.prefill_chunk_tokens": "activation workspace in the memory constraint",
    "slo.ttft_ms": "hard constraint on TTFT",
    "slo.tpot_ms": "hard constraint on TPOT",
    "slo.e2e_latency_ms": "hard constraint on end-to-end latency",
    "objective.latency_weight": "weight of e2e / ideal e2e in the objective",
    "objective.throughput_weight": "weight of ideal throughput / throughput in the objective",
    "policy.use_all_gpus": "GPU-count constraint: all GPUs used, or idle GPUs allowed",
    "policy.tp_within_node": "placement rule: a TP group stays inside one node",
    "assumptions": "listed under Assumptions; no effect on the model",
}


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and not (prefix in ("model", "hardware.gpu") and prefix):
        rows: list[tuple[str, Any]] = []
        for key, value in data.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, data)]


def _role(key: str) -> str:
    if key in KEY_ROLES:
        return KEY_ROLES[key]
    if key.startswith("policy."):
        return "restricts the enumerated degrees of that dimension"
    head = key.split(".")[0]
    return KEY_ROLES.get(head, "recorded")


def _shown(key: str, value: Any) -> Any:
    """A condition value as plan.md shows it: an inline or imported card by its name and origin
    (its fields are in the Model section or the effective values), never a raw mapping."""
    if key == "assumptions":
        return f"{len(value)} items (see Assumptions)"
    if isinstance(value, dict):
        name = value.get("name")
        origin = value.get("source")
        what = "model card" if key == "model" else "GPU card"
        label = f"inline {what} {for_markdown(str(name))}" if name else f"inline {what}"
        return label + (f", {for_markdown(str(origin))}" if isinstance(origin, str) else "") + (
            f" ({len(value)} fields; see the Model section)" if key == "model" else
            f" ({len(value)} fields; see the effective values below)")
    return for_markdown(value) if isinstance(value, str) else value


def condition_section(condition: Condition) -> str:
    """Every key as given, what it enters the model as, and the effective values."""
    rows = [[for_markdown(k), _shown(k, v), _role(k)] for k, v in _flatten(condition.raw)]
    c, precision = condition.cluster, condition.precision
    effective = [
        ["GPU card", f"{for_markdown(c.gpu.name)}: {c.gpu.memory_gb:g} GB, {c.gpu.hbm_tb_per_s:g} TB/s, "
         f"dense TFLOPS {dict(c.gpu.dense_tflops)}"],
        ["GPUs available", f"{c.num_gpus} ("
         + ("fixed cluster" if c.fixed else "planner chooses up to this")
         + f"), {c.gpus_per_node} per node"],
        ["links", f"intra-node {c.intra_node_bytes_per_s / 1e9:g} GB/s, inter-node "
         f"{c.inter_node_bytes_per_s / 1e9:g} GB/s per GPU per direction, alpha "
         f"{c.collective_latency_s * 1e6:g} us"],
        ["efficiencies", f"mfu {c.mfu:g}, memory bandwidth utilization "
         f"{c.memory_bandwidth_utilization:g}, per-layer overhead {c.layer_overhead_s * 1e6:g} us"],
        ["usable memory", f"{c.usable_memory_bytes / 1e9:.2f} GB per GPU "
         f"({c.usable_memory_fraction:g} x {c.gpu.memory_gb:g} GB)"],
        ["precision", f"weights {precision.weights}, KV {precision.kv_cache}, "
         f"activations/compute {precision.activations}"],
    ]
    return ("## Condition (every field, and where it entered the model)\n\n"
            f"Source: {markdown_code(condition.source)}\n\n"
            + table(["key", "value", "enters the model as"], rows)
            + "\n\nEffective values after resolving cards and defaults:\n\n"
            + table(["item", "value"], effective))


def model_section(condition: Condition, a: ModelFigures) -> str:
    card = condition.model
    rows: list[list[Any]] = [
        ["layers", card.num_hidden_layers, "hidden", card.hidden_size],
        ["attention heads / KV heads", f"{card.num_attention_heads} / {card.kv_heads}",
         "attention", "MLA" if card.is_mla else "GQA"],
        ["experts (top-k)",
         f"{card.num_experts} ({card.num_experts_per_tok})" if card.is_moe else "dense",
         "vocab", card.vocab_size],
        ["total parameters", f"{a.total_params / 1e9:.2f} B", "active per token",
         f"{a.active_params / 1e9:.2f} B"],
        ["KV per token per layer", f"{a.kv_elements_per_token_per_layer} elements", "layer kinds",
         ", ".join(f"{label} x{count}" for label, count in a.layer_kinds)],
    ]
    ref = condition.model_ref
    if ref == "inline":
        ref = f"inline card, {card.source}" if card.source else "inline card"
    return (f"## Model: {for_markdown(card.name)} ({for_markdown(ref)})\n\n"
            + table(["", "", "", ""], rows))


# docs/accuracy.md's medians (tests/calibration/test_accuracy.py holds them to the published tables):
# held-out rows of the calibrated cards, and a card predicted from the others' fits
HELD_OUT_ERROR_PCT = {"output throughput": 6, "TTFT": 13, "inter-token latency": 9}
UNCALIBRATED_ERROR_PCT = {"output throughput": 10, "TTFT": 16, "inter-token latency": 19}


def _pct(errors: dict[str, int]) -> str:
    return ", ".join(f"{v}% for {k}" for k, v in errors.items())


def _card_note(condition: Condition) -> str:
    """The card's calibration; a card without measurements says so, with the error to expect."""
    cluster = condition.cluster
    card, overhead = cluster.gpu, f"per-layer overhead {cluster.layer_overhead_s * 1e6:.1f} us"
    name = for_markdown(card.name)
    if card.calibration and not card.calibration.startswith("Not measured"):
        return f"- This card ({name}): {card.calibration}; {overhead}."
    if not card.calibration:
        return (f"- **Uncalibrated card ({name})**: no measurements and no transferred parameters "
                f"(spec-sheet default efficiencies): expect errors beyond "
                f"{_pct(UNCALIBRATED_ERROR_PCT)} (docs/accuracy.md); {overhead}.")
    return (f"- **Uncalibrated card ({name})**: no measurements of this GPU; its parameters are "
            f"transferred from the calibrated cards (its card's `calibration` says how); expect "
            f"median errors of about {_pct(UNCALIBRATED_ERROR_PCT)} (leave-one-card-out, "
            f"docs/accuracy.md); {overhead}.")


def assumptions_section(condition: Condition) -> str:
    return "\n".join([
        "## Assumptions", "",
        "- Static batching: a replica prefills its batch, then decodes it; with pp > 1 the batch "
        "is split into min(pp, B) micro-batches that keep every stage busy.",
        "- TPOT uses the mean decode context (input + output/2); KV memory uses the full context.",
        "- MoE: routed tokens spread uniformly over the expert grid; a decode step reads the "
        "distinct experts its tokens touch, E(1-(1-k/E)^tokens).",
        "- Efficiencies (mfu, memory bandwidth utilization, per-layer overhead, collective "
        "latency and link bandwidth utilization) come from the condition, else the card's "
        "calibration for the compute precision, else the card's defaults. The h100, h200, gh200, "
        "a100 and l40s cards are fitted to published TensorRT-LLM/NIM measurements "
        "(docs/calibration/measured.csv), each row predicted by this planner's evaluator at the "
        "row's own load; on held-out measurements the median absolute error is "
        f"{_pct(HELD_OUT_ERROR_PCT)}, larger near saturation, for bursts and for 2023 engines "
        "(docs/accuracy.md).",
        _card_note(condition),
        "- Collectives are ring algorithms; a group within one node uses the intra-node link, "
        "otherwise the per-GPU network bandwidth.",
    ] + _imported_assumptions(condition))


def _imported_assumptions(condition: Condition) -> list[str]:
    """Defaults an importer had to assume for this condition (condition key `assumptions`)."""
    given = condition.raw.get("assumptions") or []
    if not given:
        return []
    return ["", "Assumed by the importer (not stated in the source; each is also a comment in "
            "the imported YAML):", ""] + [f"- {for_markdown(item)}" for item in given]

