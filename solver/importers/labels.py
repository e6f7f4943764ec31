"""Field labels by meaning, for condition files written by people (seed markdown and its kin).

A label is matched by the concepts its words carry, not by its exact wording: "Hidden size of FFN",
"FFN hidden size", "Intermediate size" and "MLP dimension" all name the dense FFN width; "GPUs per
node", "Cards in each server" and "Accelerators/node" all name the GPUs of a node. A `Meaning` is
the concepts a label must carry (every group of `all_of`) and the ones that would make it a
different field (`none_of`); CONCEPTS lists each concept's keywords (word stems, synonyms, units).
Labels are normalized first: lower case, every run of other characters one space ("Top-K" ->
"top k", "d_model" -> "d model", "key/value" -> "key value").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONCEPTS: dict[str, str] = {
    "gpu": r"gpus?|npus?|xpus?|cards?|accelerators?|devices?",
    "node": r"nodes?|servers?|machines?|hosts?",
    "per": r"per|each|every",
    "compute": r"comput\w*|t?flops?|t?flop s|pflops?|tera ?flops?|peta ?flops?|peak performance",
    "utilization": r"utili[sz]ation|utili[sz]ed|efficiency|mfu|mbu|achieved fraction",
    "memory": r"memory|mem|vram|hbm\w*|dram|gddr\w*|video memory|device memory",
    "bandwidth": r"bandwidth|bw|tb s|tbps|mbu",
    "intra": r"intra ?node|nvlink|nvswitch|hccs|scale ?up|within (a |one )?node|xgmi|"
             r"infinity fabric|inside (a |one )?node",
    "inter": r"inter ?node|network|rdma|infiniband|ib|roce|scale ?out|between nodes|nics?|"
             r"ethernet|across nodes",
    "layer": r"layers?|depth|transformer blocks?|decoder blocks?",
    "hidden": r"hidden|d ?model|token dim\w*|dim\w* of (each |a |the )?tokens?|model dim\w*|"
              r"embedding dim\w*|embedding size|model width|residual (stream|width)",
    "ffn": r"ffn|mlp|feed ?forward|intermediate",
    "expert": r"experts?|moe|mixture of experts",
    "attention": r"attention|mha|gqa|mqa|heads?",
    "kv": r"kv|key value|key and value|k v|kv heads",
    "topk": r"top ?k|topk|experts per tok\w*|activated experts|active experts|routed per token|"
            r"k gate|gate k|selected experts",
    "shared": r"shared",
    "dense": r"dense",
    "vocab": r"vocab\w*",
    "params": r"weights|parameters?|params|model size|parameter count",
    "precision": r"precision|dtype|data ?type|quantization|number format|numerics",
    "name": r"name|model id|identifier|^model$",
    "batch": r"batch\w*|concurren\w*",
    "input": r"input|prompt|in|isl|prefill",
    "output": r"output|out|osl|generat\w*|decode|completion|new tokens",
    "length": r"sequence|seq|length|len|tokens?|context",
    "ttft": r"ttft|first token|time to first",
    "tpot": r"tpot|per output token|inter ?token|itl|time per (output )?token|tbt|between tokens",
    "e2e": r"e2e|end to end|total latency|request latency",
    "throughput": r"throughput|tokens per second|tps",
}
_COMPILED = {name: re.compile(rf"\b(?:{pattern})\b") for name, pattern in CONCEPTS.items()}


def normalize(label: str) -> str:
    """Lower case, every run of other characters one space: "Top-K Gate:" -> "top k gate"."""
    return " ".join(re.findall(r"[a-z0-9]+", label.lower()))


def concepts_of(label: str) -> set[str]:
    """The concepts a (normalized) label carries."""
    return {name for name, pattern in _COMPILED.items() if pattern.search(label)}


@dataclass(frozen=True)
class Meaning:
    """What a label must mean: every group of `all_of` (any concept of a group) and none of
    `none_of`."""

    all_of: tuple[tuple[str, ...], ...]
    none_of: tuple[str, ...] = ()

    def matches(self, label: str) -> bool:
        found = concepts_of(normalize(label))
        return (all(any(c in found for c in group) for group in self.all_of)
                and not any(c in found for c in self.none_of))


def meaning(*all_of: str | tuple[str, ...], none_of: tuple[str, ...] = ()) -> Meaning:
    return Meaning(tuple((g,) if isinstance(g, str) else g for g in all_of), none_of)


_NOT_A_COUNT = ("compute", "memory", "bandwidth", "utilization", "intra", "inter", "per")

# ---- Environment ---------------------------------------------------------------------------------
GPU_COUNT = meaning("gpu", none_of=(*_NOT_A_COUNT, "node"))
NODE_COUNT = meaning("node", none_of=("gpu", "per", "intra", "inter", "bandwidth", "memory"))
GPUS_PER_NODE = meaning("gpu", "node", none_of=("compute", "memory", "bandwidth", "utilization",
                                                "intra", "inter"))
COMPUTE = meaning("compute", none_of=("utilization",))
MEMORY_CAPACITY = meaning("memory", none_of=("bandwidth", "utilization", "intra", "inter"))
MEMORY_BANDWIDTH = meaning("bandwidth", none_of=("utilization", "intra", "inter", "node"))
MFU = meaning("utilization", none_of=("bandwidth", "memory"))
MBU = meaning("utilization", ("bandwidth", "memory"))
INTRA_NODE = meaning("intra")
INTER_NODE = meaning("inter", none_of=("intra",))

# ---- Model configuration -------------------------------------------------------------------------
NAME = meaning("name")
PRECISION = meaning("precision")
LAYERS = meaning("layer", none_of=("dense", "hidden", "ffn", "expert", "attention", "vocab"))
HIDDEN = meaning("hidden", none_of=("ffn", "expert", "attention", "kv"))
ATTENTION = meaning("attention", none_of=("kv", "expert", "hidden"))
KV_HEADS = meaning("kv")
EXPERTS = meaning("expert", none_of=("hidden", "ffn", "topk", "shared", "dense"))
MOE_WIDTH = meaning("expert", ("hidden", "ffn"), none_of=("shared",))
FFN_WIDTH = meaning("ffn", none_of=("expert",))
TOP_K = meaning("topk")
SHARED_EXPERTS = meaning("shared")
DENSE_LAYERS = meaning("dense", none_of=("ffn", "hidden"))
VOCAB = meaning("vocab")
PARAMS = meaning("params", none_of=("precision",))

# ---- Input data and requirements -----------------------------------------------------------------
BATCH = meaning("batch")
INPUT_LENGTH = meaning("input", none_of=("output", "batch"))
OUTPUT_LENGTH = meaning("output", none_of=("input", "batch", "tpot", "throughput"))
LENGTH_RANGE = meaning("length", none_of=("input", "output", "batch", "ttft", "tpot"))
TTFT = meaning("ttft")
TPOT = meaning("tpot")
E2E = meaning("e2e")
THROUGHPUT = meaning("throughput")
