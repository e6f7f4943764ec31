"""A Hugging Face `config.json` as a paraplan model card.

Field names differ by family; each is mapped to the card's (Hugging Face Llama-style) names:

    Mixtral, gpt-oss   num_local_experts -> num_experts; intermediate_size is the expert width
    Qwen2/3-MoE        num_experts, moe_intermediate_size, decoder_sparse_step, mlp_only_layers,
                       shared_expert_intermediate_size (-> num_shared_experts)
    DeepSeek-V2/V3     n_routed_experts, n_shared_experts, first_k_dense_replace, moe_layer_freq,
                       MLA ranks (q_lora_rank, kv_lora_rank, qk_*_head_dim, v_head_dim)
    gpt-oss            experts_per_token, layer_types (sliding / full attention pattern)

Fields with no effect on the cost model (norm epsilons, RoPE settings, token ids, ...) are ignored
and listed in the result's assumptions, so nothing is dropped without a word.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from solver.errors import InputError
from solver.importers.common import Imported, precision_of
from solver.importers.source import Format, Source
from solver.inputs.cards import ModelCard
from solver.inputs.loading import validation_error

# card field -> config.json names, first present wins
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "hidden_size": ("hidden_size", "d_model", "n_embd"),
    "num_attention_heads": ("num_attention_heads", "n_head", "n_heads", "num_heads"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "n_kv_heads"),
    "head_dim": ("head_dim",),
    "intermediate_size": ("intermediate_size", "ffn_dim", "n_inner"),
    "vocab_size": ("vocab_size",),
    "tie_word_embeddings": ("tie_word_embeddings",),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
    "num_experts": ("num_local_experts", "n_routed_experts", "num_experts"),
    "num_experts_per_tok": ("num_experts_per_tok", "experts_per_token", "moe_topk"),
    "moe_intermediate_size": ("moe_intermediate_size",),
    "num_shared_experts": ("n_shared_experts", "num_shared_experts"),
    "first_k_dense_layers": ("first_k_dense_replace",),
    "q_lora_rank": ("q_lora_rank",),
    "kv_lora_rank": ("kv_lora_rank",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "v_head_dim": ("v_head_dim",),
}

# read by the mapping itself (layer patterns, precision, naming): not "ignored"
STRUCTURAL = {
    "architectures",
    "model_type",
    "torch_dtype",
    "dtype",
    "quantization_config",
    "use_sliding_window",
    "sliding_window",
    "layer_types",
    "decoder_sparse_step",
    "mlp_only_layers",
    "moe_layer_freq",
    "shared_expert_intermediate_size",
    "_name_or_path",
    "name_or_path",
    "model_name",
    "text_config",
    "max_window_layers",
}

QUANT_METHODS = {
    "fp8": "fp8",
    "mxfp4": "fp4",
    "nvfp4": "fp4",
    "modelopt_fp4": "fp4",
    "fbgemm_fp8": "fp8",
}


def _where(source: str, key: str, value: Any) -> str:
    shown = (
        repr(value) if not isinstance(value, list) or len(value) <= 6 else f"[{len(value)} items]"
    )
    return f'{source.rsplit("/", 1)[-1]}: "{key}": {shown}'


def _first(data: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        if data.get(name) is not None:
            return name, data[name]
    return None


def model_from_hf(
    data: dict[str, Any], source: str, default_name: str, prefix: str = ""
) -> tuple[Imported, str | None]:
    """Map a config.json mapping to a card. Returns the card (kind "model") and the weight
    precision its quantization_config / torch_dtype states (None when it states none)."""
    if "num_hidden_layers" not in data and isinstance(data.get("text_config"), dict):
        data, prefix = data["text_config"], f"{prefix}text_config."
    outer = data
    imp = Imported(source=source, kind="model")
    name = _first(data, ("_name_or_path", "name_or_path", "model_name"))
    imp.put(
        "name",
        str(name[1]).rstrip("/").rsplit("/", 1)[-1] if name else default_name,
        _where(source, name[0], name[1]) if name else "the file's folder name",
    )
    used: set[str] = set()
    for field, names in FIELD_NAMES.items():
        found = _first(data, names)
        if found is not None:
            imp.put(field, found[1], _where(source, prefix + found[0], found[1]))
            used.add(found[0])
    _moe(imp, data, source, prefix)
    _windows(imp, data, source, prefix)
    precision = _precision(imp, data, source, prefix)
    imp.put("source", f"imported from {source}", "the importer")
    ignored = sorted(
        k
        for k in data
        if k not in used
        and k not in STRUCTURAL
        and not any(k in names for names in FIELD_NAMES.values())
    )
    if ignored:
        imp.assumptions.append(
            f"config fields with no effect on the cost model, ignored: {', '.join(ignored)}"
        )
    card = _validate(imp)
    if name is None:
        _name_by_architecture(imp, card, data.get("model_type") or outer.get("model_type"),
                              outer.get("architectures"), default_name)
    return imp, precision


def _name_by_architecture(imp: Imported, card: ModelCard, model_type: Any, architectures: Any,
                          default_name: str) -> None:
    """A config.json that states no name is named by what it describes, `model_type` and its
    parameter count (`mixtral-46.7b`), not by the folder it was found in (a snapshot hash, `hf/`)."""
    from solver.physics.architecture import Architecture

    kind = str(model_type) if isinstance(model_type, str) and model_type else ""
    if not kind and isinstance(architectures, list) and architectures:
        kind = re.sub(r"For(CausalLM|ConditionalGeneration)$", "", str(architectures[0])).lower()
    if not kind:
        return  # keep default_name: nothing in the config says what it is
    billions = Architecture(card).total_params / 1e9
    imp.put("name", f"{kind}-{billions:.3g}b".replace("_", "-"),
            f"{imp.source} states no name: its model_type and {billions:.3g} B parameters "
            f"(found in the folder '{default_name}')")


def _moe(imp: Imported, data: dict[str, Any], source: str, prefix: str) -> None:
    experts = imp.get("num_experts")
    if experts is None or experts <= 1:
        _drop_moe(imp, experts, source)
        return
    _expert_width(imp, source, prefix)
    _moe_layers(imp, data, source, prefix)


def _drop_moe(imp: Imported, experts: int | None, source: str) -> None:
    """No experts, or one: a dense model (the MoE fields, if any, are dropped with a note)."""
    for field in ("num_experts", "num_experts_per_tok", "moe_intermediate_size",
                  "num_shared_experts", "first_k_dense_layers"):
        if field in imp.data:
            del imp.data[field]
            imp.origins.pop(field, None)
    if experts is not None:
        imp.read_only.append(f"{_where(source, 'experts', experts)}: one expert = a dense model")


def _expert_width(imp: Imported, source: str, prefix: str) -> None:
    if imp.get("moe_intermediate_size") is None:
        width = imp.get("intermediate_size")
        if width is None:
            raise InputError(
                source,
                f"{prefix}intermediate_size",
                "an MoE config needs the expert width "
                "(moe_intermediate_size, or intermediate_size for Mixtral/gpt-oss)",
            )
        imp.put(
            "moe_intermediate_size",
            width,
            _where(source, prefix + "intermediate_size", width)
            + " (the expert width in this family)",
        )
        if not imp.get("first_k_dense_layers"):
            del imp.data["intermediate_size"]


def _moe_layers(imp: Imported, data: dict[str, Any], source: str, prefix: str) -> None:
    """Which layers are MoE, and the shared-expert width (Qwen2-MoE names it separately)."""
    step = data.get("decoder_sparse_step", 1)
    if step != 1:
        raise InputError(
            source,
            f"{prefix}decoder_sparse_step",
            f"MoE every {step} layers cannot be "
            "expressed (paraplan supports dense-first then all-MoE layers)",
        )
    freq = data.get("moe_layer_freq", 1)
    if freq != 1:
        raise InputError(
            source, f"{prefix}moe_layer_freq", f"MoE every {freq} layers cannot be expressed"
        )
    dense = data.get("mlp_only_layers") or []
    if dense:
        if sorted(dense) != list(range(len(dense))):
            raise InputError(
                source,
                f"{prefix}mlp_only_layers",
                f"dense layers {dense} are not the first "
                "k layers; paraplan supports dense-first then all-MoE layers",
            )
        imp.put(
            "first_k_dense_layers", len(dense), _where(source, prefix + "mlp_only_layers", dense)
        )
    shared = data.get("shared_expert_intermediate_size")
    if shared:
        width = int(imp.get("moe_intermediate_size"))
        if shared % width:
            raise InputError(
                source,
                f"{prefix}shared_expert_intermediate_size",
                f"{shared} is not a multiple of the expert width {width}",
            )
        imp.put(
            "num_shared_experts",
            shared // width,
            _where(source, prefix + "shared_expert_intermediate_size", shared) + f" / {width}",
        )


def _windows(imp: Imported, data: dict[str, Any], source: str, prefix: str) -> None:
    window = data.get("sliding_window")
    types = data.get("layer_types")
    if data.get("use_sliding_window") is False or not window:
        if window:
            imp.read_only.append(
                f"{_where(source, prefix + 'sliding_window', window)}: unused "
                "(use_sliding_window is false)"
            )
        if types and any(t != "full_attention" for t in types):
            raise InputError(
                source, f"{prefix}layer_types", "windowed layers without a sliding_window size"
            )
        return
    imp.put("sliding_window", window, _where(source, prefix + "sliding_window", window))
    if not types:
        imp.put("sliding_window_every", 1, "every layer is windowed (no layer_types)")
        return
    windowed = [i for i, t in enumerate(types) if t == "sliding_attention"]
    unknown = sorted({t for t in types if t not in ("sliding_attention", "full_attention")})
    if unknown:
        raise InputError(source, f"{prefix}layer_types", f"unknown layer types {unknown}")
    for every in range(1, len(types) + 1):
        if windowed == [i for i in range(len(types)) if i % every == 0]:
            imp.put(
                "sliding_window_every",
                every,
                _where(source, prefix + "layer_types", types)
                + f" -> windowed when layer % {every} == 0",
            )
            return
    raise InputError(
        source,
        f"{prefix}layer_types",
        "the windowed layers do not follow 'every k-th layer "
        "from layer 0', the only pattern paraplan models",
    )


def _precision(imp: Imported, data: dict[str, Any], source: str, prefix: str) -> str | None:
    quant = data.get("quantization_config")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method", "")).lower()
        if method in QUANT_METHODS:
            found = QUANT_METHODS[method]
        elif quant.get("bits") in (4, 8):
            found = "int4" if quant["bits"] == 4 else "int8"
        else:
            imp.read_only.append(
                f"{_where(source, prefix + 'quantization_config', quant)}: method not "
                "recognized; weight precision taken from the condition"
            )
            return None
        imp.read_only.append(
            f"{_where(source, prefix + 'quantization_config.quant_method', method)}: "
            f"{found} weights"
        )
        return found
    dtype = data.get("torch_dtype") or data.get("dtype")
    if isinstance(dtype, str):
        return precision_of(dtype, source, f"{prefix}torch_dtype")
    return None


def _validate(imp: Imported) -> ModelCard:
    try:
        return ModelCard.model_validate(imp.data)
    except ValidationError as exc:
        raise validation_error(exc, imp.source, ModelCard) from None


def is_hf_config(data: dict[str, Any]) -> bool:
    return "architectures" in data or "model_type" in data


def recognizes(source: Source) -> bool:
    data = source.json
    return data is not None and is_hf_config(data)


def import_hf_config(source: Source) -> Imported:
    """A bare config.json as a model card (`paraplan import`); the precision it states goes to the
    notes, since a card has no precision (the condition's precision.weights sets it)."""
    card, precision = model_from_hf(source.content, str(source.path), source.default_name)
    if precision:
        card.read_only.append(
            f"weights precision stated by the config: {precision} (set it in the "
            "condition's precision.weights)"
        )
    return card


FORMAT = Format(
    name="hf-config",
    yields="model",
    recognizes=recognizes,
    read=import_hf_config,
    not_a_condition="a model config alone is not a condition (no hardware, workload "
    "or SLOs): name it in a condition (model: path/to/config.json) or run "
    "`paraplan import` on it for a model card",
)
