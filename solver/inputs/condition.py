"""The condition file: hardware, model, workload, SLOs, objective and policy.

`ConditionFile` is the user-facing contract (what the YAML may say); `load_condition` validates it,
resolves the model and GPU cards and returns a frozen, fully prepared `Condition`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from solver.errors import InputError
from solver.inputs.card_library import load_card
from solver.inputs.cards import GpuCard, ModelCard
from solver.inputs.loading import parse_mapping, read_text, validation_error
from solver.inputs.precision import PrecisionSpec, compute_precision
from solver.inputs.serving import DEFAULT_MAX_NUM_SEQS, ServingSpec, SloSpec, workload_problem

DEGREE_NAMES = ("tp", "pp", "dp", "ep", "etp", "attn_dp", "sp")

# strict: YAML already gives typed values, so `true` or "8" where a number belongs is a mistake
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
MAX_GPUS = 16_384  # per cluster; the device list and the shape enumeration grow with it


class HardwareSpec(BaseModel):
    """Cluster description. Either a fixed cluster (num_nodes x gpus_per_node) or max_gpus."""

    model_config = _STRICT
    gpu: str | GpuCard
    num_nodes: int | None = Field(default=None, gt=0, le=100_000)
    gpus_per_node: int | None = Field(default=None, gt=0, le=1_024)
    max_gpus: int | None = Field(default=None, gt=0, le=MAX_GPUS)
    # floors, not just > 0: 1e-300 makes the cost model's times infinite (NaN in its tables)
    intra_node_gb_per_s: float | None = Field(default=None, ge=1e-3, le=1e6)
    inter_node_gb_per_s: float | None = Field(default=None, ge=1e-3, le=1e6)
    mfu: float | None = Field(default=None, ge=1e-3, le=1)
    memory_bandwidth_utilization: float | None = Field(default=None, ge=1e-3, le=1)
    usable_memory_fraction: float = Field(
        default=0.9, gt=0, le=1, description="share of the device's reported memory the engine "
        "uses (vLLM --gpu-memory-utilization, SGLang --mem-fraction-static)")
    runtime_overhead_gb: float = Field(
        default=1.0, ge=0, le=1e4, description="inside that share and beside weights, KV cache and "
        "activations: CUDA graphs, NCCL buffers, allocator slack per GPU (GB)"
    )
    collective_latency_us: float | None = Field(
        default=None, ge=0, le=1e6, description="alpha of the alpha-beta model, per message hop "
        "(default: the card's)"
    )
    link_bandwidth_utilization: float | None = Field(
        default=None, ge=1e-3, le=1, description="fraction of the intra-node link rate that "
        "collectives achieve (default: the card's)")
    layer_overhead_us: float | None = Field(
        default=None, ge=0, le=1e6,
        description="fixed time per transformer layer per forward pass (default: the card's)",
    )
    gpu_hour_usd: float | None = Field(
        default=None, gt=0, le=1e6,
        description="price of one GPU for one hour, for cost per million tokens (optional)",
    )

    @model_validator(mode="after")
    def _cluster_given(self) -> HardwareSpec:
        if self.max_gpus is None and self.num_nodes is None:
            raise ValueError("give num_nodes (fixed cluster) or max_gpus (the planner chooses)")
        if self.max_gpus is not None and self.num_nodes is not None:
            raise ValueError("give either num_nodes or max_gpus, not both")
        return self


NonNegativeLoad = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]


class ExpertLoadSpec(BaseModel):
    """Relative token load of the routed experts: a named distribution."""

    model_config = _STRICT
    distribution: Literal["uniform", "zipf"]
    alpha: float = Field(default=1.2, gt=0, le=10, description="zipf exponent: load of rank r ~ r^-alpha")


class SpeculativeSpec(BaseModel):
    """Speculative decoding with the model's multi-token-prediction (MTP) modules as the draft:
    each decode step verifies draft_tokens + 1 positions per sequence and accepts on average
    sum_{i=0..draft_tokens} acceptance_rate^i tokens (physics/speculative.py)."""

    model_config = _STRICT
    draft_tokens: int = Field(default=1, ge=1, le=16)
    acceptance_rate: float = Field(ge=0, le=1, description="chance a draft token is accepted, "
                                   "given the ones before it were (DeepSeek-V3 MTP: 0.85-0.9)")


class WorkloadSpec(BaseModel):
    model_config = _STRICT
    input_tokens: int = Field(gt=0, le=10_000_000)
    output_tokens: int = Field(gt=0, le=10_000_000)
    batch_size: int | None = Field(default=None, gt=0, le=1_000_000)
    max_batch_size: int | None = Field(default=None, gt=0, le=1_000_000)
    prefill_chunk_tokens: int = Field(
        default=8192, gt=0, le=10_000_000,
        description="tokens prefilled per forward pass; sizes the activation workspace",
    )
    expert_load: ExpertLoadSpec | list[NonNegativeLoad] | list[list[NonNegativeLoad]] | None = Field(
        default=None,
        description="routed-token load per expert: {distribution: zipf, alpha} or uniform, a list "
        "of relative loads per expert, or one such list per MoE layer",
    )
    speculative: SpeculativeSpec | None = Field(
        default=None, description="speculative decoding with the model's MTP modules as the draft")
    request_rate: float | None = Field(
        default=None, gt=0, le=1e9,
        description="requests/s offered to the whole deployment: the plan must serve it (its "
        "capacity at the operating point it states is at least this rate); with max_gpus, the "
        "replicas to buy for it")

    @model_validator(mode="after")
    def _one_batch_rule(self) -> WorkloadSpec:
        if self.batch_size is not None and self.max_batch_size is not None:
            raise ValueError("give batch_size (fixed) or max_batch_size (chosen), not both")
        return self


class ObjectiveSpec(BaseModel):
    model_config = _STRICT
    latency_weight: float = Field(default=1.0, ge=0, le=1e6)
    throughput_weight: float = Field(default=1.0, ge=0, le=1e6)

    @model_validator(mode="after")
    def _some_weight(self) -> ObjectiveSpec:
        if self.latency_weight == 0 and self.throughput_weight == 0:
            raise ValueError("latency_weight and throughput_weight cannot both be 0")
        return self


DegreeList = list[int]


class PolicySpec(BaseModel):
    model_config = _STRICT
    use_all_gpus: bool = True
    tp_within_node: bool = True
    redundant_experts: int = Field(
        default=0, ge=0, le=100_000,
        description="extra expert slots per EP group for replicas of hot experts",
    )
    two_batch_overlap: bool | None = Field(
        default=None, description="split each step into two micro-batches so one's MoE all-to-all "
        "overlaps the other's compute (SGLang --enable-two-batch-overlap, DeepSeek's deployment); "
        "default: where the EP group spans nodes and it shortens the step")
    tp: DegreeList | None = None
    pp: DegreeList | None = None
    dp: DegreeList | None = None
    ep: DegreeList | None = None
    etp: DegreeList | None = None
    attn_dp: DegreeList | None = None
    sp: DegreeList | None = None

    @model_validator(mode="after")
    def _positive_degrees(self) -> PolicySpec:
        for name in DEGREE_NAMES:
            values = getattr(self, name)
            if values is None:
                continue
            if not values:
                raise ValueError(f"{name}: the list of allowed degrees is empty")
            if any(v <= 0 or v > 1_000_000 for v in values):
                raise ValueError(f"{name}: degrees must be between 1 and 1000000")
        return self

    def allows(self, name: str, value: int) -> bool:
        values = getattr(self, name)
        return values is None or value in values


class ConditionFile(BaseModel):
    """The condition file as written by a user (see README and `paraplan schema`)."""

    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1, max_length=200)
    model: str | ModelCard
    precision: PrecisionSpec = PrecisionSpec()
    hardware: HardwareSpec
    workload: WorkloadSpec
    slo: SloSpec = SloSpec()
    serving: ServingSpec = ServingSpec()
    objective: ObjectiveSpec = ObjectiveSpec()
    policy: PolicySpec = PolicySpec()
    assumptions: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=200,
        description="defaults an importer assumed (plan.md lists them); no effect on the model",
    )


class Cluster(BaseModel):
    """Resolved hardware: card plus effective numbers (condition overrides card defaults)."""

    model_config = ConfigDict(frozen=True)
    gpu: GpuCard
    num_gpus: int
    gpus_per_node: int
    fixed: bool  # False: "ample GPUs", the planner chooses how many (<= num_gpus)
    intra_node_bytes_per_s: float
    inter_node_bytes_per_s: float
    mfu: float
    memory_bandwidth_utilization: float
    usable_memory_fraction: float
    runtime_overhead_bytes: float
    collective_latency_s: float
    layer_overhead_s: float = 0.0
    link_bandwidth_utilization: float = 1.0  # of intra_node_bytes_per_s, in collectives
    gpu_hour_usd: float | None = None  # optional price of one GPU hour (reports: cost per 1M tokens)

    @property
    def usable_memory_bytes(self) -> float:
        """What the engine may use of the device (vLLM's gpu-memory-utilization, SGLang's
        mem-fraction-static): the fraction of the device-reported capacity."""
        return self.gpu.memory_bytes * self.usable_memory_fraction

    @property
    def num_nodes(self) -> int:
        return -(-self.num_gpus // self.gpus_per_node)


class Condition(BaseModel):
    """A validated condition with every card resolved; nothing left to look up."""

    model_config = ConfigDict(frozen=True)
    name: str
    source: str
    model: ModelCard
    model_ref: str  # card name or "inline"
    gpu_ref: str
    precision: PrecisionSpec
    compute_precision: str  # the GEMMs' precision (inputs/precision.py)
    cluster: Cluster
    workload: WorkloadSpec
    slo: SloSpec
    serving: ServingSpec
    objective: ObjectiveSpec
    policy: PolicySpec
    raw: dict[str, Any]  # the file's data, for the plan document's restatement
    mixed: Any = None  # hardware.pools (2+ pools): inputs/pools.MixedCluster, else None

    @property
    def expert_loads_per_layer(self) -> bool:
        load = self.workload.expert_load
        return isinstance(load, list) and bool(load) and isinstance(load[0], list)

    def expert_load_vectors(self) -> list[list[float]] | None:
        """Relative routed-token load per expert: one vector, or one per MoE layer; None = uniform
        with no redundant experts (the uniform contiguous spread needs no placement)."""
        load, experts = self.workload.expert_load, self.model.num_experts
        if experts == 0:
            return None
        if load is None or isinstance(load, ExpertLoadSpec) and load.distribution == "uniform":
            return None if self.policy.redundant_experts == 0 else [[1.0] * experts]
        if isinstance(load, ExpertLoadSpec):
            return [[(i + 1) ** -load.alpha for i in range(experts)]]
        if self.expert_loads_per_layer:
            return [list(map(float, row)) for row in load]  # type: ignore[union-attr]
        return [list(map(float, load))]  # type: ignore[arg-type]


def load_model_card(name: str, source: str = "<model>", key: str = "model") -> ModelCard:
    """A model card by name from the card search path (solver/inputs/card_library.py)."""
    card: ModelCard = load_card("model", name, ModelCard, source, key)
    return card


def load_gpu_card(name: str, source: str = "<hardware>", key: str = "hardware.gpu") -> GpuCard:
    """A GPU card by name from the card search path (solver/inputs/card_library.py)."""
    card: GpuCard = load_card("GPU", name, GpuCard, source, key)
    return card


def _gpu_of(hw: HardwareSpec, source: str) -> tuple[GpuCard, str]:
    if isinstance(hw.gpu, str):
        return load_gpu_card(hw.gpu, source), hw.gpu
    return hw.gpu, "inline"


def _resolve_cluster(hw: HardwareSpec, gpu: GpuCard, source: str, compute: str) -> Cluster:
    gpus_per_node = hw.gpus_per_node or gpu.gpus_per_node
    if hw.max_gpus is not None:
        num_gpus, fixed = hw.max_gpus, False
    else:
        num_gpus, fixed = int(hw.num_nodes or 1) * gpus_per_node, True
    if num_gpus > MAX_GPUS:
        raise InputError(source, "hardware.num_nodes", f"{hw.num_nodes} nodes x {gpus_per_node} "
                         f"GPUs = {num_gpus} GPUs; the limit is {MAX_GPUS}")
    cluster = Cluster(
        gpu=gpu,
        num_gpus=num_gpus,
        gpus_per_node=gpus_per_node,
        fixed=fixed,
        intra_node_bytes_per_s=(hw.intra_node_gb_per_s or gpu.intra_node_gb_per_s) * 1e9,
        inter_node_bytes_per_s=(hw.inter_node_gb_per_s or gpu.inter_node_gb_per_s) * 1e9,
        # condition value > calibrated value for the compute precision > the card's default
        mfu=hw.mfu or (gpu.efficiency[compute].mfu if compute in gpu.efficiency else gpu.mfu),
        memory_bandwidth_utilization=hw.memory_bandwidth_utilization
        or (gpu.efficiency[compute].memory_bandwidth_utilization if compute in gpu.efficiency
            else gpu.memory_bandwidth_utilization),
        layer_overhead_s=(hw.layer_overhead_us if hw.layer_overhead_us is not None
                          else gpu.layer_overhead_us) * 1e-6,
        usable_memory_fraction=hw.usable_memory_fraction,
        runtime_overhead_bytes=hw.runtime_overhead_gb * 1e9,
        collective_latency_s=(hw.collective_latency_us if hw.collective_latency_us is not None
                              else gpu.collective_latency_us) * 1e-6,
        link_bandwidth_utilization=hw.link_bandwidth_utilization or gpu.link_bandwidth_utilization,
        gpu_hour_usd=hw.gpu_hour_usd,
    )
    return cluster


def _check_expert_load(spec: ConditionFile, model: ModelCard, source: str) -> None:
    load, key = spec.workload.expert_load, "workload.expert_load"
    if spec.policy.redundant_experts and not model.is_moe:
        raise InputError(source, "policy.redundant_experts", f"model '{model.name}' has no experts")
    if load is None or isinstance(load, ExpertLoadSpec):
        if load is not None and not model.is_moe:
            raise InputError(source, key, f"model '{model.name}' has no experts")
        return
    if not model.is_moe:
        raise InputError(source, key, f"model '{model.name}' has no experts")
    rows = load if load and isinstance(load[0], list) else [load]
    if load and isinstance(load[0], list) and len(load) != model.num_moe_layers:
        raise InputError(source, key, f"{len(load)} per-layer lists given; the model has "
                         f"{model.num_moe_layers} MoE layers")
    for i, row in enumerate(rows):
        where = f"{key}[{i}]" if len(rows) > 1 else key
        if not isinstance(row, list) or len(row) != model.num_experts:
            size = len(row) if isinstance(row, list) else 1
            raise InputError(source, where, f"{size} loads given; the model has {model.num_experts} "
                             "routed experts")
        if sum(row) <= 0:
            raise InputError(source, where, "the loads sum to zero")


def _workload_for_mode(spec: ConditionFile, source: str) -> WorkloadSpec:
    w = spec.workload
    problem = workload_problem(spec.serving.mode, w)
    if problem:
        raise InputError(source, *problem)
    if w.batch_size is None and w.max_batch_size is None:
        return w.model_copy(update={"max_batch_size": DEFAULT_MAX_NUM_SEQS})
    return w


def build_condition(data: dict[str, Any], source: str, default_name: str) -> Condition:
    """Validate parsed condition data and resolve its cards."""
    if isinstance(data.get("hardware"), dict) and "pools" in data["hardware"]:  # mixed clusters
        from solver.inputs.pools import build_pooled_condition
        return build_pooled_condition(data, source, default_name)
    try:
        spec = ConditionFile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source, ConditionFile) from None
    if isinstance(spec.model, str):
        model, model_ref = load_model_card(spec.model, source), spec.model
    else:
        model, model_ref = spec.model, "inline"
    _check_expert_load(spec, model, source)
    if spec.workload.speculative is not None and model.num_nextn_predict_layers == 0:
        raise InputError(source, "workload.speculative", f"model '{model.name}' has no MTP modules "
                         "(num_nextn_predict_layers); a separate draft model is not modelled")
    workload = _workload_for_mode(spec, source)
    gpu, gpu_ref = _gpu_of(spec.hardware, source)
    compute = compute_precision(spec.precision, gpu, gpu_ref, source)
    cluster = _resolve_cluster(spec.hardware, gpu, source, compute)
    return Condition(
        name=spec.name or default_name,
        source=source,
        model=model,
        model_ref=model_ref,
        gpu_ref=gpu_ref,
        precision=spec.precision,
        compute_precision=compute,
        cluster=cluster,
        workload=workload,
        slo=spec.slo,
        serving=spec.serving,
        objective=spec.objective,
        policy=spec.policy,
        raw=data,
    )


def load_condition(path: Path | str) -> Condition:
    """Read and validate a condition file (YAML or JSON)."""
    path = Path(path)
    text = read_text(path)
    data = parse_mapping(text, str(path))
    return build_condition(data, str(path), path.stem)


def condition_schema() -> dict[str, Any]:
    return ConditionFile.model_json_schema()

