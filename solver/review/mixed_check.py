"""`check` of a mixed plan: the `replicas` block of a mixed plan.json (or the same shape written
by hand) graded on the condition's pools.

    replicas:
      - count: 2
        stages: [{pool: h100-sxm-80gb, tp: 4, num_layers: 50}, {pool: a100-sxm-80gb, tp: 4, num_layers: 30}]
        max_num_seqs: 64          # optional with chunk_tokens and utilization: else the best load
        chunk_tokens: 4096        # of the condition's grids for this split
        utilization: 0.9

Keys plan.json derives (template, gpus_per_replica, metrics, a stage's gpu, first_layer, ...)
are accepted and ignored. Each group is evaluated by the float evaluator on its own cards and
re-checked by the mixed verifier (memory per stage on its card, SLOs, GPUs per pool)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from solver.document.mixed_build import build_mixed_plan
from solver.document.mixed_plan import GroupChoice, MixedPlan
from solver.document.mixed_verify import Row, verify_mixed
from solver.document.plan import SolverInfo
from solver.errors import InputError
from solver.inputs.condition import Condition
from solver.inputs.loading import validation_error
from solver.optimize.mixed_search import build_mixed_problem
from solver.optimize.mixed_tables import replica_table, replica_value, split_values
from solver.physics.continuous import ContinuousLoad
from solver.physics.mixed import StageOption, Template

_LOOSE = ConfigDict(frozen=True, extra="ignore")


class GivenStage(BaseModel):
    model_config = _LOOSE
    pool: str
    tp: int = Field(gt=0)
    ep: int = Field(default=1, gt=0)
    etp: int = Field(default=1, gt=0)
    num_layers: int = Field(gt=0)


class GivenGroup(BaseModel):
    model_config = _LOOSE
    count: int = Field(gt=0)
    stages: list[GivenStage] = Field(min_length=1)
    max_num_seqs: int | None = Field(default=None, gt=0)
    chunk_tokens: int | None = Field(default=None, gt=0)
    utilization: float | None = Field(default=None, gt=0, lt=1)


class GivenMixedPlan(BaseModel):
    model_config = _LOOSE
    replicas: list[GivenGroup] = Field(min_length=1)
    source: str = "PLAN"  # the file it was read from (messages)


def parse_mixed_plan(data: dict[str, Any], source: str) -> GivenMixedPlan:
    try:
        return GivenMixedPlan.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise validation_error(exc, source, GivenMixedPlan) from None


def _template(cond: Condition, group: GivenGroup, g: int, source: str) -> Template:
    names = {p.name: p.index for p in cond.mixed.pools}
    stages = []
    for s, stage in enumerate(group.stages):
        if stage.pool not in names:
            raise InputError(source, f"replicas[{g}].stages[{s}].pool",
                             f"no pool {stage.pool!r}; the condition's pools: {', '.join(names)}")
        stages.append(StageOption(names[stage.pool], stage.tp, stage.ep, stage.etp))
    return Template(tuple(stages))


def _best_load(cond: Condition, template: Template, boundaries: list[int]) -> ContinuousLoad | None:
    """The load of the condition's grids with the most throughput for this fixed split (memory
    and SLOs met), as the planner would run it; None when no load is feasible."""
    problem = build_mixed_problem(cond.mixed)
    counts = [problem.layers.counts(boundaries[s], boundaries[s + 1]) for s in range(template.pp)]
    if template.pp not in problem.grids.loads:
        return None
    best: tuple[int, int] | None = None
    for i in range(len(problem.grids.loads[template.pp])):
        table = replica_table(problem.grids, template, i)
        ok, aggregates = split_values(table, counts)
        if ok:
            value = replica_value(table.spt_coefficient, aggregates["round_mix"])
            best = (value, i) if best is None or value > best[0] else best
    return None if best is None else problem.grids.loads[template.pp].load(best[1])


def _choice(cond: Condition, group: GivenGroup, g: int, source: str) -> GroupChoice:
    template = _template(cond, group, g, source)
    bounds = [0]
    for stage in group.stages:
        bounds.append(bounds[-1] + stage.num_layers)
    given = (group.max_num_seqs, group.chunk_tokens, group.utilization)
    if None not in given:
        load = ContinuousLoad(int(given[0]), float(given[2]), int(given[1]))  # type: ignore[arg-type]
    else:
        load = _best_load(cond, template, bounds) if bounds[-1] == cond.model.num_hidden_layers else None
        if load is None:  # no feasible load: graded at the grid's smallest, to name what breaks
            load = ContinuousLoad(1, 0.5, 2048)
    return GroupChoice(template=template, count=group.count, load=load, boundaries=tuple(bounds))


def grade_mixed(cond: Condition, given: GivenMixedPlan, source: str) -> tuple[MixedPlan, list[Row]]:
    """The given plan evaluated as a MixedPlan (status 'checked') and every verifier row."""
    choices = [_choice(cond, group, g, source) for g, group in enumerate(given.replicas)]
    info = SolverInfo(method="check", objective=None, best_bound=None, gap=None, candidates=0,
                      candidates_in_model=0, candidates_removed={})
    plan = build_mixed_plan(cond, choices, "checked", info)
    return plan, verify_mixed(cond, plan, choices)


def load_mixed_plan(path: Any, cond: Condition) -> tuple[GivenMixedPlan, list[str]]:
    """A mixed plan file (plan.json of a mixed cluster, or its replicas block in YAML), and a note
    with its throughput (check prints notes; its rows only when violated)."""
    from solver.inputs.loading import read_mapping

    given = parse_mixed_plan(read_mapping(path), str(path))
    plan, _ = grade_mixed(cond, given, given.source)
    return given, [f"mixed plan: {plan.metrics.throughput_tokens_per_s:,.1f} tokens/s from "
                   + "; ".join(f"{g.count} x {g.template}" for g in plan.replicas)]


def check_mixed(cond: Condition, given: GivenMixedPlan, with_regret: bool = True) -> list[Any]:
    """`check` rows of a mixed plan (document/verify.ConstraintCheck): every verifier row, its
    throughput, and against the optimum (the throughput ratio) when asked."""
    from solver.document.verify import ConstraintCheck
    from solver.planning.mixed_planner import solve_mixed

    plan, rows = grade_mixed(cond, given, given.source)
    checks = [ConstraintCheck(name=r[0], value=r[1], limit=r[2], passed=r[3], detail=r[4]) for r in rows]
    total = plan.metrics.throughput_tokens_per_s
    checks.append(ConstraintCheck(name="throughput_tokens_per_s", value=f"{total:,.1f}", limit="-",
                                  passed=True, detail="; ".join(f"{g.count} x {g.template}"
                                                                for g in plan.replicas)))
    if with_regret and all(c.passed for c in checks):
        best = solve_mixed(cond, with_comparison=False).plan.metrics.throughput_tokens_per_s
        checks.append(ConstraintCheck(
            name="regret.throughput_ratio", value=f"{total / best:.4f}", limit="-", passed=True,
            detail=f"the optimum: {best:,.1f} tokens/s"))
    return checks
