"""plan.md and report.html of a mixed cluster: which GPU kind holds which layers, each pool's use,
and the comparison with the best single pool and the proportional-split heuristic. Only formats
the numbers of the plan document (document/mixed_plan.py)."""

from __future__ import annotations

import html
import re

from solver.document.mixed_plan import MixedPlan
from solver.inputs.condition import Condition
from solver.render.balance import rows_csv
from solver.render.display import for_markdown as escape_text


def _comparison_lines(plan: MixedPlan) -> list[str]:
    c = plan.baselines
    if c is None:
        return []
    best = c.best_single_pool or "none (no pool alone meets memory and the SLOs)"
    lines = ["## Against one pool alone and a proportional split", "",
             "| plan | tokens/s | vs this plan | replicas |", "|---|---:|---:|---|",
             f"| this plan (mixed, optimal) | {c.mixed_tokens_per_s:,.1f} | 1.00 | "
             f"{'; '.join(f'{g.count} x {g.template}' for g in plan.replicas)} |"]
    for s in c.single_pool:
        ratio = s.tokens_per_s / c.mixed_tokens_per_s if c.mixed_tokens_per_s else 0.0
        lines.append(f"| {escape_text(s.pool)} alone | {s.tokens_per_s:,.1f} | {ratio:.2f} | "
                     f"{'; '.join(s.replicas) or 'infeasible'} |")
    ratio = c.proportional_tokens_per_s / c.mixed_tokens_per_s if c.mixed_tokens_per_s else 0.0
    lines += [f"| proportional split (layers by stage compute) | {c.proportional_tokens_per_s:,.1f} | "
              f"{ratio:.2f} | {'; '.join(c.proportional_replicas) or 'infeasible'} |", "",
              f"Best single pool: {escape_text(best)} at {c.best_single_pool_tokens_per_s:,.1f} "
              f"tokens/s; the proportional-split heuristic reaches {c.proportional_tokens_per_s:,.1f} "
              f"tokens/s. This plan: {c.mixed_tokens_per_s:,.1f} tokens/s.", ""]
    return lines


def mixed_markdown(condition: Condition, plan: MixedPlan) -> str:
    m = plan.metrics
    lines = [f"# Plan: {escape_text(plan.condition)} (mixed cluster)", "",
             f"Status: **{plan.status}** (goodput of every replica under the SLOs, per GPU of the "
             f"whole cluster). Model {escape_text(plan.model)}; {plan.gpus.used} of "
             f"{plan.gpus.available} GPUs used.", "",
             f"Throughput {m.throughput_tokens_per_s:,.1f} tokens/s "
             f"({m.throughput_tokens_per_s_per_gpu:,.2f} per GPU of the cluster); worst replica "
             f"TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms. Requests are split between "
             "replicas in proportion to their capacity.", "",
             "## Pools", "", "| pool | GPU | GPUs used / all | utilization | layer copies held | "
             "share of tokens/s |", "|---|---|---:|---:|---:|---:|"]
    for p in plan.gpu_pools:
        lines.append(f"| {escape_text(p.name)} | {escape_text(p.gpu)} | {p.gpus_used} / {p.num_gpus} | "
                     f"{p.gpus_used / p.num_gpus:.0%} | {p.layers_held} | {p.throughput_share:.0%} |")
    lines += ["", "## Replicas: which GPU kind holds which layers", ""]
    for g in plan.replicas:
        r = g.metrics
        lines += [f"### {g.count} x {escape_text(g.template)}", "",
                  f"max-num-seqs {g.max_num_seqs}, max-num-batched-tokens {g.chunk_tokens}, "
                  f"utilization {g.utilization:g}; per replica {r.throughput_tokens_per_s:,.1f} "
                  f"tokens/s, {r.requests_per_s:,.3f} requests/s, TTFT {r.ttft_ms:,.1f} ms, "
                  f"TPOT {r.tpot_ms:,.2f} ms.", "",
                  "| stage | pool | GPU | TP | layers | mix step ms | chunk step ms | memory GB / usable |",
                  "|---:|---|---|---:|---|---:|---:|---:|"]
        lines += [f"| {s.stage} | {escape_text(s.pool)} | {escape_text(s.gpu)} | {s.tp} | "
                  f"{s.first_layer}-{s.last_layer} ({s.num_layers}) | {s.mix_ms:.3f} | {s.chunk_ms:.3f} | "
                  f"{s.memory_gb:.1f} / {s.usable_memory_gb:.1f} |" for s in g.stages]
        lines.append("")
    lines += _comparison_lines(plan)
    lines += ["## Decision space", "", "Pipeline templates (each pool one run of stages with one "
              "tensor-parallel shape, at most 4 stages), the load of each (max-num-seqs, chunk "
              "budget, utilization on the condition's grids), its layer split and the replica "
              "counts; docs/design.md, \"Mixed clusters\". Solver: "
              f"{plan.solver.candidates} templates, {plan.solver.candidates_in_model} settled.", ""]
    return "\n".join(lines)


def _html_text(markdown_text: str) -> str:
    """Literal text of a Markdown line, escaped once for HTML (for_markdown's entities and
    backslash escapes undone first)."""
    return html.escape(html.unescape(re.sub(r"\\(.)", r"\1", markdown_text.replace("**", ""))))


def mixed_html(condition: Condition, plan: MixedPlan) -> str:
    """report.html: the plan.md tables as HTML (no charts yet)."""
    body, in_table = [], False
    for line in mixed_markdown(condition, plan).splitlines():
        is_row = line.startswith("|")
        if in_table and not is_row:
            body.append("</table>")
        if is_row and not in_table:
            body.append("<table>")
        in_table = is_row
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_html_text(line.lstrip('# '))}</h{level}>")
        elif is_row and not set(line) <= set("|-: "):
            cells = "".join(f"<td>{_html_text(c.strip())}</td>" for c in line.strip("|").split("|"))
            body.append(f"<tr>{cells}</tr>")
        elif line.strip() and not is_row:
            body.append(f"<p>{_html_text(line)}</p>")
    page = "\n".join(body + (["</table>"] if in_table else []))
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(plan.condition)}</title><style>body{{font-family:sans-serif;max-width:1200px;"
            "margin:auto}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:2px 6px}}"
            f"</style></head><body>{page}</body></html>\n")


def mixed_balance_csv(plan: MixedPlan) -> str:
    """balance.csv of a mixed plan: one row per GPU with its pool, card, replica, stage, layers
    and memory (plan.json's device map)."""
    return rows_csv([device.model_dump() for device in plan.devices])
