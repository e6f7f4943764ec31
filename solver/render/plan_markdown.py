"""plan.md: the reviewer's document of one plan. Every number comes from the planner's Solution
(the plan, the verifier's rows, the plan's figures and the runner-ups); this module only formats."""

from __future__ import annotations

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.physics.passes import PASS_RATE
from solver.planning.modes import PoolSolution
from solver.planning.planner import Solution
from solver.render.condition_markdown import assumptions_section, condition_section, model_section
from solver.render.display import for_markdown
from solver.render.markdown import (
    RUNNER_UP_HEADERS,
    close_call_note,
    expert_list,
    load_label,
    runner_up_row,
    table,
)
from solver.render.pool_facts import COMPARISON_HEADERS, comparison_rows, comparison_sentence
from solver.render.serving_formulas import continuous_formulas


def plan_markdown(condition: Condition, solution: Solution) -> str:
    """plan.md."""
    return PlanMarkdown(condition, solution).markdown()


class PlanMarkdown:
    """plan.md's sections, in the order a reviewer reads them."""

    def __init__(self, condition: Condition, solution: Solution | PoolSolution) -> None:
        self.condition = condition
        self.solution = solution
        self.plan = solution.plan
        self.figures = solution.figures

    def markdown(self) -> str:
        sections = [
            self._summary(), comparison_section(self.plan), condition_section(self.condition),
            model_section(self.condition, self.figures.model), self._strategy(),
            self._reconciliation(), self._layer_map(), self._memory(), self._metrics_section(),
            self._constraints(), self._balance(), self._experts(), self._devices(),
            self._objective_section(), assumptions_section(self.condition), self._solver_section(),
        ]
        return "\n\n".join(s for s in sections if s) + "\n"

    def pool_sections(self) -> list[str]:
        """A disaggregated pool's own sections, one heading level down (render/pools_markdown.py)."""
        sections = [self._layer_map(), self._memory(), self._constraints(), self._balance(), self._experts()]
        return [s.replace("## ", "### ", 1) for s in sections if s]

    def _summary(self) -> str:
        p, m = self.plan, self.plan.metrics
        close = close_call_note(self.solution.runner_ups)
        status = (f"Status: **{p.status}** ({p.solver.method})." if close is None else
                  f"Status: **{p.status} for the cost model — {close}** ({p.solver.method}; see the "
                  "runner-ups under \"Chosen strategy and why\").")
        return (
            f"# Plan: {for_markdown(p.condition)}\n\n"
            f"**{p.parallelism.shape().label}** on {p.gpus.used} of {p.gpus.available} x "
            f"{for_markdown(p.gpu)}, {self._load_phrase()}. "
            f"{status}\n\n"
            f"TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms, end-to-end {m.e2e_latency_ms:,.0f} ms, "
            f"throughput {m.throughput_tokens_per_s:,.0f} output tokens/s "
            f"({m.throughput_tokens_per_s_per_gpu:,.1f} per GPU)."
            + ("" if self.condition.cluster.fixed else
               f"\n\n**GPUs to buy: {p.gpus.used}** per replica (the planner chose the count, up to "
               f"{p.gpus.available}; add replicas of {p.gpus.used} GPUs to scale throughput linearly).")
        )

    def _load_phrase(self) -> str:
        serving = self.plan.serving
        label = f"{load_label(self.plan)} per replica"
        if serving is None:
            return label
        if serving.mode == "continuous":
            label += f"; {serving.requests_per_s:,.3g} requests/s in all"
        if serving.replicas_for_request_rate is not None:
            label += (f"; **{serving.replicas_for_request_rate} replicas** of it serve the offered "
                      f"{serving.request_rate:g} requests/s (workload.request_rate)")
        elif serving.request_rate is not None:
            label += f", serving the offered {serving.request_rate:g} (workload.request_rate)"
        return label

    def _binding(self) -> list[str]:
        c, m = self.condition, self.plan.metrics
        usable = c.cluster.usable_memory_bytes / 1e9
        fullest = self.figures.per_stage["memory_gb"].max
        notes = [f"memory: fullest GPU at {fullest:.1f} of {usable:.1f} GB usable ({fullest / usable:.0%})"]
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
        if self.solution.runner_ups:
            rows = [runner_up_row(r) for r in self.solution.runner_ups]
            text += ["", "The nearest rivals in this plan's own shape family and the best plan of every "
                     "other family (exact layer split), and why each lost; a rival within the cost "
                     "model's stated error is a close call:", "", table(RUNNER_UP_HEADERS, rows)]
        return "\n".join(text)

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
        return "## Layer map\n\n" + table(
            ["stage", "layers", "count", "also holds", "prefill ms (1 micro-batch)",
             "decode ms (1 step)", "memory GB/GPU"], rows)

    def _memory(self) -> str:
        rows = [[s.stage, s.weights_bytes / 1e9, s.kv_cache_bytes / 1e9, s.activation_bytes / 1e9,
                 s.overhead_bytes / 1e9, s.memory_bytes / 1e9] for s in self.figures.stages]
        return "## Memory per GPU (GB)\n\n" + table(
            ["stage", "weights", "KV cache", "activations", "overhead", "total"], rows) + (
            "\n\n" + self._kv_note())

    def _kv_note(self) -> str:
        w, serving = self.condition.workload, self.plan.serving
        if serving is not None and serving.mode == "decode-only":
            return (f"KV cache is paged (blocks of 16 tokens): each of the {serving.max_num_seqs} "
                    f"decode slots at the mean context ({w.input_tokens} + {w.output_tokens} / 2 "
                    "tokens), one of them at full context; no prompt chunk's workspace.")
        if serving is not None and serving.mode == "continuous":
            return (f"KV cache is paged (blocks of 16 tokens), as engines size it: each of the "
                    f"{serving.max_num_seqs} slots at the mean context ({w.input_tokens} + "
                    f"{w.output_tokens} / 2 tokens), one of them at full context.")
        return ("KV cache is sized for every concurrent sequence at full context "
                f"({w.input_tokens} + {w.output_tokens} tokens).")

    def _metrics_section(self) -> str:
        c = self.figures
        m = c.metrics
        out = self.condition.workload.output_tokens
        serving = self.plan.serving
        lines = continuous_formulas(self.plan, c) if serving and serving.mode == "continuous" else [
            f"- m = {c.decode_microbatches} micro-batch(es) of {c.sequences_per_microbatch} sequences.",
            f"- TTFT = sum(stage prefill) + (m-1) x max(stage prefill) = {c.prefill_sum_ms:,.2f} + "
            f"{c.prefill_microbatches - 1} x {c.prefill_max_ms:,.2f} = **{m.ttft_s * 1e3:,.2f} ms**",
            f"- TPOT = max(sum(stage decode), m x max(stage decode)) = max({c.decode_sum_ms:,.3f}, "
            f"{c.decode_microbatches} x {c.decode_max_ms:,.3f}) = **{m.tpot_s * 1e3:,.3f} ms**",
            f"- e2e = TTFT + {out} x TPOT = **{m.e2e_latency_s * 1e3:,.1f} ms**",
            f"- throughput = dp x B x out / e2e = {self.plan.parallelism.dp} x {self.plan.batch_size} x "
            f"{out} / {m.e2e_latency_s:,.3f} s = **{m.throughput_tokens_per_s:,.1f} tokens/s** "
            f"({m.throughput_tokens_per_s_per_gpu:,.2f} per GPU)",
        ]
        return "\n".join([
            "## Predicted metrics and the formulas used", "", *lines,
            "- Stage time = sum over its layers of each GEMM's FLOPs x depth/(peak x mfu) + "
            "bytes/(HBM x util) (math and weight streaming do not overlap; depth = (1 + 720/K)/(1 + "
            "720/hidden) for a K-deep GEMM), the kernels between the GEMMs (norms, quantization, "
            "rotary, SwiGLU, MoE permute and weighted sum) at their activation bytes/(HBM x util x "
            f"{PASS_RATE:g}, the rate those kernels reach in DeepSeek's H800 trace), "
            "attention's max of FLOPs and bytes, alpha-beta "
            "collectives (TP all-reduce x2 per layer, EP all-to-all dispatch and combine, SP ring KV "
            "exchange overlapped with attention), the card's fitted per-layer overhead "
            f"({self.condition.cluster.layer_overhead_s * 1e6:,.1f} us; twice in a layer run as two "
            "overlapped micro-batches) and the transfer to the next stage "
            "(docs/design.md, \"Cost model\").",
        ])

    def _constraints(self) -> str:
        rows = [[c.name, c.value, c.limit, "pass" if c.passed else "**FAIL**", c.detail]
                for c in self.solution.checks]
        return "## Hard constraints (re-checked by the solver-free verifier)\n\n" + table(
            ["constraint", "value", "limit", "result", "note"], rows)

    def _balance(self) -> str:
        per_gpu, per_stage = self.figures.per_gpu, self.figures.per_stage
        rows = [[q, per_gpu[q].max, per_gpu[q].mean, per_gpu[q].max_over_mean]
                for q in ("prefill_compute_ms", "decode_compute_ms", "memory_gb", "decode_comm_bytes")]
        stage_rows = [[q, per_stage[q].max, per_stage[q].mean, per_stage[q].max_over_mean]
                      for q in ("prefill_ms", "decode_ms", "memory_gb")]
        return ("## Load balance\n\nPer stage (the pipeline runs at the pace of the slowest stage):\n\n"
                + table(["quantity", "max", "mean", "max/mean"], stage_rows)
                + "\n\nPer GPU (balance.csv has every row):\n\n"
                + table(["quantity", "max", "mean", "max/mean"], rows))

    def _experts(self) -> str:
        card, placement, e = self.condition.model, self.plan.expert_placement, self.figures.experts
        if not card.is_moe:
            return ""
        p = self.plan.parallelism
        if placement is None or e is None:
            return ("## Expert placement\n\nUniform load assumed (no workload.expert_load): EP rank r "
                    f"hosts experts [r x {card.num_experts // p.ep}, (r+1) x {card.num_experts // p.ep}) "
                    "of every MoE layer; max/mean token load 1.00.")
        proof = ("proven optimal (to 1e-5 of the layer's tokens) for these replica counts"
                 if placement.proven_optimal else
                 f"best found within the search's work limits; proven lower bound {e.proven_bound:.4f}")
        rows = [
            ["planned placement", f"{placement.max_over_mean_token_load:.4f}", placement.method, proof],
            ["greedy EPLB (heaviest replica to least-loaded GPU)",
             f"{placement.greedy_max_over_mean_token_load:.4f}", "greedy", "same replica counts and slots"],
        ]
        return "\n".join([
            "## Expert placement", "",
            f"{card.num_experts} routed experts + {placement.redundant_experts} redundant slots over "
            f"ep={p.ep} GPUs: {placement.slots_per_gpu} slots per GPU"
            + (" per MoE layer (per-layer loads)" if placement.per_layer else " (same for every MoE layer)")
            + ". Replica counts by water-filling (each extra slot to the expert with the largest load "
            "per replica); replicas packed onto GPUs to minimize the most loaded GPU: greedy, then "
            "swaps off the most loaded GPU, then CP-SAT where a gain of 1% or more is still "
            "possible.", "",
            table(["placement", "max/mean token load", "method", "note"], rows), "",
            f"The planned placement lowers the most loaded GPU's routed tokens by "
            f"{e.gain_over_greedy:.1%} against the greedy. The MoE layer's routed compute and all-to-all "
            "use the most loaded GPU, so this factor multiplies them in TTFT and TPOT.",
            f"Per-GPU share of routed tokens (EP group 0): min {e.share_min:.4f}, max {e.share_max:.4f}, "
            f"mean {e.share_mean:.4f}." if e.share_min is not None else "",
        ])

    def _devices(self) -> str:
        limit = 64
        devices = self.plan.devices[:limit]
        rows = [[d.gpu, d.node, d.local_rank, d.replica, d.stage, d.tp_rank, d.ep_rank,
                 f"{d.first_layer}-{d.last_layer}", expert_list(d.experts), d.memory_gb] for d in devices]
        more = (f"\n\n{len(self.plan.devices) - limit} more GPUs in plan.json and balance.csv."
                if len(self.plan.devices) > limit else "")
        return "## Per-GPU map\n\n" + table(
            ["gpu", "node", "local", "replica", "stage", "tp rank", "ep rank", "layers", "experts",
             "memory GB"], rows) + more

    def _objective_section(self) -> str:
        n, o = self.figures.normalizers, self.condition.objective
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

    def _solver_section(self) -> str:
        s = self.plan.solver
        gap = "-" if s.gap is None else f"{s.gap:.2%}"
        return "\n".join([
            "## Solver", "",
            f"- method {s.method}; objective {s.objective}; best bound {s.best_bound}; gap {gap}",
            f"- candidates (shape x batch): {s.candidates}; in the CP-SAT model: {s.candidates_in_model}",
            "- 'optimal' means proven optimal over the enumerated shapes, the batch grid and every "
            "contiguous layer split, for this cost model.",
            "- searches stopped by a limit: " + ("; ".join(s.limits_hit) or
                                                 "none (every search finished on its own)"),
        ])


def comparison_section(plan: Plan) -> str:
    """serving.mode auto: both architectures' goodput per GPU and which won ('' otherwise)."""
    if plan.comparison is None:
        return ""
    return ("## Aggregated or disaggregated (serving.mode auto)\n\n"
            + comparison_sentence(plan.comparison) + " Each side is planned for the figure it is "
            "compared on: requests/s per GPU at an operating point meeting every SLO.\n\n"
            + table(COMPARISON_HEADERS, comparison_rows(plan.comparison)))
