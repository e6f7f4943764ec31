"""What `paraplan solve` and `paraplan check` print: lines of text (the CLI escapes and echoes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solver.render.writer import dump_json

if TYPE_CHECKING:
    from solver.document.mixed_plan import MixedPlan
    from solver.document.plan import Plan
    from solver.planning.runner_ups import RunnerUp
    from solver.review.check import CheckResult
    from solver.review.regret import Regret
    from solver.runtime.limits import Deadline


def solved_lines(plan: Plan | MixedPlan, seconds: float,
                 runner_ups: tuple[RunnerUp, ...] | None = None) -> list[str]:
    """The plan in three lines: status and shape, latency and throughput, the GPU count; and a
    fourth when a runner-up is within the cost model's stated error (a close call). Disaggregated
    and mixed-cluster plans have lines of their own."""
    from solver.document.plan import Plan
    from solver.render.markdown import close_call_note, load_label

    if not isinstance(plan, Plan):  # a MixedPlan (its module stays unimported for the rest)
        return mixed_lines(plan, seconds)
    if plan.pools is not None:
        return pools_lines(plan, seconds)
    p, m = plan, plan.metrics
    close = close_call_note(runner_ups)
    serving = p.serving
    return [
        f"{p.status}: {p.parallelism.shape().label}, {load_label(p)}, "
        f"{p.gpus.used}/{p.gpus.available} GPUs ({seconds:.2f} s)",
        f"  TTFT {m.ttft_ms:,.1f} ms  TPOT {m.tpot_ms:,.2f} ms  "
        f"{m.throughput_tokens_per_s:,.0f} tok/s ({m.throughput_tokens_per_s_per_gpu:,.1f}/GPU)",
        f"  model divided into {p.gpus.model_parts} parts = {p.gpus.used} GPUs used",
        *([f"  {serving.replicas_for_request_rate} replicas of {p.gpus.used} GPUs "
           f"(= {serving.replicas_for_request_rate * p.gpus.used} GPUs to buy) serve "
           f"workload.request_rate {serving.request_rate:g} requests/s"]
          if serving and serving.replicas_for_request_rate else []),
        *([f"  {close} (plan.md: runner-ups)"] if close else []),
        *comparison_lines(plan),
    ]


def mixed_lines(plan: MixedPlan, seconds: float) -> list[str]:
    """A mixed cluster: status and GPUs, the cluster's throughput and worst latencies, one line per
    replica group (its stages, pools and tensor-parallel sizes)."""
    m = plan.metrics
    replicas = sum(g.count for g in plan.replicas)
    return [f"{plan.status}: mixed cluster, {replicas} replica(s) in {len(plan.replicas)} group(s), "
            f"{plan.gpus.used}/{plan.gpus.available} GPUs ({seconds:.2f} s)",
            f"  worst replica TTFT {m.ttft_ms:,.1f} ms  TPOT {m.tpot_ms:,.2f} ms  "
            f"{m.throughput_tokens_per_s:,.0f} tok/s ({m.throughput_tokens_per_s_per_gpu:,.1f}/GPU of "
            "the cluster)",
            *(f"  {g.count} x {g.template}: {g.metrics.throughput_tokens_per_s:,.0f} tok/s each"
              for g in plan.replicas)]


def pools_lines(plan: Plan, seconds: float) -> list[str]:
    """A disaggregated plan: status and GPUs, the request's metrics with its TTFT parts, one line
    per pool, and serving.mode auto's comparison."""
    from solver.render.pool_facts import settings_words, shape_words

    pools, m = plan.pools, plan.metrics
    assert pools is not None
    lines = [f"{plan.status}: disaggregated, {pools.prefill.gpus} prefill + {pools.decode.gpus} decode = "
             f"{plan.gpus.used}/{plan.gpus.available} GPUs ({seconds:.2f} s)",
             f"  TTFT {m.ttft_ms:,.1f} ms (prefill {pools.ttft_prefill_ms:,.1f} + KV transfer "
             f"{pools.kv_transfer_ms:,.2f} + admission {pools.ttft_admission_ms:,.1f})  TPOT "
             f"{m.tpot_ms:,.2f} ms  {pools.requests_per_s:,.4g} req/s "
             f"({pools.requests_per_s_per_gpu:,.4g}/GPU)"]
    for name, pool, unit in (("prefill", pools.prefill, "input"), ("decode", pools.decode, "output")):
        lines.append(f"  {name} pool: {pool.instances} x {shape_words(pool.plan)} = {pool.gpus} GPUs "
                     f"(GPUs {pool.first_gpu}-{pool.first_gpu + pool.gpus - 1}), "
                     f"{settings_words(name, pool)}; {pool.tokens_per_s_per_gpu:,.1f} {unit} tok/s/GPU")
    return lines + comparison_lines(plan)


