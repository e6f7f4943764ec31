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
             either TP over G or DP over G (enable_attention_dp); max_num_tokens the chunk budget,
             with enable_chunked_prefill where that is under a prompt

An MoE plan's deployment (launch_moe.py): DeepEP all-to-all (SGLang --moe-a2a-backend deepep with
--deepep-mode normal|low_latency on a prefill|decode pool, vLLM --all2all-backend
deepep_high_throughput|deepep_low_latency by the plan's kernels), two-batch overlap where the cost
model uses it (SGLang --enable-two-batch-overlap, vLLM --enable-dbo), the placement's redundant
experts with EPLB (SGLang --enable-eplb --ep-num-redundant-experts, vLLM --enable-eplb
--eplb-config), MTP speculative decoding (SGLang --speculative-algorithm NEXTN and its step/draft
counts, vLLM --speculative-config with method mtp).

Flag names are checked against each engine's published argument list (tests/assets/engine_args/:
vLLM's arg_utils.py and cli_args.py, SGLang's server arguments, trtllm-serve's options, with the
commits read); engine versions differ, so the files say which choices are approximations. A plan
over several nodes gets one command per node (launch_nodes.py), chosen by NODE_RANK.
"""

from __future__ import annotations

import yaml

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.render.launch_facts import Launch, PlanFacts, common_losses, precision_flags
from solver.render.launch_moe import (
    moe_deployment,
    sglang_moe_flags,
    trtllm_moe_losses,
    vllm_moe_flags,
)
from solver.render.launch_nodes import (
    Layout,
    NodeCommand,
    sglang_commands,
    trtllm_commands,
    vllm_commands,
)
from solver.render.launch_script import node_summary, script_body
from solver.render.writer import LAUNCH_FILES, launch_path


def vllm_launch(condition: Condition, plan: Plan, pool: str | None = None) -> Launch:
    """vLLM's flags for `plan`; `pool`: prefill or decode for a disaggregated pool's servers."""
    f, launch = PlanFacts.of(condition, plan), Launch("vLLM")
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
    launch.flag("--max-num-batched-tokens", f.chunk_tokens)
    launch.flag("--gpu-memory-utilization", f"{condition.cluster.usable_memory_fraction:g}")
    precision_flags(condition, launch, "fp8")
    moe = moe_deployment(condition, plan, pool)
    if moe is not None:
        vllm_moe_flags(moe, f.ep, launch)
    if f.dp > 1 and not f.moe:
        launch.lost.append(f"dp={f.dp} replicas run as --data-parallel-size {f.dp} in one deployment "
                           "(one API server balances them)")
    if f.dp > 1 and f.moe:
        launch.lost.append(f"dp={f.dp} replicas: one vLLM deployment each (its attention-DP ranks); "
                           "this script starts them on their own GPUs and ports; put a load "
                           "balancer in front")
    common_losses(plan, f, launch)
    return launch


def sglang_launch(condition: Condition, plan: Plan, pool: str | None = None) -> Launch:
    """SGLang's flags for `plan`; `pool`: prefill or decode for a disaggregated pool's servers."""
    f, launch = PlanFacts.of(condition, plan), Launch("SGLang")
    if f.moe and f.dp > 1:
        launch.lost.append(f"dp={f.dp} replicas: one SGLang server each (this script starts them "
                           "on their own GPUs and ports); put a router in front")
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
                f"dp={f.dp} replicas: the replicas of one node share a server (--dp-size); one "
                "server per node; SGLang recommends its router (sglang_router) in front"
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
    launch.flag("--chunked-prefill-size", f.chunk_tokens)
    launch.flag("--mem-fraction-static", f"{condition.cluster.usable_memory_fraction:g}")
    precision_flags(condition, launch, "fp8_e4m3")
    moe = moe_deployment(condition, plan, pool)
    if moe is not None:
        sglang_moe_flags(moe, f, launch)
    common_losses(plan, f, launch)
    return launch


def trtllm_options_file(pool: str | None = None) -> str:
    """The LLM API options YAML beside the trtllm-serve script: trtllm.yaml, or a disaggregated
    pool's prefill-trtllm.yaml / decode-trtllm.yaml."""
    return f"{pool}-trtllm.yaml" if pool else "trtllm.yaml"


