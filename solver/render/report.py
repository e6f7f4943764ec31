"""Renderers: plan.json, plan.md (the reviewer's document) and balance.csv."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from solver.document.plan import Plan
from solver.document.verify import ConstraintCheck, evaluate_plan_document
from solver.inputs.condition import Condition
from solver.optimize.alternatives import Alternative, best_per_family
from solver.optimize.problem import PlanningProblem
from solver.physics.architecture import Architecture
from solver.physics.cost import CostModel
from solver.physics.evaluate import Normalizers, evaluate_plan
from solver.render.display import for_markdown, markdown_code
from solver.render.writer import dump_json
from solver.runtime.limits import Deadline

if TYPE_CHECKING:
    import pandas as pd

# Where each condition key enters the model (plan.md "Condition" section).
KEY_ROLES: dict[str, str] = {
    "name": "names the plan and its output folder",
    "model": "architecture card: parameters per layer, FLOPs per token, KV bytes per token",
    "precision.weights": "bytes per weight: memory constraint and weight-read time",
    "precision.kv_cache": "bytes per KV element: memory constraint and decode KV reads",
    "precision.activations": "compute precision (peak FLOP/s) and collective message sizes",
    "hardware.gpu": "card: memory, dense peak FLOP/s, HBM bandwidth, link defaults",
    "hardware.num_nodes": "GPU-count constraint (num_nodes x gpus_per_node GPUs)",
    "hardware.gpus_per_node": "node boundary: TP-inside-node rule, intra vs inter-node links",
    "hardware.max_gpus": "GPU-count upper bound; throughput counted per GPU",
    "hardware.intra_node_gb_per_s": "beta of collectives inside a node",
    "hardware.inter_node_gb_per_s": "beta of collectives and pipeline transfers across nodes",
    "hardware.mfu": "compute time = FLOPs / (peak x mfu)",
    "hardware.memory_bandwidth_utilization": "memory time = bytes / (HBM bandwidth x utilization)",
    "hardware.usable_memory_fraction": "memory constraint: per GPU <= memory_gb x fraction",
    "hardware.runtime_overhead_gb": "memory constraint: fixed per-GPU overhead",
    "hardware.collective_latency_us": "alpha of every collective hop",
    "workload.input_tokens": "prefill FLOPs and TTFT; KV cache size",
    "workload.output_tokens": "decode steps (e2e = TTFT + out x TPOT); KV cache size",
    "workload.batch_size": "fixed concurrent sequences per replica (KV memory, step cost)",
    "workload.max_batch_size": "upper end of the batch grid the planner chooses from",
    "workload.prefill_chunk_tokens": "activation workspace in the memory constraint",
    "slo.ttft_ms": "hard constraint on TTFT",
    "slo.tpot_ms": "hard constraint on TPOT",
    "slo.e2e_latency_ms": "hard constraint on end-to-end latency",
    "objective.latency_weight": "weight of e2e / ideal e2e in the objective",
    "objective.throughput_weight": "weight of ideal throughput / throughput in the objective",
    "policy.use_all_gpus": "GPU-count constraint: all GPUs used, or idle GPUs allowed",
    "policy.tp_within_node": "placement rule: a TP group stays inside one node",
    "assumptions": "listed under Assumptions; no effect on the model",
}


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and not (prefix in ("model", "hardware.gpu") and prefix):
        rows: list[tuple[str, Any]] = []
        for key, value in data.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, data)]


def _role(key: str) -> str:
    if key in KEY_ROLES:
        return KEY_ROLES[key]
    if key.startswith("policy."):
        return "restricts the enumerated degrees of that dimension"
    head = key.split(".")[0]
    return KEY_ROLES.get(head, "recorded")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class PlanReport:
    """Everything plan.md says, computed once from the condition, plan and verifier rows."""

    def __init__(self, condition: Condition, plan: Plan, checks: list[ConstraintCheck],
                 problem: PlanningProblem | None = None, deadline: Deadline | None = None) -> None:
        self.condition = condition
        self.plan = plan
        self.checks = checks
        self.problem = problem
        self.deadline = deadline  # the run's --time-limit: the runner-up search stops at it
        self.model = CostModel(condition)
        self.arch: Architecture = self.model.arch
        self.normalizers = Normalizers.of(condition, self.model)
        # the plan as written, expert placement included (the numbers plan.json reports)
        self.costs, self.stages, self.metrics = evaluate_plan_document(condition, plan)

    # ---- sections -------------------------------------------------------------------------------
    def markdown(self) -> str:
        sections = [
            self._summary(), self._condition_section(), self._model_section(), self._strategy(),
            self._reconciliation(), self._layer_map(), self._memory(), self._metrics_section(),
            self._constraints(), self._balance(), self._experts(), self._devices(),
            self._objective_section(),
            self._assumptions(), self._solver_section(),
        ]
        return "\n\n".join(s for s in sections if s) + "\n"

    def _summary(self) -> str:
        p, m = self.plan, self.plan.metrics
        return (
            f"# Plan: {for_markdown(p.condition)}\n\n"
            f"**{p.parallelism.shape().label}**, batch {p.batch_size} concurrent sequences per "
            f"replica, on {p.gpus.used} of {p.gpus.available} x {for_markdown(p.gpu)}. "
            f"Status: **{p.status}** ({p.solver.method}).\n\n"
            f"TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms, end-to-end {m.e2e_latency_ms:,.0f} ms, "
            f"throughput {m.throughput_tokens_per_s:,.0f} output tokens/s "
            f"({m.throughput_tokens_per_s_per_gpu:,.1f} per GPU)."
            + ("" if self.condition.cluster.fixed else
               f"\n\n**GPUs to buy: {p.gpus.used}** per replica (the planner chose the count, up to "
               f"{p.gpus.available}; add replicas of {p.gpus.used} GPUs to scale throughput linearly).")
        )

    def _condition_section(self) -> str:
        rows = [[for_markdown(k), f"{len(v)} items (see Assumptions)" if k == "assumptions" else
                 for_markdown(v) if isinstance(v, str) else v, _role(k)]
                for k, v in _flatten(self.condition.raw)]
        c, precision = self.condition.cluster, self.condition.precision
        effective = [
            ["GPU card", f"{for_markdown(c.gpu.name)}: {c.gpu.memory_gb:g} GB, {c.gpu.hbm_tb_per_s:g} TB/s, "
             f"dense TFLOPS {dict(c.gpu.dense_tflops)}"],
            ["GPUs available", f"{c.num_gpus} ("
             + ("fixed cluster" if c.fixed else "planner chooses up to this")
             + f"), {c.gpus_per_node} per node"],
            ["links", f"intra-node {c.intra_node_bytes_per_s / 1e9:g} GB/s, inter-node "
             f"{c.inter_node_bytes_per_s / 1e9:g} GB/s per GPU per direction, alpha "
             f"{c.collective_latency_s * 1e6:g} us"],
            ["efficiencies", f"mfu {c.mfu:g}, memory bandwidth utilization "
             f"{c.memory_bandwidth_utilization:g}, per-layer overhead {c.layer_overhead_s * 1e6:g} us"],
            ["usable memory", f"{c.usable_memory_bytes / 1e9:.2f} GB per GPU "
             f"({c.usable_memory_fraction:g} x {c.gpu.memory_gb:g} GB)"],
            ["precision", f"weights {precision.weights}, KV {precision.kv_cache}, "
             f"activations/compute {precision.activations}"],
        ]
        return ("## Condition (every field, and where it entered the model)\n\n"
                f"Source: {markdown_code(self.condition.source)}\n\n"
                + _table(["key", "value", "enters the model as"], rows)
                + "\n\nEffective values after resolving cards and defaults:\n\n"
                + _table(["item", "value"], effective))

    def _model_section(self) -> str:
        card, a = self.condition.model, self.arch
        rows = [
            ["layers", card.num_hidden_layers, "hidden", card.hidden_size],
            ["attention heads / KV heads", f"{card.num_attention_heads} / {card.kv_heads}",
             "attention", "MLA" if card.is_mla else "GQA"],
            ["experts (top-k)",
             f"{card.num_experts} ({card.num_experts_per_tok})" if card.is_moe else "dense",
             "vocab", card.vocab_size],
            ["total parameters", f"{a.total_params / 1e9:.2f} B", "active per token",
             f"{a.active_params / 1e9:.2f} B"],
            ["KV per token per layer", f"{a.kv_elements_per_token_per_layer} elements", "layer kinds",
             ", ".join(f"{k.label} x{a.layer_kinds.count(k)}" for k in a.distinct_kinds)],
        ]
        return (f"## Model: {for_markdown(card.name)} ({for_markdown(self.condition.model_ref)})\n\n"
                + _table(
            ["", "", "", ""], rows))

    def _binding(self) -> list[str]:
        c, m = self.condition, self.plan.metrics
        usable = c.cluster.usable_memory_bytes / 1e9
        notes = [f"memory: fullest GPU at {max(s.memory_gb for s in self.plan.stages):.1f} of "
                 f"{usable:.1f} GB usable ({max(s.memory_gb for s in self.plan.stages) / usable:.0%})"]
        for name, value, limit in (("TTFT", m.ttft_ms, c.slo.ttft_ms), ("TPOT", m.tpot_ms, c.slo.tpot_ms),
                                   ("e2e", m.e2e_latency_ms, c.slo.e2e_latency_ms)):
            if limit:
                notes.append(f"{name}: {value:,.1f} of {limit:g} ms ({value / limit:.0%} of the SLO)")
        return notes

    def _strategy(self) -> str:
        p = self.plan
        text = [
            "## Chosen strategy and why",
            "",
            f"- Shape: {p.parallelism.shape().label} (tp={p.parallelism.tp}, pp={p.parallelism.pp}, "
            f"dp={p.parallelism.dp}, ep={p.parallelism.ep}, etp={p.parallelism.etp}, "
            f"attn_dp={p.parallelism.attn_dp}, sp={p.parallelism.sp}); batch {p.batch_size} per replica "
            f"in {p.microbatches} micro-batch(es).",
            "- How close each hard limit is: " + "; ".join(self._binding()) + ".",
        ]
        if p.solver.candidates_removed:
            removed = ", ".join(f"{k}: {v}" for k, v in p.solver.candidates_removed.items())
            text.append(f"- Of {p.solver.candidates} candidates (shape x batch), removed before the "
                        f"CP-SAT model by proven bounds: {removed}; {p.solver.candidates_in_model} "
                        "entered the model.")
        alternatives = self._alternatives()
        if alternatives:
            text += ["", "Best plan of every other shape family (exact layer split), and why it lost:", "",
                     alternatives]
        return "\n".join(text)

    def _alternatives(self) -> str:
        if self.problem is None:
            return ""
        shape = self.plan.parallelism.shape()
        index = self.problem.index_of(shape, self.plan.batch_size)
        if index is None:
            return ""
        chosen = self.problem.table(index)
        rows = [self._alternative_row(a) for a in best_per_family(self.problem, chosen, self.deadline)]
        return _table(["family", "best shape", "batch", "TTFT ms", "TPOT ms", "tokens/s/GPU",
                       "objective", "why it lost"], rows) if rows else ""

    def _alternative_row(self, alt: Alternative) -> list[Any]:
        if alt.table is None or alt.objective is None:
            return [alt.family, "-", "-", "-", "-", "-", "-", alt.reason]
        shape, batch = alt.table.costs.shape, alt.table.costs.batch_size
        assert self.problem is not None  # alternatives exist only with the problem at hand
        layout = self.problem.cost_model.expert_layout(shape.ep)  # the placement the solver costed
        _, _, met = evaluate_plan(self.condition, shape, batch, alt.boundaries, layout)
        ours = self.plan.metrics
        why = [f"objective {_change(met.objective / ours.objective)}"]
        ratio = met.throughput_tokens_per_s_per_gpu / ours.throughput_tokens_per_s_per_gpu
        if ratio < 1:
            why.append(f"throughput/GPU {_change(ratio)}")
        if met.e2e_latency_s * 1e3 > ours.e2e_latency_ms:
            why.append(f"e2e {_change(met.e2e_latency_s * 1e3 / ours.e2e_latency_ms)}")
        return [alt.family, shape.label, batch, met.ttft_s * 1e3, met.tpot_s * 1e3,
                met.throughput_tokens_per_s_per_gpu, met.objective, ", ".join(why)]

    def _reconciliation(self) -> str:
        g, p = self.plan.gpus, self.plan.parallelism
        idle = f", {g.idle} idle (allowed by policy)" if g.idle else ""
        return ("## Reconciliation\n\n"
                f"Model divided into **{g.model_parts} parts** = dp {p.dp} x pp {p.pp} x "
                f"(tp {p.tp} x attn_dp {p.attn_dp} x sp {p.sp}) = **{g.used} GPUs used** "
                f"(of {g.available} available{idle}); each GPU holds exactly one part.")

    def _layer_map(self) -> str:
        rows = [[s.stage, f"{s.first_layer}-{s.last_layer}", s.num_layers,
                 ("embedding " if s.holds_embedding else "") + ("LM head" if s.holds_lm_head else ""),
                 s.prefill_ms, s.decode_ms, s.memory_gb] for s in self.plan.stages]
        return "## Layer map\n\n" + _table(
            ["stage", "layers", "count", "also holds", "prefill ms (1 micro-batch)",
             "decode ms (1 step)", "memory GB/GPU"], rows)

    def _memory(self) -> str:
        rows = [[s.stage, s.weights_bytes / 1e9, s.kv_cache_bytes / 1e9, s.activation_bytes / 1e9,
                 s.overhead_bytes / 1e9, s.memory_bytes / 1e9] for s in self.stages]
        return "## Memory per GPU (GB)\n\n" + _table(
            ["stage", "weights", "KV cache", "activations", "overhead", "total"], rows) + (
            "\n\nKV cache is sized for every concurrent sequence at full context "
            f"({self.condition.workload.input_tokens} + {self.condition.workload.output_tokens} tokens).")

    def _metrics_section(self) -> str:
        m, c = self.metrics, self.costs
        prefill = [s.prefill_s * 1e3 for s in self.stages]
        decode = [s.decode_s * 1e3 for s in self.stages]
        out = self.condition.workload.output_tokens
        return "\n".join([
            "## Predicted metrics and the formulas used", "",
            f"- m = {c.microbatches} micro-batch(es) of {c.point.sequences_per_microbatch} sequences.",
            f"- TTFT = sum(stage prefill) + (m-1) x max(stage prefill) = {sum(prefill):,.2f} + "
            f"{c.microbatches - 1} x {max(prefill):,.2f} = **{m.ttft_s * 1e3:,.2f} ms**",
            f"- TPOT = max(sum(stage decode), m x max(stage decode)) = max({sum(decode):,.3f}, "
            f"{c.microbatches} x {max(decode):,.3f}) = **{m.tpot_s * 1e3:,.3f} ms**",
            f"- e2e = TTFT + {out} x TPOT = **{m.e2e_latency_s * 1e3:,.1f} ms**",
            f"- throughput = dp x B x out / e2e = {self.plan.parallelism.dp} x {self.plan.batch_size} x "
            f"{out} / {m.e2e_latency_s:,.3f} s = **{m.throughput_tokens_per_s:,.1f} tokens/s** "
            f"({m.throughput_tokens_per_s_per_gpu:,.2f} per GPU)",
            "- Stage time = sum over its layers of max(FLOPs/(peak x mfu), bytes/(HBM x util)) per "
            "operator + alpha-beta collectives (TP all-reduce x2 per layer, EP all-to-all dispatch and "
            "combine, SP ring KV exchange overlapped with attention) + transfer to the next stage.",
        ])

    def _constraints(self) -> str:
        rows = [[c.name, c.value, c.limit, "pass" if c.passed else "**FAIL**", c.detail]
                for c in self.checks]
        return "## Hard constraints (re-checked by the solver-free verifier)\n\n" + _table(
            ["constraint", "value", "limit", "result", "note"], rows)

    def _balance(self) -> str:
        per_gpu = balance_rows(self.plan)
        rows = []
        for column in ("prefill_compute_ms", "decode_compute_ms", "memory_gb", "decode_comm_bytes"):
            values = [row[column] for row in per_gpu]
            mean, top = sum(values) / len(values), max(values)
            rows.append([column, top, mean, top / mean if mean else 1.0])
        stage_rows = []
        for name in ("prefill_ms", "decode_ms", "memory_gb"):
            values = [getattr(s, name) for s in self.plan.stages]
            mean = sum(values) / len(values)
            stage_rows.append([name, max(values), mean, max(values) / mean if mean else 1.0])
        return ("## Load balance\n\nPer stage (the pipeline runs at the pace of the slowest stage):\n\n"
                + _table(["quantity", "max", "mean", "max/mean"], stage_rows)
                + "\n\nPer GPU (balance.csv has every row):\n\n"
                + _table(["quantity", "max", "mean", "max/mean"], rows))

    def _experts(self) -> str:
        card, placement = self.condition.model, self.plan.expert_placement
        if not card.is_moe:
            return ""
        p = self.plan.parallelism
        if placement is None:
            return ("## Expert placement\n\nUniform load assumed (no workload.expert_load): EP rank r "
                    f"hosts experts [r x {card.num_experts // p.ep}, (r+1) x {card.num_experts // p.ep}) "
                    "of every MoE layer; max/mean token load 1.00.")
        shares = [d.expert_token_share or 0.0 for d in self.plan.devices
                  if (d.replica, d.stage, d.etp_rank) == (0, 0, 0)]
        proof = ("proven optimal (to 1e-5 of the layer's tokens) for these replica counts"
                 if placement.proven_optimal else
                 f"best found within the search's work limits; proven lower bound {self._bound():.4f}")
        rows = [
            ["planned placement", f"{placement.max_over_mean_token_load:.4f}", placement.method, proof],
            ["greedy EPLB (heaviest replica to least-loaded GPU)",
             f"{placement.greedy_max_over_mean_token_load:.4f}", "greedy", "same replica counts and slots"],
        ]
        gain = placement.greedy_max_over_mean_token_load / placement.max_over_mean_token_load - 1
        return "\n".join([
            "## Expert placement", "",
            f"{card.num_experts} routed experts + {placement.redundant_experts} redundant slots over "
            f"ep={p.ep} GPUs: {placement.slots_per_gpu} slots per GPU"
            + (" per MoE layer (per-layer loads)" if placement.per_layer else " (same for every MoE layer)")
            + ". Replica counts by water-filling (each extra slot to the expert with the largest load "
            "per replica); replicas packed onto GPUs to minimize the most loaded GPU: greedy, then "
            "swaps off the most loaded GPU, then CP-SAT where a gain of 1% or more is still "
            "possible.", "",
            _table(["placement", "max/mean token load", "method", "note"], rows), "",
            f"The planned placement lowers the most loaded GPU's routed tokens by {gain:.1%} against the "
            "greedy. The MoE layer's routed compute and all-to-all use the most loaded GPU, so this "
            "factor multiplies them in TTFT and TPOT.",
            f"Per-GPU share of routed tokens (EP group 0): min {min(shares):.4f}, max {max(shares):.4f}, "
            f"mean {sum(shares) / len(shares):.4f}." if shares else "",
        ])

    def _limits_hit(self) -> list[str]:
        """The plan's own, and those of this rendering (the runner-up search)."""
        return plan_with_run_limits(self.plan, self.deadline).solver.limits_hit

    def _bound(self) -> float:
        if self.problem is None:
            return 1.0
        placement = self.problem.placements.get(self.plan.parallelism.ep)
        return placement.bound_imbalance if placement else 1.0

    def _devices(self) -> str:
        limit = 64
        devices = self.plan.devices[:limit]
        rows = [[d.gpu, d.node, d.local_rank, d.replica, d.stage, d.tp_rank, d.ep_rank,
                 f"{d.first_layer}-{d.last_layer}", _experts(d.experts), d.memory_gb] for d in devices]
        more = (f"\n\n{len(self.plan.devices) - limit} more GPUs in plan.json and balance.csv."
                if len(self.plan.devices) > limit else "")
        return "## Per-GPU map\n\n" + _table(
            ["gpu", "node", "local", "replica", "stage", "tp rank", "ep rank", "layers", "experts",
             "memory GB"], rows) + more

    def _objective_section(self) -> str:
        n, o = self.normalizers, self.condition.objective
        m = self.plan.metrics
        per = " per GPU" if n.per_gpu else ""
        return "\n".join([
            "## Objective", "",
            f"minimize {o.latency_weight:g} x e2e / ideal_e2e + {o.throughput_weight:g} x "
            f"ideal_throughput / throughput{per}",
            "",
            f"- ideal_e2e = {n.ideal_e2e_s * 1e3:,.2f} ms: one sequence with prefill at the summed "
            "compute and decode at the summed HBM bandwidth of all available GPUs, no communication.",
            f"- ideal_throughput = {n.ideal_throughput_tokens_per_s:,.0f} tokens/s{per}: every GPU "
            "compute-bound at 2 x active parameters FLOPs per token.",
            f"- value for this plan: {m.objective:.4f} (both terms are >= 1 for any real plan).",
        ])

    def _assumptions(self) -> str:
        return "\n".join([
            "## Assumptions", "",
            "- Static batching: a replica prefills its batch, then decodes it; with pp > 1 the batch "
            "is split into min(pp, B) micro-batches that keep every stage busy.",
            "- TPOT uses the mean decode context (input + output/2); KV memory uses the full context.",
            "- MoE: routed tokens spread uniformly over the expert grid; a decode step reads the "
            "distinct experts its tokens touch, E(1-(1-k/E)^tokens).",
            "- Efficiencies (mfu, memory bandwidth utilization, per-layer overhead) come from the "
            "condition, else the card's calibration for the compute precision, else the card's "
            "defaults. The h100, h200, gh200, a100 and l40s cards are calibrated against 574 "
            "published TensorRT-LLM/NIM measurements (docs/calibration/measured.csv); on held-out "
            "measurements the median absolute error is 12% for output throughput, 13% for TTFT and "
            "17% for inter-token latency (90th percentile 34%, 33%, 67%), and it is larger for MoE "
            "models at TP >= 4, multi-GPU PCIe servers, loads near saturation and small-batch "
            "latency on A100/L40S (docs/accuracy.md).",
            f"- This card ({for_markdown(self.condition.cluster.gpu.name)}): "
            f"{self.condition.cluster.gpu.calibration or 'not calibrated (spec-sheet defaults)'}; "
            f"per-layer overhead {self.condition.cluster.layer_overhead_s * 1e6:.1f} us.",
            "- Collectives are ring algorithms; a group within one node uses the intra-node link, "
            "otherwise the per-GPU network bandwidth.",
        ] + self._imported_assumptions())

    def _imported_assumptions(self) -> list[str]:
        """Defaults an importer had to assume for this condition (condition key `assumptions`)."""
        given = self.condition.raw.get("assumptions") or []
        if not given:
            return []
        return ["", "Assumed by the importer (not stated in the source; each is also a comment in "
                "the imported YAML):", ""] + [f"- {for_markdown(item)}" for item in given]

    def _solver_section(self) -> str:
        s = self.plan.solver
        gap = "-" if s.gap is None else f"{s.gap:.2%}"
        return "\n".join([
            "## Solver", "",
            f"- method {s.method}; objective {s.objective}; best bound {s.best_bound}; gap {gap}",
            f"- candidates (shape x batch): {s.candidates}; in the CP-SAT model: {s.candidates_in_model}",
            "- 'optimal' means proven optimal over the enumerated shapes, the batch grid and every "
            "contiguous layer split, for this cost model.",
            "- searches stopped by a limit: " + ("; ".join(self._limits_hit()) or
                                                 "none (every search finished on its own)"),
        ])


