"""Paper deployment configs (tests/assets/seed-formats/paper-plans) as plans for `check`.

A file holds `baseline_method` and `proposed_method`; `FILE.json#baseline_method` picks one (the
default is proposed_method, the paper's subject). Each method's `parameters` give the degrees
(tensor/pipeline/expert/sequence/data parallelism), the batch and the paper's model dimensions; the
layer split comes from
`parallel_strategies.pipeline_parallelism.parameters.layers_per_stage` or from the device mapping.
What has no paraplan equivalent is an InputError naming the JSON key.
"""

from __future__ import annotations

from typing import Any

from solver.errors import InputError
from solver.importers.common import Imported
from solver.importers.source import Format, Source
from solver.inputs.cards import ModelCard

METHODS = ("proposed_method", "baseline_method")
DEGREE_KEYS = {
    "tensor_parallelism": "tp",
    "pipeline_parallelism": "pp",
    "data_parallelism": "dp",
    "expert_parallelism": "ep",
    "sequence_parallelism": "sp",
    "expert_tensor_parallelism": "etp",
    "attention_data_parallelism": "attn_dp",
}
# parameters that describe the model, compared with the condition's card
MODEL_KEYS = {
    "heads": "num_attention_heads",
    "head_dimension": "head_dim",
    "total_layers": "num_hidden_layers",
    "experts_per_layer": "num_experts",
    "mlp_hidden_size": None,
    "precision": None,
}
# parameters with no paraplan degree: the reason they cannot be graded
UNMAPPABLE = {
    "dimension_partitions": "splitting each attention head's dimension across GPUs (Helix-style "
    "two-level partitioning) is not a paraplan degree: tp splits whole heads",
    "head_partitions": "head-and-dimension partitioning is not a paraplan degree "
    "(tp splits whole heads)",
}
# parameters that change nothing paraplan models: graded without them, with a note
NOTED = {
    "cache_capacity": "on-chip cache fitting (SRAM/L2) is not modelled; paraplan checks HBM "
    "capacity",
    "partitioning_algorithm": "the partitioning algorithm is not graded, only the split it "
    "produced",
    "ring_attention": "sp is modelled as ring attention (KV exchanged around the sp group)",
    "large_ep_threshold": "a tuning threshold, not a degree",
    "experts_per_gpu": "checked against num_experts / ep",
    "total_gpus": "checked against the degrees",
    "batch_size": "used as the plan's batch",
    "sequence_length": "symbolic; the condition's input_tokens is used",
    "m": "Helix m (head groups)",
    "n": "Helix n (dimension slices)",
    "total_partitions": "head x dimension partitions",
}


def is_paper_plan(data: dict[str, Any]) -> bool:
    return any(m in data for m in METHODS) and "paper" in data


def recognizes(source: Source) -> bool:
    data = source.json
    return data is not None and is_paper_plan(data)


def read_paper_plan(source: Source) -> Imported:
    """The plan of `source.method` (proposed_method by default), compared with `source.card` when
    it is read to grade it against a condition."""
    return import_paper_plan(source.content, str(source.path), source.method, source.card)


def import_paper_plan(
    data: dict[str, Any], source: str, method: str | None = None, card: ModelCard | None = None
) -> Imported:
    method = method or "proposed_method"
    if method not in data:
        raise InputError(
            source,
            method,
            f"no such method; this file has: {', '.join(k for k in data if k in METHODS)}",
        )
    block = data[method]
    params = block.get("parameters") if isinstance(block, dict) else None
    if not isinstance(params, dict):
        raise InputError(source, f"{method}.parameters", "missing: the method's degrees and batch")
    imp = Imported(source=f"{source}#{method}", kind="plan")
    where = f"{method}.parameters"
    for key, reason in UNMAPPABLE.items():
        if key in params:
            raise InputError(source, f"{where}.{key}", f"cannot be mapped: {reason}")
    for key, degree in DEGREE_KEYS.items():
        if key in params:
            imp.put(
                degree,
                _positive_int(params[key], source, f"{where}.{key}"),
                f'{source.rsplit("/", 1)[-1]}: "{where}.{key}": {params[key]}',
            )
    _pipeline_from_mapping(imp, block, source, method)
    if "batch_size" not in params:
        raise InputError(source, f"{where}.batch_size", "missing: a plan needs its batch")
    imp.put(
        "batch_size",
        _positive_int(params["batch_size"], source, f"{where}.batch_size"),
        f'"{where}.batch_size": {params["batch_size"]}',
    )
    _experts(imp, params, source, where)
    _fold(imp, params, source, where, card)
    _layers(imp, block, params, source, method, card)
    for key in params:
        if key in NOTED and key not in ("batch_size", "total_gpus", "experts_per_gpu"):
            imp.read_only.append(f"{where}.{key} = {params[key]!r}: {NOTED[key]}")
        elif (
            key not in NOTED
            and key not in DEGREE_KEYS
            and key not in MODEL_KEYS
            and key not in UNMAPPABLE
        ):
            imp.read_only.append(f"{where}.{key} = {params[key]!r}: not graded")
    _compare_model(imp, params, where, card)
    return imp


