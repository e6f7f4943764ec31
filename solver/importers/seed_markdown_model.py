"""The Model Configuration section of a seed markdown file: precision, dimensions, attention and
experts, as an inline model card; the stated parameter count is compared with the dimensions'."""

from __future__ import annotations

import re

from solver.errors import InputError
from solver.importers import labels
from solver.importers.common import Imported, as_int, numbers_in, origin, precision_of, quantity
from solver.importers.seed_markdown_sections import Line, SectionReader

DEFAULT_VOCAB = 32_000
DEFAULT_TOP_K = 2


def read_precision(imp: Imported, model_lines: list[Line]) -> str:
    """Read the model precision line first: it decides the compute precision of the GPU card."""
    src = imp.source
    line = next(
        (ln for ln in model_lines if labels.PRECISION.matches(ln.key)), None
    )
    if line is None:
        imp.assume("precision.weights", "bf16", "precision not stated")
        stated = "bf16"
    else:
        stated = precision_of(line.value, src, f'line {line.number} "{line.text}"')
        imp.put("precision.weights", stated, origin(src, line.number, line.text))
    if stated in ("fp32", "bf16", "fp16"):
        imp.put("precision.kv_cache", stated, "same as the weights")
        imp.put("precision.activations", stated, "same as the weights")
        return stated
    kv = stated if stated in ("fp8", "int8") else "fp8"
    imp.put("precision.kv_cache", kv, f"ASSUMED: {kv} KV cache with {stated} weights")
    imp.put("precision.activations", "bf16", "ASSUMED: bf16 activations and collectives")
    imp.assumptions.append(
        f"precision: {stated} weights, {kv} KV cache, bf16 activations/collectives "
        "(the source states one precision)"
    )
    return "bf16"


def read_model(imp: Imported, r: SectionReader, default_name: str) -> None:
    """The Model Configuration section as an inline card (its precision line is read_precision's)."""
    r.meaning(labels.PRECISION)
    src, m = imp.source, "model"
    name = r.meaning(labels.NAME)
    imp.put(
        f"{m}.name",
        name.value.strip() if name else default_name,
        r.origin(name) if name else "the file name (no name line)",
    )
    layers = r.meaning(labels.LAYERS)
    if layers is None:
        raise InputError(src, "Model Configuration", "no Layers line")
    found = numbers_in(layers.value)  # "94-layer, ... each layer has 128 experts": the first number
    if not found:
        raise InputError(src, r.where(layers), "no number of layers")
    num_layers = as_int(found[0], src, r.where(layers))
    imp.put(f"{m}.num_hidden_layers", num_layers, r.origin(layers))
    hidden = r.meaning(labels.HIDDEN)
    if hidden is None:
        raise InputError(src, "Model Configuration", "no Token Dimension (hidden size) line")
    imp.put(f"{m}.hidden_size", r.integer(hidden), r.origin(hidden))
    _attention(imp, r, layers)
    experts = _experts(imp, r, layers)
    _vocabulary_and_size(imp, r)
    imp.data[m]["source"] = f"imported from {src.rsplit('/', 1)[-1]}"
    if not experts and imp.get(f"{m}.intermediate_size") is None:
        raise InputError(
            src,
            r.where(layers),
            "a dense model needs an FFN hidden size line "
            "('FFN hidden size' or 'Intermediate size')",
        )
    r.finish()


def _vocabulary_and_size(imp: Imported, r: SectionReader) -> None:
    """The vocabulary (assumed when absent) and the stated parameter count, in billions."""
    src, m = imp.source, "model"
    vocab = r.meaning(labels.VOCAB)
    if vocab is not None:
        imp.put(f"{m}.vocab_size", r.integer(vocab), r.origin(vocab))
    else:
        imp.assume(
            f"{m}.vocab_size",
            DEFAULT_VOCAB,
            "vocabulary not stated (Llama-2/Mixtral size); affects only the embedding and LM head",
        )
    imp.put(f"{m}.tie_word_embeddings", False, "ASSUMED: separate embedding and LM head")
    weights = r.meaning(labels.PARAMS)
    if weights is not None:
        billions = quantity(
            weights.value,
            {"b": 1.0, "m": 1e-3, "t": 1000.0},
            src,
            r.where(weights),
            default_unit="b",
        )
        imp.put(f"{m}.published_params_b", billions, r.origin(weights))


