"""A seeded corpus of generated conditions for solver-vs-oracle tests (no randomness at run time)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/NAME.py as a module (the fuzzers: the tests run samples of them)."""
    if f"paraplan_{name}" in sys.modules:
        return sys.modules[f"paraplan_{name}"]
    spec = importlib.util.spec_from_file_location(f"paraplan_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module

CARD_MODELS = ["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen3-30b-a3b", "gpt-oss-120b"]
GPUS = ["h100-sxm-80gb", "a100-sxm-80gb", "l40s", "h200-sxm-141gb", "h20", "mi300x"]


def tiny_model(rng: random.Random) -> dict[str, Any]:
    """A small inline model with uneven layer kinds (dense-first + MoE, windows, MLA)."""
    layers = rng.choice([4, 6, 7, 9, 12])
    heads = rng.choice([8, 16])
    card: dict[str, Any] = {
        "name": f"tiny-{layers}",
        "num_hidden_layers": layers,
        "hidden_size": rng.choice([1024, 2048, 4096]),
        "num_attention_heads": heads,
        "num_key_value_heads": rng.choice([2, 4, heads]),
        "intermediate_size": rng.choice([4096, 8192, 16384]),
        "vocab_size": rng.choice([32000, 128000]),
    }
    kind = rng.choice(["dense", "moe", "moe-dense-first", "window"])
    if kind.startswith("moe"):
        card |= {"num_experts": rng.choice([8, 16]), "num_experts_per_tok": 2,
                 "moe_intermediate_size": rng.choice([1024, 2048])}
        if kind == "moe-dense-first":
            card["first_k_dense_layers"] = rng.randint(1, layers - 1)
    if kind == "window":
        card |= {"sliding_window": 512, "sliding_window_every": 2}
    return card


def generate(n: int = 36, seed: int = 20261128) -> list[dict[str, Any]]:
    """Static batching (serving.mode: static): the corpus of the first planner, unchanged."""
    return [data | {"serving": {"mode": "static"}} for data in _generate(n, seed)]


def generate_continuous(n: int = 24, seed: int = 20261130) -> list[dict[str, Any]]:
    """Continuous batching with small grids (a few utilizations and chunk budgets) so the oracle
    stays quick; SLOs at a random percentile."""
    rng = random.Random(seed)
    corpus = []
    for data in _generate(n, seed + 1):
        grid = [0.1, 0.25, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99]
        data["serving"] = {
            "mode": "continuous",
            "utilization": sorted(rng.sample(grid, rng.choice([1, 2, 3]))),
            "chunk_tokens": rng.choice([2048, 8192, [512, 4096]]),
        }
        data["name"] = data["name"].replace("corpus", "continuous")
        if "slo" in data:
            data["slo"]["percentile"] = rng.choice(["mean", "p50", "p90", "p99"])
        corpus.append(data)
    return corpus


def _generate(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    corpus = []
    for i in range(n):
        model: Any = tiny_model(rng) if i % 2 else rng.choice(CARD_MODELS)
        gpus_per_node = rng.choice([2, 4, 8])
        data: dict[str, Any] = {
            "name": f"corpus-{i}",
            "model": model,
            "precision": {"weights": rng.choice(["bf16", "fp8"]), "kv_cache": rng.choice(["bf16", "fp8"])},
            "hardware": {"gpu": rng.choice(GPUS), "num_nodes": rng.choice([1, 1, 2]),
                         "gpus_per_node": gpus_per_node},
            "workload": {"input_tokens": rng.choice([256, 1024, 4096]),
                         "output_tokens": rng.choice([64, 256, 1024])},
            "objective": {"latency_weight": rng.choice([0, 1, 3]),
                          "throughput_weight": rng.choice([1, 2])},
            "policy": {"use_all_gpus": rng.random() < 0.7},
        }
        if rng.random() < 0.35:  # force pipelines so uneven layer splits are exercised
            data["policy"]["pp"] = rng.choice([[2], [3], [2, 4], [4]])
            data["policy"]["use_all_gpus"] = False
        if rng.random() < 0.5:
            data["workload"]["batch_size"] = rng.choice([1, 4, 16, 64])
        else:
            data["workload"]["max_batch_size"] = rng.choice([8, 32, 128])
        slo: dict[str, float] = {}
        if rng.random() < 0.5:
            slo["ttft_ms"] = rng.choice([100, 1000, 10000])
        if rng.random() < 0.5:
            slo["tpot_ms"] = rng.choice([5, 20, 100])
        if slo:
            data["slo"] = slo
        corpus.append(data)
    return corpus


MIXED_GPUS = ["h100-sxm-80gb", "a100-sxm-80gb", "l40s", "h200-sxm-141gb"]


def generate_mixed(n: int = 16, seed: int = 20261216) -> list[dict[str, Any]]:
    """Mixed clusters (hardware.pools) small enough for the oracle: tiny models or a card model
    cut short, 2-3 pools of 1-4 GPUs, one or two chunk budgets and utilizations, sometimes SLOs."""
    rng = random.Random(seed)
    corpus = []
    for i in range(n):
        model: Any = tiny_model(rng)
        if i % 4 == 3:  # a real width with few layers: memory binds on the small cards
            model = {"name": "llama-8-layers", "num_hidden_layers": rng.choice([6, 8]),
                     "hidden_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 8,
                     "intermediate_size": 28672, "vocab_size": 128256}
        kinds = rng.sample(MIXED_GPUS, rng.choice([2, 2, 3]))
        pools = [{"gpu": g, "num_nodes": 1, "gpus_per_node": rng.choice([1, 2, 4])} for g in kinds]
        data: dict[str, Any] = {
            "name": f"mixed-{i}",
            "model": model,
            "precision": {"weights": rng.choice(["bf16", "fp8"]), "kv_cache": "fp8"},
            "hardware": {"pools": pools},
            "workload": {"input_tokens": rng.choice([256, 1024]),
                         "output_tokens": rng.choice([64, 256]),
                         "max_batch_size": rng.choice([4, 16, 64])},
            "serving": {"utilization": sorted(rng.sample([0.5, 0.8, 0.95], rng.choice([1, 2]))),
                        "chunk_tokens": rng.choice([2048, [1024, 4096]])},
        }
        if rng.random() < 0.5:
            data["hardware"]["inter_pool_gb_per_s"] = rng.choice([5, 50])
        if len(pools) == 3 and rng.random() < 0.5:
            data["hardware"]["max_pools_per_replica"] = 3
        if rng.random() < 0.4:
            data["policy"] = {"pp": rng.choice([[1, 2], [2, 3], [3]])}
        slo: dict[str, Any] = {}
        if rng.random() < 0.6:
            slo["ttft_ms"] = rng.choice([50, 300, 3000])
        if rng.random() < 0.6:
            slo["tpot_ms"] = rng.choice([5, 15, 60])
        if slo:
            data["slo"] = slo | {"percentile": rng.choice(["mean", "p90"])}
        corpus.append(data)
    return corpus
