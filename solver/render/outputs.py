"""The files of one plan folder, assembled in one place for `paraplan solve`, the plan folders of a
batch or sweep and the benchmarks. Every number comes from the planner's Solution."""

from __future__ import annotations

from solver.document.plan import Plan
from solver.inputs.condition import Condition
from solver.planning.modes import PoolsSolution
from solver.planning.planner import Solution
from solver.render.balance import balance_csv
from solver.render.export import render_launch
from solver.render.export_pools import render_pools_launch
from solver.render.plan_markdown import plan_markdown
from solver.render.plan_page import plan_html
from solver.render.pools_markdown import pools_markdown
from solver.render.pools_page import pools_html
from solver.render.writer import BALANCE_CSV, PLAN_JSON, PLAN_MD, REPORT_HTML, dump_json


def plan_json(plan: Plan) -> str:
    """plan.json: deterministic (no wall time), byte-identical run to run."""
    return dump_json(_without_absent_blocks(plan.model_dump(mode="json")))


def _without_absent_blocks(data: dict) -> dict:
    """Only disaggregated and auto plans carry `pools` and `comparison`; other plan.json files
    stay as they were before these blocks existed."""
    data = {k: v for k, v in data.items() if k not in ("pools", "comparison") or v is not None}
    for pool in (data.get("pools") or {}).values():
        if isinstance(pool, dict) and "plan" in pool:
            pool["plan"] = _without_absent_blocks(pool["plan"])
    return data


def plan_folder_files(condition: Condition, solution: Solution | PoolsSolution,
                      export: bool = False) -> dict[str, str]:
    """writer.PLAN_FILES (plan.json, plan.md, balance.csv, report.html) and, with `export`, the
    engine launch files under launch/: relative path -> text."""
    if condition.mixed is not None:  # a mixed cluster (render/mixed_report.py); no launch files yet
        from solver.render.mixed_report import mixed_balance_csv, mixed_html, mixed_markdown

        plan = solution.plan
        return {PLAN_JSON: dump_json(plan.model_dump(mode="json")), PLAN_MD: mixed_markdown(condition, plan),  # type: ignore[arg-type]
                BALANCE_CSV: mixed_balance_csv(plan), REPORT_HTML: mixed_html(condition, plan)}  # type: ignore[arg-type]
    if isinstance(solution, PoolsSolution):
        files = {PLAN_JSON: plan_json(solution.plan), PLAN_MD: pools_markdown(condition, solution),
                 BALANCE_CSV: balance_csv(solution.plan), REPORT_HTML: pools_html(condition, solution)}
        return files | (render_pools_launch(condition, solution.plan) if export else {})
    files = {
        PLAN_JSON: plan_json(solution.plan),
        PLAN_MD: plan_markdown(condition, solution),
        BALANCE_CSV: balance_csv(solution.plan),
        REPORT_HTML: plan_html(condition, solution),
    }
    if export:
        files |= render_launch(condition, solution.plan)
    return files
