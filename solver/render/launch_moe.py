"""The large-scale MoE deployment a plan models, as vLLM and SGLang flags (export.py, export_pools.py).

What the cost model prices for an MoE plan, read from the plan and its condition with the cost
model's own functions (physics/experts.py), not re-derived here:

    all-to-all     DeepEP dispatch and combine between the EP ranks (ep > 1): normal kernels in
                   steps with prompt tokens, low-latency kernels in decode-only steps
                   (experts.low_latency_kernels on each of the plan's steps)
    overlap        two-batch overlap where moe_layer chose it (experts.two_batch_overlap_steps on
                   the plan's shape, load and expert layout; plan.json has no field for it)
    redundancy     the placement's redundant expert slots: slots per GPU x ep - experts
    speculation    workload.speculative: the MTP module drafts `draft_tokens` per decode step

Flags (each in the engine's argument list, tests/assets/engine_args/):

    SGLang   --moe-a2a-backend deepep when ep = tp-size (SGLang's DeepEP needs it), with
             --deepep-mode normal on a prefill pool's servers, low_latency on a decode pool's
             (aggregated: SGLang's default, auto, picks each batch's kernels as the plan does);
             --enable-two-batch-overlap (needs an all-to-all backend: with deepep only);
             --enable-eplb --ep-num-redundant-experts R; MTP: --speculative-algorithm NEXTN
             --speculative-num-steps d --speculative-eagle-topk 1 --speculative-num-draft-tokens
             d+1 on every server, prefill pools too (SGLang's P/D deployments start both alike)
    vLLM     --all2all-backend deepep_high_throughput (normal kernels) or deepep_low_latency,
             --enable-dbo (two-batch overlap), --enable-eplb --eplb-config
             '{"num_redundant_experts":R}', MTP: --speculative-config
             '{"method":"mtp","num_speculative_tokens":d}' on aggregated and decode-pool engines
             ("mtp": vLLM's one MTP method since deepseek_mtp and the others were folded into it)

DeepEP runs only where the GPU card says it can (deepseek-ai/DeepEP README: NVIDIA Ampere SM80,
Hopper SM90 or SM90-PTX-capable GPUs, Blackwell SM100 in its V2 tables; NVLink between a node's
GPUs; RDMA between nodes): the card's `architecture` one of DEEPEP_ARCHITECTURES and its
`intra_node_link` nvlink. Elsewhere (an L40S: Ada over PCIe; an MI300X) no DeepEP flag is written,
the engine's default all-to-all runs, and the header names the reason; two-batch overlap, which
both engines run only over an all-to-all backend (vLLM's --enable-dbo asserts a deepep_* backend
in VllmConfig), is then left off too.

What an engine cannot do as the plan does goes to the script's header, with what runs instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from solver.document.plan import Plan
from solver.document.verify import expert_layout_of
from solver.inputs.cards import GpuCard
from solver.inputs.condition import Condition
from solver.physics.cost import CostModel
from solver.physics.experts import low_latency_kernels, two_batch_overlap_steps
from solver.physics.points import serving_point
from solver.render.launch_facts import Launch, PlanFacts

NORMAL, LOW_LATENCY = "normal", "low_latency"
POOL_KERNELS = {"prefill": NORMAL, "decode": LOW_LATENCY}  # a pool's steps are all of one kind
VLLM_ALL2ALL = {NORMAL: "deepep_high_throughput", LOW_LATENCY: "deepep_low_latency"}
STEP_WORDS = {"mix": "mixed", "chunk": "full-chunk", "prefill": "prefill", "decode": "decode"}
DEEPEP_ARCHITECTURES = ("ampere", "hopper", "blackwell")  # NVIDIA data-centre GPUs DeepEP runs on


def deepep_obstacle(gpu: GpuCard) -> str | None:
    """Why DeepEP cannot run on `gpu`, from what its card states (architecture, intra-node link);
    None where it can."""
    reasons = []
    if gpu.architecture not in DEEPEP_ARCHITECTURES:
        reasons.append(f"architecture {gpu.architecture or 'not stated'}, DeepEP runs on "
                       f"{', '.join(DEEPEP_ARCHITECTURES[:-1])} and {DEEPEP_ARCHITECTURES[-1]} GPUs")
    if gpu.intra_node_link != "nvlink":
        reasons.append(f"GPUs linked over {gpu.intra_node_link}, DeepEP needs NVLink within a node")
    return f"{gpu.name}: {'; '.join(reasons)}" if reasons else None


@dataclass(frozen=True)
class MoeDeployment:
    """What an MoE plan's deployment runs, step by step (steps as the plan's serving point names
    them: prefill/decode for a static batch, mix/chunk for continuous batching)."""

    pool: str | None  # prefill | decode (a disaggregated pool's servers), None: aggregated
    all_to_all: bool  # dispatch/combine between EP ranks (the plan prices DeepEP's kernels)
    kernels: dict[str, str]  # step -> normal | low_latency
    overlap: dict[str, bool]  # step -> two-batch overlap
    redundant: int  # redundant expert slots per EP group
    draft_tokens: int  # MTP drafts per decode step; 0 without speculative decoding
    deepep_obstacle: str | None = None  # why the card cannot run DeepEP; None: it can

    @property
    def deepep(self) -> bool:
        """DeepEP carries the all-to-all (the card runs it)."""
        return self.all_to_all and self.deepep_obstacle is None

    @property
    def overlap_steps(self) -> list[str]:
        return [step for step, used in self.overlap.items() if used]

    @property
    def kernel(self) -> str:
        """One kernel family for every step: the pool's, else normal when every step has prompt
        tokens, else low-latency (decode steps: most of a request's steps)."""
        if self.pool in POOL_KERNELS:
            return POOL_KERNELS[self.pool]
        return NORMAL if set(self.kernels.values()) == {NORMAL} else LOW_LATENCY


def moe_deployment(condition: Condition, plan: Plan, pool: str | None = None) -> MoeDeployment | None:
    """The MoE deployment of `plan` under `condition` (a pool's own condition for a pool); None
    for a dense model."""
    if not condition.model.is_moe:
        return None
    shape = plan.parallelism.shape()
    layout = expert_layout_of(condition, plan)
    model = CostModel(condition, {shape.ep: layout} if layout is not None else None)
    mixes = serving_point(plan.load(), shape.pp, condition).mixes
    kernels = {step: LOW_LATENCY if bool(low_latency_kernels(mix)) else NORMAL
               for step, mix in mixes.items()}
    placement, spec = plan.expert_placement, condition.workload.speculative
    slots = placement.slots_per_gpu * shape.ep if placement is not None and shape.ep > 1 else 0
    return MoeDeployment(pool=pool, all_to_all=shape.ep > 1, kernels=kernels,
                         overlap=two_batch_overlap_steps(model, shape, mixes),
                         redundant=max(0, slots - condition.model.num_experts),
                         draft_tokens=spec.draft_tokens if spec is not None else 0,
                         deepep_obstacle=deepep_obstacle(condition.cluster.gpu))


def _steps(steps: list[str]) -> str:
    return ", ".join(STEP_WORDS.get(step, step) for step in steps)


def _overlap_words(d: MoeDeployment) -> str:
    others = [step for step in d.overlap if step not in d.overlap_steps]
    where = "every step" if not others else (f"its {_steps(d.overlap_steps)} steps, not its "
                                               f"{_steps(others)} steps")
    return f"two-batch overlap: the plan's MoE layers overlap two micro-batches in {where}"


def sglang_moe_flags(d: MoeDeployment, f: PlanFacts, launch: Launch) -> None:
    """SGLang's DeepEP backend and mode, two-batch overlap, EPLB and MTP flags; what cannot be
    written goes to the header."""
    deepep = d.deepep and f.etp == 1
    if deepep:
        launch.flag("--moe-a2a-backend", "deepep")
        if d.pool in POOL_KERNELS:  # aggregated: auto, SGLang's default, picks per batch
            launch.flag("--deepep-mode", POOL_KERNELS[d.pool])
    elif d.all_to_all and d.deepep_obstacle:
        launch.lost.append(f"{_no_deepep_words(d, f.ep)}: SGLang's default backend (all-reduce/"
                           "all-gather dispatch) runs, not the DeepEP dispatch and combine the plan prices")
    elif d.all_to_all:
        launch.lost.append(
            f"DeepEP all-to-all over ep={f.ep} with etp={f.etp}: SGLang's deepep backend needs "
            f"ep = tp-size ({f.stage_gpus}); the default backend (all-reduce/all-gather dispatch) runs")
    if d.overlap_steps and deepep:
        launch.flag("--enable-two-batch-overlap")
        if len(d.overlap_steps) < len(d.overlap):
            launch.lost.append(f"{_overlap_words(d)}: SGLang's --enable-two-batch-overlap splits "
                               "every batch it can")
    elif d.overlap_steps:
        launch.lost.append(
            f"{_overlap_words(d)}: SGLang's --enable-two-batch-overlap needs an all-to-all backend "
            "(--moe-a2a-backend), which this plan cannot use; the server runs the layers serially "
            "(slower than planned)")
    if d.redundant:
        launch.flag("--enable-eplb")
        launch.flag("--ep-num-redundant-experts", d.redundant)
    if d.draft_tokens:  # a prefill pool's servers too: SGLang starts both pools with them
        launch.flag("--speculative-algorithm", "NEXTN")
        launch.flag("--speculative-num-steps", d.draft_tokens)
        launch.flag("--speculative-eagle-topk", 1)
        launch.flag("--speculative-num-draft-tokens", d.draft_tokens + 1)


def vllm_moe_flags(d: MoeDeployment, ep: int, launch: Launch) -> None:
    """vLLM's all-to-all backend, dual-batch overlap, EPLB and MTP flags (with
    --enable-expert-parallel, written by the caller when ep > 1); what cannot be written goes to
    the header."""
    if d.deepep:
        _vllm_deepep_flags(d, launch)
    elif d.all_to_all:
        launch.lost.append(f"{_no_deepep_words(d, ep)}: vLLM's default --all2all-backend runs, not "
                           "the DeepEP dispatch and combine the plan prices")
        if d.overlap_steps:
            launch.lost.append(
                f"{_overlap_words(d)}: vLLM's --enable-dbo needs a DeepEP all2all backend, which "
                "this card cannot run; the engine runs the layers serially (slower than planned)")
    if d.redundant:
        launch.flag("--enable-eplb")
        launch.flag("--eplb-config", json.dumps({"num_redundant_experts": d.redundant},
                                                separators=(",", ":")))
    if d.draft_tokens and d.pool != "prefill":
        launch.flag("--speculative-config", json.dumps(
            {"method": "mtp", "num_speculative_tokens": d.draft_tokens}, separators=(",", ":")))


def _vllm_deepep_flags(d: MoeDeployment, launch: Launch) -> None:
    """--all2all-backend with the plan's DeepEP kernels, and --enable-dbo where it overlaps."""
    launch.flag("--all2all-backend", VLLM_ALL2ALL[d.kernel])
    if len(set(d.kernels.values())) > 1 and d.pool not in POOL_KERNELS:
        launch.lost.append(
            "DeepEP kernels per step (normal with prompt tokens, low-latency in decode-only "
            f"steps): vLLM's --all2all-backend sets one family for every step; written as "
            f"{VLLM_ALL2ALL[d.kernel]}")
    if d.overlap_steps:
        launch.flag("--enable-dbo")
        if len(d.overlap_steps) < len(d.overlap):
            launch.lost.append(f"{_overlap_words(d)}: vLLM's --enable-dbo overlaps every batch "
                               "above its token thresholds")


def _no_deepep_words(d: MoeDeployment, ep: int) -> str:
    return f"DeepEP all-to-all over ep={ep} cannot run here ({d.deepep_obstacle})"


def trtllm_moe_losses(d: MoeDeployment, ep: int) -> list[str]:
    """The planned MoE deployment that TensorRT-LLM's options here leave out: its MoE backends,
    load balancer and speculative decoding take options of their own, not written."""
    parts = [f"expert all-to-all over ep={ep} priced as DeepEP's kernels"] if d.all_to_all else []
    parts += ["two-batch overlap"] if d.overlap_steps else []
    parts += [f"{d.redundant} redundant experts (EPLB)"] if d.redundant else []
    parts += [f"MTP speculative decoding, {d.draft_tokens} draft token(s)"] if d.draft_tokens else []
    if not parts:
        return []
    return [f"the MoE deployment the plan prices ({'; '.join(parts)}): not written for TensorRT-LLM "
            "(its moe_config and speculative_config options are left at their defaults)"]
