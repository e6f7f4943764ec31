"""Markdown pieces shared by plan.md's sections: tables, signed changes, expert lists, runner-ups."""

from __future__ import annotations

from typing import Any

from solver.document.plan import Plan
from solver.planning.runner_ups import RunnerUp, close_calls


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats with three decimals (none from 1,000 up), pipes escaped."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def signed_change(ratio: float) -> str:
    """A ratio as a signed percentage, with a decimal when the difference is small (+0.3%)."""
    delta = ratio - 1
    return f"{delta:+.1%}" if abs(delta) < 0.095 else f"{delta:+.0%}"


def expert_list(experts: list[int]) -> str:
    """Expert ids, a run of more than two consecutive ones as first-last."""
    if not experts:
        return "-"
    if experts == list(range(experts[0], experts[-1] + 1)) and len(experts) > 2:
        return f"{experts[0]}-{experts[-1]}"
    return ",".join(map(str, experts))


RUNNER_UP_HEADERS = ["family", "best shape", "batch", "TTFT ms", "TPOT ms", "tokens/s/GPU", "objective",
                     "why it lost"]


def family_label(runner_up: RunnerUp) -> str:
    """The family column: a nearest rival is another shape of the chosen plan's own family."""
    return f"{runner_up.family} (same family)" if runner_up.same_family else runner_up.family


def load_label(plan: Plan) -> str:
    """The serving load per replica, as an engine is configured: max-num-seqs and the chunk budget
    (continuous batching, with the operating utilization), or a static batch."""
    serving = plan.serving
    if serving is None or serving.mode != "continuous" or serving.utilization is None:
        return f"batch {plan.batch_size} concurrent sequences"
    return (f"max-num-seqs {serving.max_num_seqs} ({serving.active_sequences:,.1f} active on "
            f"average: utilization {serving.utilization:.2f}), max-num-batched-tokens "
            f"{serving.chunk_tokens}")


def close_call_note(runner_ups: tuple[RunnerUp, ...] | list[RunnerUp] | None) -> str | None:
    """One sentence when a runner-up is within the cost model's stated error: the winner is optimal
    for the cost model, not proven better in practice (None when there is no close call)."""
    close = sorted(close_calls(runner_ups), key=lambda r: r.objective_ratio or 0.0)
    if not close or close[0].band is None:
        return None
    band = close[0].band
    names = ", ".join(r.shape.label for r in close[:3] if r.shape is not None)
    more = f" and {len(close) - 3} more" if len(close) > 3 else ""
    return (f"a close call: {len(close)} runner-up(s) ({names}{more}, closest first) are within the "
            f"cost model's stated error of ±{band.fraction:.1%} ({band.basis}), so this plan is "
            "optimal for the cost model but not proven better in practice; measure the closest "
            "ones under your load before committing")


def why_it_lost(runner_up: RunnerUp) -> str:
    """Its objective against the chosen plan's, and throughput or latency where they are worse;
    a family without a plan says why."""
    r = runner_up
    if r.objective_ratio is None or r.throughput_per_gpu_ratio is None or r.e2e_ratio is None:
        return r.reason
    why = [f"objective {signed_change(r.objective_ratio)}"]
    if r.throughput_per_gpu_ratio < 1:
        why.append(f"throughput/GPU {signed_change(r.throughput_per_gpu_ratio)}")
    if r.e2e_ratio > 1:
        why.append(f"e2e {signed_change(r.e2e_ratio)}")
    text = ", ".join(why)
    if r.close_call and r.band is not None:
        text += f"; CLOSE CALL (within the ±{r.band.fraction:.1%} model error): {r.decides}"
    return text


def runner_up_row(runner_up: RunnerUp) -> list[Any]:
    """One row under RUNNER_UP_HEADERS (TTFT and TPOT in ms)."""
    r, m = runner_up, runner_up.metrics
    if r.shape is None or m is None:
        return [family_label(r), "-", "-", "-", "-", "-", "-", r.reason]
    return [family_label(r), r.shape.label, r.batch_size, m.ttft_s * 1e3, m.tpot_s * 1e3,
            m.throughput_tokens_per_s_per_gpu, m.objective, why_it_lost(r)]
