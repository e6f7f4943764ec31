"""What every engine exporter needs to know of a plan (export.py): its degrees in engine terms, the
serving limits the launch lines carry, what no engine can express, and the precision flags vLLM and
SGLang share."""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.document.plan import Plan
from solver.document.serving import ServingBlock
from solver.inputs.condition import Condition
from solver.physics.continuous import CONTINUOUS, DECODE_ONLY

# Hugging Face repositories of the shipped model cards (the MODEL variable overrides them)
HF_REPOS = {
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B-Instruct",
    "llama-3.1-405b": "meta-llama/Llama-3.1-405B-Instruct",
    "llama-2-70b": "meta-llama/Llama-2-70b-chat-hf",
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mixtral-8x22b": "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "qwen3-30b-a3b": "Qwen/Qwen3-30B-A3B",
    "qwen3-235b-a22b": "Qwen/Qwen3-235B-A22B",
    "gpt-oss-120b": "openai/gpt-oss-120b",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
}
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass
class Launch:
    """One engine's server flags, environment, and what could not be expressed."""

    engine: str
    env: dict[str, str] = field(default_factory=dict)
    args: list[tuple[str, str | None]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def flag(self, name: str, value: object = None) -> None:
        self.args.append((name, None if value is None else str(value)))

    def words(self) -> list[str]:
        """The flags and their values, in order."""
        out: list[str] = []
        for name, value in self.args:
            out += [name] if value is None else [name, value]
        return out


def serving_limits(condition: Condition, plan: Plan) -> tuple[int, int]:
    """(concurrent sequences per replica, prefill chunk tokens per forward pass) for the engines'
    scheduler flags. THE ONE PLACE the serving model's numbers are read: a plan that carries the
    serving block (`plan.serving`: mode, max_num_seqs, chunk_tokens) sets both; until then the
    plan's batch and the condition's prefill chunk."""
    serving = getattr(plan, "serving", None)
    sequences = getattr(serving, "max_num_seqs", None) or plan.batch_size
    chunk = getattr(serving, "chunk_tokens", None) or condition.workload.prefill_chunk_tokens
    return int(sequences), int(chunk)


@dataclass(frozen=True)
class PlanFacts:
    """The plan in the terms every exporter needs."""

    tp: int
    pp: int
    dp: int
    ep: int
    etp: int
    attn_dp: int
    sp: int
    batch: int  # concurrent sequences per replica
    chunk_tokens: int  # prefill tokens per forward pass
    stage_gpus: int
    replica_gpus: int
    gpus_per_node: int
    layers_per_stage: list[int]
    model_repo: str | None
    moe: bool
    context_len: int

    @classmethod
    def of(cls, condition: Condition, plan: Plan) -> PlanFacts:
        sequences, chunk = serving_limits(condition, plan)
        return cls(
            **plan.parallelism.model_dump(),  # tp, pp, dp, ep, etp, attn_dp, sp
            batch=sequences,
            chunk_tokens=chunk,
            stage_gpus=plan.gpus.per_stage,
            replica_gpus=plan.gpus.per_replica,
            gpus_per_node=condition.cluster.gpus_per_node,
            layers_per_stage=[s.num_layers for s in plan.stages],
            model_repo=HF_REPOS.get(condition.model_ref),
            moe=condition.model.is_moe,
            context_len=condition.workload.input_tokens + condition.workload.output_tokens,
        )

    @property
    def uneven(self) -> bool:
        return len(set(self.layers_per_stage)) > 1


def batching_loss(serving: ServingBlock | None, f: PlanFacts) -> str | None:
    """How the engine's batching differs from the plan's: a static batch becomes a concurrency cap;
    continuous batching (aggregated, or a prefill or decode pool) holds the plan's numbers only at
    the planned load. A decode pool (mode decode-only) batches continuously too: its max-num-seqs
    is its concurrency, each request holding a slot from its KV cache's arrival to its last token."""
    if serving is None or serving.mode not in (CONTINUOUS, DECODE_ONLY):
        return ("continuous batching: the engine admits requests as they come; the plan's "
                f"static batch of {f.batch} sequences per replica becomes the concurrency cap")
    load = None
    if serving.utilization is not None:
        load = (f"the plan's numbers hold at {serving.utilization:.0%} of the {f.batch} slots in use "
                f"on average ({serving.requests_per_s_per_gpu or 0:.3g} requests/s per GPU); the "
                "engine takes whatever arrives, so keep the offered rate at or below it")
    if serving.mode == DECODE_ONLY:
        return (f"decode pool: continuous batching of decode steps; the plan's max-num-seqs, {f.batch} "
                "sequences per instance, is its concurrency (a request holds a slot from the arrival "
                "of its KV cache to its last token)" + (f"; the operating load: {load}" if load else ""))
    return f"the operating load: {load}" if load else None


def common_losses(plan: Plan, f: PlanFacts, launch: Launch) -> None:
    batching = batching_loss(plan.serving, f)
    if batching is not None:
        launch.lost.append(batching)
    if plan.expert_placement is not None:
        launch.lost.append(
            f"expert placement: the planned placement ({plan.expert_placement.method}, "
            f"{plan.expert_placement.slots_per_gpu} slots per GPU, max/mean load "
            f"{plan.expert_placement.max_over_mean_token_load:.3f}; plan.json devices[].experts) "
            "cannot be passed; the engine places experts itself (in order, or by its EPLB from "
            "observed loads where this file enables it)"
        )


def precision_flags(condition: Condition, launch: Launch, kv_fp8: str) -> None:
    """--dtype, --quantization and --kv-cache-dtype (vLLM and SGLang spell them alike)."""
    prec = condition.precision
    if prec.activations in DTYPES:
        launch.flag("--dtype", DTYPES[prec.activations])
    if prec.weights == "fp8":
        launch.flag("--quantization", "fp8")
    elif prec.weights in ("fp4", "int4", "int8"):
        launch.lost.append(
            f"{prec.weights} weights: no online quantization flag; serve a checkpoint "
            f"quantized to {prec.weights} (the engine reads its quantization_config)"
        )
    if prec.kv_cache in ("fp8", "int8"):
        launch.flag("--kv-cache-dtype", kv_fp8)
        if prec.kv_cache == "int8":
            launch.lost.append("int8 KV cache: written as fp8 (same bytes per element)")
    elif prec.kv_cache in ("fp4", "int4"):
        launch.lost.append(
            f"{prec.kv_cache} KV cache: not supported; the engine keeps KV in "
            "the model dtype (more memory than planned)"
        )
