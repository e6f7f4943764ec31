"""Markdown condition files written by people (issue 15): labels are matched by meaning, counts
carry their node phrase, units and spacing vary. A generated corpus replaces one field's line of a
base file by each of at least five variants (label wording, units, spacing, bullet style); every
variant must import to exactly the condition the base file imports to.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from solver.importers.seed_markdown import import_markdown

ENVIRONMENT = {
    "gpus": [
        "GPUs: 32 GPUs, 8 per node.",
        "Number of GPUs: 32 (8 per node)",
        "GPU count: 4 nodes x 8 GPUs",
        "Total accelerators: 32 accelerators, 8 per server",
        "Cards: 32 cards in 4 servers",
        "NPUs: 8 NPUs x 4 nodes",
        ["GPUs per node: 8", "Nodes: 4"],
        ["Number of nodes: 4", "Cards in each server: 8"],
    ],
    "compute": [
        "Single-card computing power: 989TFlops.",
        "Compute per GPU: 989 TFLOPS",
        "Peak compute: 0.989 PFLOPS",
        "TFLOPS per card: 989",
        "Computing power (single card): 989 TFLOP/s",
        "GPU compute = 989 teraflops",
    ],
    "mfu": [
        "MFU utilization: 60%.",
        "MFU: 0.6",
        "Compute utilization: 60 %",
        "Model FLOPs utilization: 60%",
        "Compute efficiency: 0.60",
        "Achieved MFU = 60 percent",
    ],
    "hbm": [
        "VRAM Bandwidth: 3.35TBps.",
        "Memory bandwidth: 3.35 TB/s",
        "HBM BW: 3350 GB/s",
        "Bandwidth per GPU: 3.35 TB/s",
        "Single-card HBM bandwidth: 3.35TBps",
        "Device memory bandwidth = 3.35 TBps",
    ],
    "mbu": [
        "bandwidth utilization: 80%.",
        "MBU: 0.8",
        "Memory bandwidth utilization: 80%",
        "HBM utilization: 0.80",
        "Bandwidth efficiency: 80 %",
        "Memory bandwidth utilisation = 80 percent",
    ],
    "memory": [
        "Single-card video memory capacity: 80GB.",
        "Memory: 80 GB",
        "GPU memory: 80GB",
        "VRAM per card: 80 GB",
        "HBM capacity: 0.08 TB",
        "Memory per GPU = 80 G",
    ],
    "intra": [
        "Intra-node bandwidth: 450 GB/s",
        "NVLink bandwidth: 450 GB/s",
        "Intra node link: 0.45 TB/s",
        "Scale-up bandwidth: 450GB/s",
        "GPU-to-GPU (NVLink): 3600 Gbit/s",
        "Bandwidth within a node = 450 GB/s",
    ],
    "inter": [
        "Inter-node bandwidth: 50 GB/s",
        "Network bandwidth: 50 GB/s",
        "RDMA bandwidth per GPU: 400 Gbit/s",
        "Scale-out bandwidth: 50GB/s",
        "InfiniBand: 0.05 TB/s",
        "Bandwidth between nodes = 50 GB/s",
    ],
}
DENSE_MODEL = {
    "name": [
        "name: Dense-70B",
        "Model name: Dense-70B",
        "Model: Dense-70B",
        "Model ID: Dense-70B",
        "Model identifier: Dense-70B",
        "Name = Dense-70B",
    ],
    "weights": [
        "Weights: 70B",
        "Parameters: 70B",
        "Params: 70 B",
        "Model size: 70B",
        "Parameter count: 70000M",
        "Total parameters = 0.07T",
    ],
    "layers": [
        "Layers: 80",
        "Number of layers: 80",
        "Num layers: 80",
        "Layer count: 80",
        "Depth: 80 layers",
        "Transformer blocks = 80",
    ],
    "precision": [
        "Precision: BF16",
        "dtype: bfloat16",
        "Data type: BF16",
        "Weight precision: bf16",
        "Numerics = BF16",
        "Model precision: bfloat16",
    ],
    "hidden": [
        "Token Dimension: The dimension of each token is 8192",
        "Hidden size: 8192",
        "d_model: 8192",
        "Model dimension: 8192",
        "Embedding dimension = 8192",
        "Hidden dim: 8192",
    ],
    "attention": [
        "Dimension of Attention: The number of heads is 64 and the dimension of each heads is 128",
        "Attention: 64 heads, head dim 128",
        "MHA: 64 x 128",
        "Heads: 64 heads x 128 dims",
        "Attention heads = 64, head_dim = 128",
        "Number of attention heads: 64 (dimension 128)",
    ],
    "kv": [
        "GQA kv heads: 8",
        "KV heads: 8",
        "Key/value heads: 8",
        "Number of KV heads = 8",
        "num_key_value_heads: 8",
        "KV head count: 8",
    ],
    "ffn": [
        "Hidden size of FFN: 28672",
        "FFN hidden size: 28672",
        "Intermediate size: 28672",
        "MLP dimension: 28672",
        "Feed-forward size = 28672",
        "FFN width: 28672",
    ],
    "vocab": [
        "Vocabulary size: 128256",
        "Vocab: 128256",
        "Vocab size: 128,256",
        "Vocabulary = 128256",
        "vocab_size: 128256",
        "Size of the vocabulary: 128256",
    ],
}
MOE_MODEL = {
    "experts": [
        "Experts: 128",
        "Number of experts: 128",
        "Routed experts: 128",
        "Expert count: 128",
        "MoE experts = 128",
        "Experts per layer: 128",
    ],
    "moe": [
        "Hidden size of MOE: 1536",
        "MoE intermediate size: 1536",
        "Expert FFN hidden size: 1536",
        "Expert hidden size: 1536",
        "moe_intermediate_size = 1536",
        "Intermediate size of each expert: 1536",
    ],
    "topk": [
        "Top-K Gate: 8",
        "Top-k: 8",
        "Experts per token: 8",
        "Activated experts: 8",
        "num_experts_per_tok: 8",
        "Selected experts per token = 8",
    ],
    "shared": [
        "Shared experts: 1",
        "Shared expert: 1",
        "Number of shared experts: 1",
        "Shared experts count = 1",
        "n_shared_experts: 1",
        "Always-on shared experts: 1",
    ],
    "dense": [
        "Dense layers: 3",
        "First k dense layers: 3",
        "first_k_dense_replace: 3",
        "Number of dense layers = 3",
        "Leading dense layers: 3",
    ],
}
INPUT = {
    "batch": [
        "Batch size: 128",
        "Batch: 128",
        "Batch size (sequences): 128 sequences",
        "Batch size: Each batch consists of 128 sequences.",
        "Concurrent requests: 128",
        "Sequences per batch = 128",
    ],
    "in": [
        "Sequence In: 2048",
        "Input length: 2048",
        "Prompt tokens: 2048",
        "ISL: 2048",
        "Input sequence length = 2048 tokens",
        "Prompt length: 2,048",
    ],
    "out": [
        "Sequence Out: 512",
        "Output length: 512",
        "Generated tokens: 512",
        "OSL: 512",
        "Output sequence length = 512 tokens",
        "Max new tokens: 512",
    ],
    "range": [
        "Sequence Length: 128 ~ 10240 tokens",
        "Context length: [128, 10240]",
        "Seq len: 128-10240",
        "Sequence lengths: 128 to 10240 tokens",
        "Length range = 128 ~ 10240",
    ],
}
REQUIREMENTS = {
    "ttft": [
        "The time to the first token(TTFT): 10s",
        "TTFT: 10000 ms",
        "Time to first token: 10 s",
        "First-token latency = 10 seconds",
        "TTFT SLO: 10 sec",
        "Max time to first token: 10000ms",
    ],
    "tpot": [
        "Time per output token(TPOT): 50ms",
        "TPOT: 50 ms",
        "Inter-token latency: 0.05 s",
        "ITL: 50ms",
        "Time per token = 50 milliseconds",
        "TPOT SLO: 50 ms",
    ],
    "e2e": [
        "End-to-end latency: 30 s",
        "E2E: 30000 ms",
        "End to end latency = 30 seconds",
        "Total latency: 30s",
        "Request latency: 30 s",
        "E2E latency SLO: 30 sec",
    ],
    "throughput": [
        "Throughput per GPU: 100tokens/ms",
        "Throughput: 100000 tokens/s per GPU",
        "Per-GPU throughput: 100 tokens/ms",
        "Tokens per second per GPU: 100000",
        "TPS per GPU = 100000/s",
        "Throughput per card: 100 token/ms",
    ],
}
SECTIONS = (
    ("Environment Condition", ENVIRONMENT),
    ("Model Configuration", None),
    ("Input Data", INPUT),
    ("Basic Performance Requirements", REQUIREMENTS),
)
BULLETS = (
    "* **{label}**: {value}",
    "- **{label}**: {value}",
    "*   **{label}** :{value}",
    "* **{label}:** {value}",
    "* {label}: {value}",
    "+ **{label}** = {value}",
)


def _bullet(line: str, style: int = 0) -> str:
    label, value = line.split(":", 1) if ":" in line else line.split("=", 1)
    return BULLETS[style].format(label=label.strip(), value=value.strip())


def _document(model: dict[str, list], choice: dict[str, int], style: int = 0) -> str:
    parts: list[str] = []
    for title, fields in SECTIONS:
        fields = model if fields is None else fields
        parts += ["", f"## **{title}**", ""]
        for field, variants in fields.items():
            chosen = variants[choice.get(field, 0)]
            lines = chosen if isinstance(chosen, list) else [chosen]
            parts += [_bullet(line, style if field in choice else 0) for line in lines]
    return "\n".join(parts) + "\n"


MODELS = {"dense": DENSE_MODEL, "moe": {**DENSE_MODEL, "ffn": DENSE_MODEL["ffn"], **MOE_MODEL}}


def _cases() -> Iterator[tuple[str, str, int]]:
    for model_name, model in MODELS.items():
        fields = {**ENVIRONMENT, **model, **INPUT, **REQUIREMENTS}
        for field, variants in fields.items():
            if model_name == "moe" and field not in MOE_MODEL:
                continue  # the dense document covers every shared field
            for k in range(1, len(variants)):
                yield model_name, field, k


def _import(text: str) -> dict:
    return import_markdown(text, "people.md", "people").data


def test_every_field_has_at_least_five_variants() -> None:
    for fields in (ENVIRONMENT, DENSE_MODEL, MOE_MODEL, INPUT, REQUIREMENTS):
        for field, variants in fields.items():
            assert len(variants) >= 5, field


@pytest.fixture(scope="module")
def baselines() -> dict[str, dict]:
    return {name: _import(_document(model, {})) for name, model in MODELS.items()}


@pytest.mark.parametrize("model_name, field, variant", list(_cases()))
def test_a_variant_imports_to_the_same_condition(
    model_name: str, field: str, variant: int, baselines
) -> None:
    model = MODELS[model_name]
    text = _document(model, {field: variant}, style=variant % len(BULLETS))
    assert _import(text) == baselines[model_name], text


def test_the_base_documents_import_what_they_say(baselines) -> None:
    dense, moe = baselines["dense"], baselines["moe"]
    assert dense["hardware"]["num_nodes"] == 4 and dense["hardware"]["gpus_per_node"] == 8
    assert dense["model"]["intermediate_size"] == 28672 and "num_experts" not in dense["model"]
    assert dense["hardware"]["gpu"]["hbm_tb_per_s"] == 3.35 and dense["hardware"]["mfu"] == 0.6
    assert dense["slo"] == {"ttft_ms": 10000.0, "tpot_ms": 50.0, "e2e_latency_ms": 30000.0}
    assert moe["model"]["num_experts"] == 128 and moe["model"]["moe_intermediate_size"] == 1536
    assert moe["model"]["num_experts_per_tok"] == 8 and moe["model"]["num_shared_experts"] == 1
    assert moe["model"]["first_k_dense_layers"] == 3


@pytest.mark.parametrize(
    "line",
    [
        "* **Hidden size of FFN**: 28672",  # a dense model's FFN line, sibling of "Hidden size of MOE"
        "* **GPUs**: 32 GPUs, 8 per node.",  # a count with its per-node phrase
    ],
)
def test_the_lines_the_issue_quotes_are_read(line: str) -> None:
    text = _document(DENSE_MODEL, {})
    assert line in text
    data = _import(text)
    assert data["model"]["intermediate_size"] == 28672 and data["hardware"]["num_nodes"] == 4