def comparison_lines(plan: Plan) -> list[str]:
    """serving.mode auto: both architectures' goodput per GPU (nothing for other modes)."""
    if plan.comparison is None:
        return []
    rates = ", ".join(f"{r.architecture} {r.requests_per_s_per_gpu:,.4g}" if r.requests_per_s_per_gpu
                      is not None else f"{r.architecture} infeasible" for r in plan.comparison.results)
    return [f"  auto: {plan.comparison.winner} wins on goodput (req/s per GPU meeting every SLO): {rates}"]


def time_limit_lines(deadline: Deadline) -> list[str]:
    """When the --time-limit safety net cut a stage short (the result may depend on load)."""
    if not deadline.hits:
        return []
    return [f"  time limit reached ({deadline.limit_s:g} s) in: {', '.join(deadline.hits)}; "
            "the result may depend on machine load (raise --time-limit)"]


def check_json(result: CheckResult, notes: list[str], gap: Regret | None) -> str:
    """`paraplan check --json`."""
    metrics = result.plan.metrics.model_dump() if result.plan else None
    if metrics is not None and result.plan is not None and result.plan.pools is not None:
        metrics["pools"] = pool_metrics(result.plan)
    data: dict[str, Any] = {
        "valid": not result.violations,
        "metrics": metrics,
        "parallelism": result.plan.parallelism.model_dump() if result.plan else None,
        "checks": [c.model_dump() for c in result.checks],
        "notes": notes,
        "regret": gap.as_dict() if gap else None,
    }
    return dump_json(data).rstrip()


def check_lines(result: CheckResult, notes: list[str], gap: Regret | None) -> list[str]:
    """`paraplan check`: the plan's metrics, every violation, the verdict and the regret."""
    failed = result.violations
    lines = [f"note: {note}" for note in notes]
    if result.plan is not None and result.plan.pools is not None:
        lines += pools_lines(result.plan, 0.0)[1:]
    elif result.plan is not None:
        m = result.plan.metrics
        lines.append(f"{result.plan.parallelism.shape().label}, batch {result.plan.batch_size}: "
                     f"TTFT {m.ttft_ms:,.1f} ms, TPOT {m.tpot_ms:,.2f} ms, "
                     f"{m.throughput_tokens_per_s:,.0f} tok/s "
                     f"({m.throughput_tokens_per_s_per_gpu:,.1f}/GPU)")
    lines += [f"VIOLATED {c.name}: {c.value}" + ("" if c.limit.strip() in ("", "-") else
                                                 f" (limit {c.limit})") for c in failed]
    lines.append("valid: every hard constraint holds" if not failed else f"{len(failed)} violation(s)")
    return lines + (gap.lines() if gap else [])


def pool_metrics(plan: Plan) -> dict[str, Any]:
    """`check --json` metrics.pools: each pool's GPU accounting and metrics, and the request's rate."""
    pools, g = plan.pools, plan.gpus
    assert pools is not None
    p, d = pools.prefill, pools.decode

    def accounting(pool: Any) -> dict[str, Any]:
        return {"instances": pool.instances, "gpus_per_instance": pool.plan.gpus.per_replica,
                "gpus": pool.gpus, "first_gpu": pool.first_gpu, "last_gpu": pool.first_gpu + pool.gpus - 1,
                "capacity_requests_per_s": pool.capacity_requests_per_s,
                "parallelism": pool.plan.parallelism.model_dump(), "batch_size": pool.plan.batch_size}

    return {
        "prefill": {**accounting(p), "input_tokens_per_s_per_gpu": p.tokens_per_s_per_gpu,
                    "chunk_tokens": p.plan.serving.chunk_tokens if p.plan.serving else None,
                    "ttft_prefill_ms": pools.ttft_prefill_ms, "kv_transfer_ms": pools.kv_transfer_ms,
                    "ttft_admission_ms": pools.ttft_admission_ms, "ttft_ms": plan.metrics.ttft_ms},
        "decode": {**accounting(d), "output_tokens_per_s_per_gpu": d.tokens_per_s_per_gpu,
                   "tpot_ms": d.plan.metrics.tpot_ms},
        "requests_per_s": pools.requests_per_s, "requests_per_s_per_gpu": pools.requests_per_s_per_gpu,
        "gpus": {"available": g.available, "used": g.used, "idle": g.idle},
    }