def _attention(imp: Imported, r: SectionReader, layers: Line) -> None:
    src, m = imp.source, "model"
    kv = r.meaning(labels.KV_HEADS)  # first: "KV heads" also names heads
    att = r.meaning(labels.ATTENTION)
    if att is None:
        raise InputError(
            src, "Model Configuration", "no attention line (number of heads and head dimension)"
        )
    text = att.value.lower()
    heads = re.search(r"(?:number of )?heads?\s*(?:is|=|:)\s*(\d+)", text)
    dim = re.search(
        r"dimension of each heads?\s*(?:is|=|:)\s*(\d+)|head.?dim\w*\s*(?:is|=|:)\s*(\d+)", text
    )
    if heads and dim:
        n_heads, head_dim = int(heads.group(1)), int(dim.group(1) or dim.group(2))
    else:
        found = numbers_in(att.value)
        if len(found) != 2:
            raise InputError(
                src, r.where(att), "expected the number of heads and the dimension of each head"
            )
        n_heads, head_dim = (as_int(v, src, r.where(att)) for v in found)
    imp.put(f"{m}.num_attention_heads", n_heads, r.origin(att))
    imp.put(f"{m}.head_dim", head_dim, r.origin(att))
    gqa = "gqa" in layers.value.lower() or "gqa" in att.key or "group" in layers.value.lower()
    if kv is not None:
        imp.put(f"{m}.num_key_value_heads", r.integer(kv), r.origin(kv))
    elif gqa:
        raise InputError(
            src,
            r.where(layers),
            "GQA attention but no 'kv heads' line gives the number of key/value heads",
        )
    else:
        imp.put(
            f"{m}.num_key_value_heads",
            n_heads,
            f"{origin(src, layers.number, layers.text)} -> multi-head attention: one KV head "
            "per head",
        )


def _experts(imp: Imported, r: SectionReader, layers: Line) -> bool:
    src, m = imp.source, "model"
    count = re.search(r"(\d+)\s+(?:routed\s+)?experts", layers.value.lower())
    line = r.meaning(labels.EXPERTS)
    if line is not None:
        imp.put(f"{m}.num_experts", r.integer(line), r.origin(line))
    elif count:
        imp.put(f"{m}.num_experts", int(count.group(1)), origin(src, layers.number, layers.text))
    moe_hidden = r.meaning(labels.MOE_WIDTH)
    ffn = r.meaning(labels.FFN_WIDTH)
    if ffn is not None:
        imp.put(f"{m}.intermediate_size", r.integer(ffn), r.origin(ffn))
    is_moe = imp.get(f"{m}.num_experts") is not None
    if not is_moe:
        if moe_hidden is not None:
            raise InputError(
                src, r.where(moe_hidden), "an MoE hidden size but no number of experts"
            )
        return False
    if moe_hidden is None:
        raise InputError(src, r.where(layers), "an MoE model needs a 'Hidden size of MOE' line")
    imp.put(f"{m}.moe_intermediate_size", r.integer(moe_hidden), r.origin(moe_hidden))
    top_k = r.meaning(labels.TOP_K)
    if top_k is not None:
        imp.put(f"{m}.num_experts_per_tok", r.integer(top_k), r.origin(top_k))
    else:
        imp.assume(
            f"{m}.num_experts_per_tok",
            DEFAULT_TOP_K,
            "top-k gate not stated; 2 experts per token (Mixtral/GShard default)",
        )
    shared = r.meaning(labels.SHARED_EXPERTS)
    if shared is not None:
        imp.put(f"{m}.num_shared_experts", r.integer(shared), r.origin(shared))
    dense = r.meaning(labels.DENSE_LAYERS)
    if dense is not None:
        imp.put(f"{m}.first_k_dense_layers", r.integer(dense), r.origin(dense))
    return True


def check_params(imp: Imported) -> None:
    """Compare the stated parameter count with the one the dimensions give (a reviewer's check)."""
    from pydantic import ValidationError

    from solver.inputs.cards import ModelCard
    from solver.physics.architecture import Architecture

    stated = imp.get("model.published_params_b")
    try:
        card = ModelCard.model_validate(imp.data["model"])
    except ValidationError:
        return  # build_condition reports it with key paths
    computed = Architecture(card).total_params / 1e9
    if stated is None:
        return
    if abs(computed - stated) > 0.15 * stated:
        imp.assumptions.append(
            f"the stated {stated:g} B parameters do not match the {computed:.2f} B the stated "
            "dimensions give; the dimensions are used"
        )