def _change(ratio: float) -> str:
    """A ratio as a signed percentage, with a decimal when the difference is small (+0.3%)."""
    delta = ratio - 1
    return f"{delta:+.1%}" if abs(delta) < 0.095 else f"{delta:+.0%}"


def _experts(experts: list[int]) -> str:
    if not experts:
        return "-"
    if experts == list(range(experts[0], experts[-1] + 1)) and len(experts) > 2:
        return f"{experts[0]}-{experts[-1]}"
    return ",".join(map(str, experts))


def balance_rows(plan: Plan) -> list[dict[str, int | float]]:
    """One row per GPU (balance.csv): placement, compute, memory and communication."""
    return [{
        "gpu": d.gpu, "node": d.node, "replica": d.replica, "stage": d.stage,
        "tp_rank": d.tp_rank, "ep_rank": d.ep_rank, "first_layer": d.first_layer,
        "last_layer": d.last_layer, "num_experts": len(d.experts),
        "expert_token_share": d.expert_token_share if d.expert_token_share is not None else 0.0,
        "prefill_compute_ms": d.prefill_compute_ms, "decode_compute_ms": d.decode_compute_ms,
        "memory_gb": d.memory_gb, "weights_gb": d.memory_breakdown_gb.weights,
        "kv_cache_gb": d.memory_breakdown_gb.kv_cache,
        "prefill_comm_bytes": d.prefill_comm_bytes, "decode_comm_bytes": d.decode_comm_bytes,
    } for d in plan.devices]


