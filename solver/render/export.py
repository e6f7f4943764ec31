"""Engine launch configs for a plan: vLLM, SGLang and TensorRT-LLM (launch/ beside plan.json).

Each file starts with a comment block listing what the plan says that the engine cannot express
(and what the command does instead). Degree mapping, with gpus per stage
G = tp x attn_dp x sp = etp x ep:

    vLLM     --tensor-parallel-size tp, --data-parallel-size attn_dp (MoE: attention DP, the experts
             span tp x dp ranks), --enable-expert-parallel when ep = G, --pipeline-parallel-size pp,
             uneven splits through VLLM_PP_LAYER_PARTITION
    SGLang   --tp-size G, --dp-size attn_dp with --enable-dp-attention, --ep-size ep (expert TP =
             G / ep), --pp-size pp, uneven splits through SGLANG_PP_LAYER_PARTITION
    TRT-LLM  --tp_size G, --pp_size pp, --ep_size ep (moe_tensor_parallel_size etp), attention
             either TP over G or DP over G (enable_attention_dp)

Flag names follow the engines' documentation (vLLM `vllm serve --help`, SGLang server arguments,
TensorRT-LLM `trtllm-serve` and LLM API options); engine versions differ, so the files say which
choices are approximations.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import yaml

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.render.writer import LAUNCH_FILES, launch_path

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
    """One engine's command: flags, environment, and what could not be expressed."""

    engine: str
    env: dict[str, str] = field(default_factory=dict)
    args: list[tuple[str, str | None]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def flag(self, name: str, value: object = None) -> None:
        self.args.append((name, None if value is None else str(value)))


@dataclass(frozen=True)
class _Facts:
    """The plan in the terms every exporter needs."""

    tp: int
    pp: int
    dp: int
    ep: int
    etp: int
    attn_dp: int
    sp: int
    batch: int
    stage_gpus: int
    layers_per_stage: list[int]
    nodes_per_replica: int
    model_repo: str | None
    moe: bool
    context_len: int

    @classmethod
    def of(cls, condition: Condition, plan: Plan) -> _Facts:
        p = plan.parallelism
        per_node = condition.cluster.gpus_per_node
        return cls(
            **p.model_dump(),  # tp, pp, dp, ep, etp, attn_dp, sp
            batch=plan.batch_size,
            stage_gpus=plan.gpus.per_stage,
            layers_per_stage=[s.num_layers for s in plan.stages],
            nodes_per_replica=-(-plan.gpus.per_replica // per_node),
            model_repo=HF_REPOS.get(condition.model_ref),
            moe=condition.model.is_moe,
            context_len=condition.workload.input_tokens + condition.workload.output_tokens,
        )

    @property
    def uneven(self) -> bool:
        return len(set(self.layers_per_stage)) > 1


def _common_losses(condition: Condition, plan: Plan, f: _Facts, launch: Launch) -> None:
    launch.lost.append(
        "continuous batching: the engine admits requests as they come; the plan's "
        f"static batch of {f.batch} sequences per replica becomes the concurrency cap"
    )
    if plan.expert_placement is not None:
        launch.lost.append(
            f"expert placement: the planned placement ({plan.expert_placement.method}, "
            f"{plan.expert_placement.slots_per_gpu} slots per GPU, max/mean load "
            f"{plan.expert_placement.max_over_mean_token_load:.3f}; plan.json devices[].experts) "
            "cannot "
            "be passed; the engine's own EPLB places experts from observed loads"
        )
    if f.dp > 1 and f.moe and f.attn_dp > 1:
        launch.lost.append(
            f"dp={f.dp} independent replicas: run {f.dp} copies of this command on "
            "disjoint GPUs behind a load balancer (the engine's DP flag is attention DP here)"
        )
    if f.nodes_per_replica > 1:
        launch.lost.append(
            f"one replica spans {f.nodes_per_replica} nodes: start the engine's "
            "multi-node launcher (see its docs) with these same parallel sizes"
        )


def _precision_vllm_sglang(condition: Condition, launch: Launch, kv_fp8: str) -> None:
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


def vllm_launch(condition: Condition, plan: Plan) -> Launch:
    f, launch = _Facts.of(condition, plan), Launch("vLLM")
    launch.flag("--tensor-parallel-size", f.tp)
    if f.pp > 1:
        launch.flag("--pipeline-parallel-size", f.pp)
        launch.env["VLLM_PP_LAYER_PARTITION"] = ",".join(map(str, f.layers_per_stage))
    data_parallel = f.attn_dp if f.moe else f.dp
    if data_parallel > 1:
        launch.flag("--data-parallel-size", data_parallel)
    if f.moe and f.ep > 1:
        launch.flag("--enable-expert-parallel")
        if f.etp > 1:
            launch.lost.append(
                f"ep={f.ep} x etp={f.etp}: vLLM's expert parallelism spans all "
                f"tp x dp = {f.tp * f.attn_dp} ranks (ep={f.tp * f.attn_dp}, etp=1); "
                "expert tensor parallelism inside an EP group is not expressible"
            )
    elif f.moe and f.ep == 1 and f.stage_gpus > 1:
        launch.lost.append(
            f"experts tensor-parallel over {f.stage_gpus} GPUs (etp={f.etp}): vLLM's "
            "default without --enable-expert-parallel"
        )
    if f.sp > 1:
        launch.lost.append(
            f"sp={f.sp} (ring attention over the prompt): vLLM has no sequence "
            f"parallelism for serving; this command uses {f.stage_gpus // f.sp} GPUs "
            "per stage instead of " + str(f.stage_gpus)
        )
    per_rank = -(-f.batch // f.attn_dp) if f.moe else f.batch
    launch.flag("--max-num-seqs", per_rank)
    launch.flag("--max-model-len", f.context_len)
    launch.flag("--max-num-batched-tokens", condition.workload.prefill_chunk_tokens)
    launch.flag("--gpu-memory-utilization", f"{condition.cluster.usable_memory_fraction:g}")
    _precision_vllm_sglang(condition, launch, "fp8")
    if condition.policy.redundant_experts:
        launch.flag("--enable-eplb")
        launch.lost.append(
            f"{condition.policy.redundant_experts} redundant experts: pass "
            "num_redundant_experts through --eplb-config (vLLM >= 0.11) or "
            "--num-redundant-experts (older versions)"
        )
    if f.dp > 1 and not f.moe:
        launch.lost.append(f"dp={f.dp} replicas run as --data-parallel-size {f.dp} in one server")
    _common_losses(condition, plan, f, launch)
    return launch


def sglang_launch(condition: Condition, plan: Plan) -> Launch:
    f, launch = _Facts.of(condition, plan), Launch("SGLang")
    if f.moe:
        launch.flag("--tp-size", f.stage_gpus)
        if f.attn_dp > 1:
            launch.flag("--dp-size", f.attn_dp)
            launch.flag("--enable-dp-attention")
        if f.ep > 1:
            launch.flag("--ep-size", f.ep)
    else:
        launch.flag("--tp-size", f.tp)
        if f.dp > 1:
            launch.flag("--dp-size", f.dp)
            launch.lost.append(
                f"dp={f.dp} replicas run inside one server (--dp-size); SGLang "
                "recommends its router (sglang_router) for data parallelism"
            )
    if f.sp > 1:
        if f.moe:
            launch.lost.append(
                f"sp={f.sp}: folded into attention TP (attention TP = tp-size / dp-size "
                f"= {f.tp * f.sp}); SGLang has no general sequence parallelism"
            )
        else:
            launch.lost.append(
                f"sp={f.sp}: SGLang has no general sequence parallelism; this command "
                f"uses {f.tp} GPUs per stage instead of {f.stage_gpus}"
            )
    if f.pp > 1:
        launch.flag("--pp-size", f.pp)
        launch.env["SGLANG_PP_LAYER_PARTITION"] = ",".join(map(str, f.layers_per_stage))
    launch.flag("--max-running-requests", f.batch)
    launch.flag("--context-length", f.context_len)
    launch.flag("--chunked-prefill-size", condition.workload.prefill_chunk_tokens)
    launch.flag("--mem-fraction-static", f"{condition.cluster.usable_memory_fraction:g}")
    _precision_vllm_sglang(condition, launch, "fp8_e4m3")
    if condition.policy.redundant_experts:
        launch.flag("--enable-eplb")
        launch.flag("--ep-num-redundant-experts", condition.policy.redundant_experts)
    _common_losses(condition, plan, f, launch)
    return launch


def trtllm_options(condition: Condition, plan: Plan) -> tuple[dict[str, object], Launch]:
    """The extra LLM API options YAML and the trtllm-serve command."""
    f, launch = _Facts.of(condition, plan), Launch("TensorRT-LLM")
    attention_dp = f.moe and f.attn_dp > 1 and f.attn_dp >= f.tp * f.sp
    options: dict[str, object] = {
        "tensor_parallel_size": f.stage_gpus,
        "pipeline_parallel_size": f.pp,
        "max_batch_size": f.batch,
        "max_num_tokens": condition.workload.prefill_chunk_tokens,
        "max_seq_len": f.context_len,
    }
    if f.moe:
        options |= {
            "moe_expert_parallel_size": f.ep,
            "moe_tensor_parallel_size": f.etp,
            "enable_attention_dp": attention_dp,
        }
    kv: dict[str, object] = {"free_gpu_memory_fraction": condition.cluster.usable_memory_fraction}
    if condition.precision.kv_cache in ("fp8", "int8"):
        kv["dtype"] = "fp8"
    options["kv_cache_config"] = kv
    _trtllm_losses(condition, f, launch, attention_dp)
    launch.flag("--backend", "pytorch")
    launch.flag("--tp_size", f.stage_gpus)
    launch.flag("--pp_size", f.pp)
    if f.moe:
        launch.flag("--ep_size", f.ep)
    launch.flag("--max_batch_size", f.batch)
    launch.flag("--max_num_tokens", condition.workload.prefill_chunk_tokens)
    launch.flag("--max_seq_len", f.context_len)
    launch.flag(
        "--kv_cache_free_gpu_memory_fraction", f"{condition.cluster.usable_memory_fraction:g}"
    )
    _common_losses(condition, plan, f, launch)
    return options, launch


def _trtllm_losses(condition: Condition, f: _Facts, launch: Launch, attention_dp: bool) -> None:
    """What the plan says that TensorRT-LLM's options cannot express."""
    if f.moe and f.attn_dp > 1 and f.tp * f.sp > 1:
        launch.lost.append(
            f"attention tp={f.tp * f.sp} x attn_dp={f.attn_dp}: TensorRT-LLM runs attention "
            "either TP "
            f"over all {f.stage_gpus} GPUs or DP over all of them; written as "
            + ("attention DP" if attention_dp else "attention TP")
        )
    if f.sp > 1:
        launch.lost.append(
            f"sp={f.sp}: context parallelism is not written here; the sp GPUs are "
            "counted in tp_size"
        )
    if f.uneven:
        launch.lost.append(
            f"uneven layer split {f.layers_per_stage}: not written (TensorRT-LLM "
            "assigns layers to pipeline stages itself)"
        )
    if condition.precision.weights not in ("bf16", "fp16", "fp32"):
        launch.lost.append(
            f"{condition.precision.weights} weights: serve a checkpoint quantized to "
            f"{condition.precision.weights} (e.g. with TensorRT Model Optimizer); "
            "trtllm-serve reads its quantization config"
        )
    if f.dp > 1:
        launch.lost.append(
            f"dp={f.dp} replicas: run {f.dp} trtllm-serve instances on disjoint GPUs "
            "behind a load balancer"
        )


def _header(condition: Condition, plan: Plan, launch: Launch) -> list[str]:
    p = plan.parallelism
    lines = [
        f"# {launch.engine} launch for plan '{plan.condition}' ({plan.status}): {p.shape().label}, "
        f"batch {plan.batch_size}, {plan.gpus.used} x {plan.gpu}.",
        f"# Generated by `paraplan solve --export` from plan.json (tp={p.tp} pp={p.pp} dp={p.dp} "
        f"ep={p.ep} etp={p.etp} attn_dp={p.attn_dp} sp={p.sp}; layers per stage "
        f"{[s.num_layers for s in plan.stages]}).",
        "#",
        f"# Not expressible in {launch.engine} (what this file does instead):",
    ]
    lines += [f"#   - {item}" for item in launch.lost] or ["#   (nothing)"]
    return lines


def _model_line(condition: Condition, f: _Facts) -> str:
    if f.model_repo:
        return f'MODEL="${{MODEL:-{f.model_repo}}}"'
    return (
        f'MODEL="${{MODEL:?set MODEL to the checkpoint of {condition.model.name} '
        '(path or Hugging Face repo)}"'
    )


def _script(condition: Condition, plan: Plan, launch: Launch, command: list[str]) -> str:
    f = _Facts.of(condition, plan)
    lines = (
        ["#!/usr/bin/env bash"]
        + _header(condition, plan, launch)
        + ["", "set -euo pipefail", _model_line(condition, f)]
    )
    lines += [f"export {k}={shlex.quote(v)}" for k, v in launch.env.items()]
    args = [
        f"  {name}" + ("" if value is None else f" {shlex.quote(value)}")
        for name, value in launch.args
    ]
    body = command + args
    lines.append(" \\\n".join(body))
    return "\n".join(lines) + "\n"


def render_launch(condition: Condition, plan: Plan) -> dict[str, str]:
    """launch/vllm.sh, launch/sglang.sh, launch/trtllm.yaml and launch/trtllm.sh."""
    vllm = vllm_launch(condition, plan)
    sglang = sglang_launch(condition, plan)
    options, trt = trtllm_options(condition, plan)
    trt.flag("--extra_llm_api_options", "__HERE__/trtllm.yaml")
    trt_script = _script(condition, plan, trt, ['trtllm-serve "$MODEL"']).replace(
        "__HERE__/trtllm.yaml", '"$(dirname "$0")/trtllm.yaml"'
    )
    trt_yaml = "\n".join(
        _header(condition, plan, trt)
        + [
            "# Pass with: trtllm-serve MODEL --extra_llm_api_options trtllm.yaml (see trtllm.sh)",
            "",
        ]
    )
    trt_yaml += yaml.safe_dump(options, sort_keys=False)
    texts = (
        _script(condition, plan, vllm, ['vllm serve "$MODEL"']),
        _script(condition, plan, sglang, ['python -m sglang.launch_server --model-path "$MODEL"']),
        trt_yaml,
        trt_script,
    )
    return {launch_path(name): text for name, text in zip(LAUNCH_FILES, texts, strict=True)}