def trtllm_options(condition: Condition, plan: Plan,
                   pool: str | None = None) -> tuple[dict[str, object], Launch]:
    """The extra LLM API options YAML and the trtllm-serve command; `pool`: prefill or decode for
    a disaggregated pool's servers."""
    f, launch = PlanFacts.of(condition, plan), Launch("TensorRT-LLM")
    attention_dp = f.moe and f.attn_dp > 1 and f.attn_dp >= f.tp * f.sp
    chunked = trtllm_chunks_prefill(condition, f, pool)
    options: dict[str, object] = {
        "tensor_parallel_size": f.stage_gpus,
        "pipeline_parallel_size": f.pp,
        "max_batch_size": f.batch,
        "max_num_tokens": f.chunk_tokens,
        **({"enable_chunked_prefill": True} if chunked else {}),
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
    _trtllm_losses(condition, f, launch, attention_dp, pool)
    moe = moe_deployment(condition, plan, pool)
    if moe is not None:
        launch.lost += trtllm_moe_losses(moe, f.ep)
    launch.flag("--backend", "pytorch")
    launch.flag("--tp_size", f.stage_gpus)
    launch.flag("--pp_size", f.pp)
    if f.moe:
        launch.flag("--ep_size", f.ep)
    launch.flag("--max_batch_size", f.batch)
    launch.flag("--max_num_tokens", f.chunk_tokens)
    if chunked:
        launch.flag("--enable_chunked_prefill")
    launch.flag("--max_seq_len", f.context_len)
    launch.flag(
        "--kv_cache_free_gpu_memory_fraction", f"{condition.cluster.usable_memory_fraction:g}"
    )
    common_losses(plan, f, launch)
    return options, launch


def trtllm_chunks_prefill(condition: Condition, f: PlanFacts, pool: str | None) -> bool:
    """Whether TensorRT-LLM's servers need chunked prefill: the plan prefills a prompt in chunks
    of max_num_tokens = its chunk budget, fewer than the prompt's tokens. The LLM API has chunked
    prefill off (BaseLlmArgs.enable_chunked_prefill) and then refuses a prompt longer than
    max_num_tokens (llm.py _check_arguments); a budget of a whole prompt or more needs nothing. A
    decode pool's generation servers never prefill: the front end sends them generation-only
    requests, whose prompt is in the KV cache already and which that check skips."""
    return pool != "decode" and f.chunk_tokens < condition.workload.input_tokens


def _trtllm_losses(condition: Condition, f: PlanFacts, launch: Launch, attention_dp: bool,
                   pool: str | None) -> None:
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
        front = ("the disaggregated front end (router-trtllm.sh) spreads requests over them" if pool
                 else "put a load balancer in front")
        launch.lost.append(
            f"dp={f.dp} {'instances' if pool else 'replicas'}: one trtllm-serve each (this script "
            f"starts them on their own GPUs and ports); {front}"
        )


def launch_header(condition: Condition, plan: Plan, launch: Launch,
                  commands: list[NodeCommand] | None = None) -> list[str]:
    """A launch file's comment block: the plan, each node's part and what the engine cannot
    express."""
    p = plan.parallelism
    lines = [
        f"# {launch.engine} launch for plan '{plan.condition}' ({plan.status}): {p.shape().label}, "
        f"batch {plan.batch_size}, {plan.gpus.used} x {plan.gpu}.",
        f"# Generated by `paraplan solve --export` from plan.json (tp={p.tp} pp={p.pp} dp={p.dp} "
        f"ep={p.ep} etp={p.etp} attn_dp={p.attn_dp} sp={p.sp}; layers per stage "
        f"{[s.num_layers for s in plan.stages]}).",
        *node_summary(commands or []),
        "#",
        f"# Not expressible in {launch.engine} (what this file does instead):",
    ]
    lines += [f"#   - {item}" for item in launch.lost] or ["#   (nothing)"]
    return lines


def _model_line(condition: Condition, f: PlanFacts) -> str:
    if f.model_repo:
        return f'MODEL="${{MODEL:-{f.model_repo}}}"'
    return (
        f'MODEL="${{MODEL:?set MODEL to the checkpoint of {condition.model.name} '
        '(path or Hugging Face repo)}"'
    )


def launch_script(condition: Condition, plan: Plan, launch: Launch, commands: list[NodeCommand],
            here: bool = False) -> str:
    f = PlanFacts.of(condition, plan)
    lines = ["#!/usr/bin/env bash", *launch_header(condition, plan, launch, commands), "",
             "set -euo pipefail", _model_line(condition, f)]
    if here:
        lines.append('HERE="$(cd "$(dirname "$0")" && pwd)"')
    lines += [f"export {k}={v}" for k, v in launch.env.items()]
    return "\n".join(lines + script_body(commands)) + "\n"


def trtllm_yaml(condition: Condition, plan: Plan, launch: Launch, commands: list[NodeCommand],
                options: dict[str, object], pool: str | None = None) -> str:
    """The LLM API options file trtllm-serve reads (--extra_llm_api_options), with the header."""
    name = trtllm_options_file(pool)
    script = name.replace(".yaml", ".sh")
    return "\n".join(launch_header(condition, plan, launch, commands) + [
        f"# Pass with: trtllm-serve MODEL --extra_llm_api_options {name} (see {script})", ""]
    ) + yaml.safe_dump(options, sort_keys=False)


def launch_commands(condition: Condition, plan: Plan,
                    pool: str | None = None) -> dict[str, list[NodeCommand]]:
    """Every node's command of each engine (vllm, sglang, trtllm)."""
    f, layout = PlanFacts.of(condition, plan), Layout(plan, condition.cluster.gpus_per_node)
    vllm = vllm_launch(condition, plan, pool)
    sglang = sglang_launch(condition, plan, pool)
    _, trt = trtllm_options(condition, plan, pool)
    trt.flag("--extra_llm_api_options", f'"$HERE/{trtllm_options_file(pool)}"')
    dense_dp = not f.moe and f.dp > 1
    sglang_words = [w for name, value in sglang.args if not (dense_dp and name == "--dp-size")
                    for w in ([name] if value is None else [name, value])]
    return {
        "vllm": vllm_commands(plan, layout, f.moe, ["vllm", "serve", '"$MODEL"', *vllm.words()]),
        "sglang": sglang_commands(plan, layout, f.moe, ["python", "-m", "sglang.launch_server",
                                                         "--model-path", '"$MODEL"', *sglang_words]),
        "trtllm": trtllm_commands(plan, layout, ["trtllm-serve", '"$MODEL"', *trt.words()]),
    }


def render_launch(condition: Condition, plan: Plan) -> dict[str, str]:
    """launch/vllm.sh, launch/sglang.sh, launch/trtllm.yaml and launch/trtllm.sh."""
    commands = launch_commands(condition, plan)
    vllm = vllm_launch(condition, plan)
    sglang = sglang_launch(condition, plan)
    options, trt = trtllm_options(condition, plan)
    texts = (
        launch_script(condition, plan, vllm, commands["vllm"]),
        launch_script(condition, plan, sglang, commands["sglang"]),
        trtllm_yaml(condition, plan, trt, commands["trtllm"], options),
        launch_script(condition, plan, trt, commands["trtllm"], here=True),
    )
    return {launch_path(name): text for name, text in zip(LAUNCH_FILES, texts, strict=True)}