def balance_frame(plan: Plan) -> pd.DataFrame:
    """balance_rows as a DataFrame (batch summaries); pandas is imported only here."""
    import pandas as pd

    return pd.DataFrame(balance_rows(plan))


def balance_csv(plan: Plan) -> str:
    """balance.csv without pandas (a solve does not import it): floats with 6 significant digits."""
    rows = balance_rows(plan)
    columns = list(rows[0]) if rows else []
    floats = {c for c in columns if any(isinstance(row[c], float) for row in rows)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([f"{row[c]:.6g}" if c in floats else row[c] for c in columns])
    return buffer.getvalue()


def plan_json(plan: Plan) -> str:
    """plan.json: deterministic (no wall time), byte-identical run to run."""
    return dump_json(plan.model_dump(mode="json"))


def plan_with_run_limits(plan: Plan, deadline: Deadline | None) -> Plan:
    """The plan with every stage the run's deadline cut short so far (rendering included)."""
    if deadline is None:
        return plan
    hits = [f"time limit: {stage}" for stage in deadline.hits]
    missing = [h for h in hits if h not in plan.solver.limits_hit]
    if not missing:
        return plan
    solver = plan.solver.model_copy(update={"limits_hit": [*plan.solver.limits_hit, *missing]})
    return plan.model_copy(update={"solver": solver})


def render_all(condition: Condition, plan: Plan, checks: list[ConstraintCheck],
               problem: PlanningProblem | None, deadline: Deadline | None = None) -> dict[str, str]:
    """plan.md (its runner-up table stops at the deadline), then plan.json recording that."""
    markdown = PlanReport(condition, plan, checks, problem, deadline).markdown()
    plan = plan_with_run_limits(plan, deadline)
    return {"plan.json": plan_json(plan), "plan.md": markdown, "balance.csv": balance_csv(plan)}