def _positive_int(value: Any, source: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(source, key, f"{value!r} is not a positive whole number")
    return value


def _pipeline_from_mapping(imp: Imported, block: dict[str, Any], source: str, method: str) -> None:
    """No pipeline degree given, but the device map puts distinct layers on distinct GPUs: a
    pipeline of that many stages (PP.json's cache-fitting partition: one layer per GPU)."""
    if "pp" in imp.data:
        return
    stages = _mapped_stages(block)
    if stages and len(stages) > 1:
        imp.put(
            "pp",
            len(stages),
            f"{method}.device_mapping: {len(stages)} entries with distinct layers",
        )


def _mapped_stages(block: dict[str, Any]) -> list[list[int]]:
    mapping = block.get("device_mapping")
    if not isinstance(mapping, dict):
        return []
    stages = [
        entry["layers"]
        for entry in mapping.values()
        if isinstance(entry, dict) and isinstance(entry.get("layers"), list)
    ]
    flat = [layer for s in stages for layer in s]
    if not stages or len(flat) != len(set(flat)) or not all(isinstance(x, int) for x in flat):
        return []
    return stages


def _experts(imp: Imported, params: dict[str, Any], source: str, where: str) -> None:
    ep = imp.get("ep")
    experts = params.get("experts_per_layer")
    if ep is None or experts is None:
        return
    if ep > experts:
        raise InputError(
            source,
            f"{where}.expert_parallelism",
            f"cannot be mapped: {ep} GPUs for "
            f"{experts} experts per layer places experts of different layers on different "
            f"GPUs (one layer per group of {experts} GPUs), which is pipeline parallelism by "
            f"layer, not ep; the nearest paraplan plan is pp={max(1, ep // experts)}, "
            f"ep={experts}, attn_dp={experts} (write it as a short plan YAML)",
        )
    per_gpu = params.get("experts_per_gpu")
    if per_gpu is not None and per_gpu * ep != experts:
        imp.read_only.append(
            f"{where}.experts_per_gpu = {per_gpu}: {experts} experts / ep {ep} = "
            f"{experts / ep:g} per GPU per layer"
        )


def _fold(
    imp: Imported, params: dict[str, Any], source: str, where: str, card: ModelCard | None
) -> None:
    """Expert GPUs per stage must equal attention GPUs per stage: derive etp when the paper leaves
    the expert grid smaller than the stage (experts shared by several GPUs)."""
    d = imp.data
    stage = d.get("tp", 1) * d.get("attn_dp", 1) * d.get("sp", 1)
    ep = d.get("ep")
    if ep is not None and "etp" not in d and stage % ep == 0 and stage != ep:
        imp.put(
            "etp",
            stage // ep,
            f"derived: {stage} GPUs per stage / ep {ep} (each expert shared by "
            f"{stage // ep} GPUs: expert tensor parallelism)",
        )
    implied = d.get("dp", 1) * d.get("pp", 1) * stage
    total = params.get("total_gpus")
    if isinstance(total, int) and total != implied:
        if "dp" not in d and total % implied == 0:
            imp.put(
                "dp", total // implied, f"derived: total_gpus {total} / {implied} GPUs per replica"
            )
        else:
            imp.read_only.append(
                f"{where}.total_gpus = {total}, but the degrees use {implied} GPUs"
            )


def _layers(
    imp: Imported,
    block: dict[str, Any],
    params: dict[str, Any],
    source: str,
    method: str,
    card: ModelCard | None,
) -> None:
    pp = imp.get("pp", 1)
    if pp == 1:
        return
    sizes: list[int] | None = None
    origin = ""
    stages = _mapped_stages(block)
    if len(stages) == pp:
        sizes, origin = [len(s) for s in stages], f"{method}.device_mapping[*].layers"
    else:
        strategy = (block.get("parallel_strategies") or {}).get("pipeline_parallelism") or {}
        per = (strategy.get("parameters") or {}).get("layers_per_stage")
        if isinstance(per, int):
            sizes = [per] * pp
            origin = (
                f"{method}.parallel_strategies.pipeline_parallelism.parameters.layers_per_stage"
            )
    if sizes is None:
        return
    total = sum(sizes)
    if card is not None and total != card.num_hidden_layers:
        imp.read_only.append(
            f"{origin}: the paper splits {total} layers; the condition's model has "
            f"{card.num_hidden_layers}, so the split is balanced instead"
        )
        return
    imp.put("layers_per_stage", sizes, origin)


def _compare_model(
    imp: Imported, params: dict[str, Any], where: str, card: ModelCard | None
) -> None:
    if card is None:
        return
    for key, field in MODEL_KEYS.items():
        if key not in params or field is None:
            continue
        ours = getattr(card, field) if field != "head_dim" else card.attention_head_dim
        if ours != params[key]:
            imp.read_only.append(
                f"{where}.{key} = {params[key]}, but the condition's model has "
                f"{field} = {ours}: the paper's model differs from the condition's"
            )


FORMAT = Format(
    name="paper",
    yields="plan",
    recognizes=recognizes,
    read=read_paper_plan,
    plan=read_paper_plan,
    not_a_condition="a paper deployment config is a plan: grade it with "
    "`paraplan check CONDITION FILE.json[#baseline_method]`",
)
