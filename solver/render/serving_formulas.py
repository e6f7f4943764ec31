"""plan.md's formulas for continuous batching: the steady state the engine settles in and each
metric as the linear form of step rounds the planner optimized (physics/continuous.py), with the
plan's own numbers in place."""

from __future__ import annotations

from solver.document.plan import Plan
from solver.physics.serving import MAX, ROUND, SUM, LinearForm, PipelineAggregates
from solver.planning.figures import PlanFigures

_AGGREGATE = {SUM: "S", MAX: "M", ROUND: "R"}


def _terms(form: LinearForm, aggregates: PipelineAggregates) -> tuple[str, str]:
    """'k x R_chunk + w x R_mix' and the same with the numbers in ms."""
    names, numbers = [], []
    for step, which, coefficient in form.terms:
        if coefficient == 0:
            continue
        names.append(f"{coefficient:,.6g} x {_AGGREGATE[which]}_{step}")
        numbers.append(f"{coefficient:,.6g} x {aggregates.get(step, which) * 1e3:,.3f}")
    return " + ".join(names) or "0", " + ".join(numbers) or "0"


def continuous_formulas(plan: Plan, figures: PlanFigures) -> list[str]:
    """The bullet lines of "Predicted metrics and the formulas used" in continuous mode."""
    point, agg, serving = figures.point, figures.aggregates, plan.serving
    state, m = point.state, figures.metrics
    assert serving is not None and state is not None
    steps = {name: agg.get(name, ROUND) * 1e3 for name in point.steps}
    lines = [
        f"- Engine settings per replica: max-num-seqs C = {serving.max_num_seqs}, max-num-batched-"
        f"tokens T = {serving.chunk_tokens}; at utilization u = {serving.utilization:.2f}, "
        f"N = u C = {serving.active_sequences:,.1f} sequences are active on average"
        + ("." if int(state.microbatches) == 1 else
           f", in m = {int(state.microbatches)} micro-batches (virtual engines: the pipeline "
           "stages take turns)."),
        f"- Per micro-batch and step: D = {float(state.decode_seqs):,.1f} decoding sequences and "
        f"P = {float(state.prefill_tokens):,.1f} prompt tokens on average; a prompt of "
        f"{point.input_tokens} tokens takes k = {int(state.prefill_steps)} step(s) at the room the "
        f"decodes leave (T - D), and a request holds its slot L = k + O - 1 = "
        f"{int(state.steps_per_request)} steps.",
        "- Step kinds: **mix** = D decodes + P prompt tokens (the average step); **chunk** = D "
        f"decodes + {float(state.chunk_tokens):,.0f} prompt tokens (a step carrying a request's own "
        f"chunk). {serving.prefill_step_share:.0%} of steps carry prompt tokens.",
        "- A round of a step kind is R = max(S, m x M) over the stages (S: sum of the stages' "
        "times, M: the slowest stage): "
        + ", ".join(f"R_{name} = {ms:,.3f} ms" for name, ms in steps.items()) + ".",
    ]
    for label, form, value, digits in (
        (f"TTFT ({serving.percentile})", point.ttft, m.ttft_s, 2),
        (f"TPOT, inter-token ({serving.percentile})", point.tpot, m.tpot_s, 3),
        ("e2e (mean)", point.e2e, m.e2e_latency_s, 1),
    ):
        names, numbers = _terms(form, agg)
        lines.append(f"- {label} = {names} = {numbers} = **{value * 1e3:,.{digits}f} ms**")
    names, numbers = _terms(point.seconds_per_token_form(), agg)
    lines += [
        "- TTFT waits for its own k chunk steps, the next step, and a free slot (Erlang C for "
        "random arrivals at u); the coefficients of R_mix are those waits in rounds.",
        f"- seconds per {serving.throughput_counts.removesuffix('s')} and replica = L / (N x "
        f"{'O' if serving.throughput_counts == 'output tokens' else 'I'}) rounds: {names} = "
        f"{numbers} ms; throughput = dp / that = "
        f"**{m.throughput_tokens_per_s:,.1f} {serving.throughput_counts}/s** "
        f"({m.throughput_tokens_per_s_per_gpu:,.2f} per GPU), "
        f"{serving.requests_per_s:,.3g} requests/s.",
    ]
    return lines
