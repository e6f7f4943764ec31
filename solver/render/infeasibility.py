"""infeasibility.md and the console's short version of an infeasibility report (planning/relax.py)."""

from __future__ import annotations

from typing import Any

from solver.planning.relax import InfeasibilityReport
from solver.render.display import for_markdown, markdown_code


def infeasibility_summary(report: InfeasibilityReport) -> list[str]:
    """The console's short version: the fixes found, each with the plan it solves to."""
    found = [r for r in report.relaxations if r.found]
    lines = [
        "smallest fixes (each solves; see infeasibility.md):"
        if found
        else "no single relaxation tried makes the condition feasible (see infeasibility.md)"
    ]
    lines += [f"  {r.kind}: {r.summary} -> {r.plan}" for r in found]
    return lines


def infeasibility_markdown(report: InfeasibilityReport) -> str:
    """infeasibility.md: the binding constraints and the smallest relaxation of each kind."""
    out = [
        f"# Infeasible: {for_markdown(report.name)}",
        "",
        f"Source: {markdown_code(report.source)}",
        "",
        "No plan meets every hard constraint of this condition.",
        "",
        f"Solver: {report.message}.",
        "",
        "## Binding constraints",
        "",
    ]
    out += [f"- {b}" for b in report.binding] or ["- (not named by the solver)"]
    out += [
        "",
        "## Smallest relaxations",
        "",
        "Each row changes one thing in the condition and solves again with the same planner.",
        "",
        "| kind | change | result |",
        "|---|---|---|",
    ]
    for r in report.relaxations:
        result = f"solves: {r.plan}" if r.found else "no fix of this kind"
        out.append(f"| {r.kind} | {r.summary.replace('|', '/')} | {result.replace('|', '/')} |")
    fixes = [r for r in report.relaxations if r.found]
    if fixes:
        out += ["", "To apply a fix, set these keys in the condition file:", ""]
        for r in fixes:
            keys = ", ".join(f"`{k}: {_show(v)}`" for k, v in r.changes.items())
            out.append(f"- {r.kind}: {keys}")
    stopped = {
        "solves": f" (stopped at the limit of {report.solve_limit} solves; later kinds were "
        "not tried)",
        "time": " (stopped at --time-limit; later kinds were not tried)",
    }
    out += ["", f"Relaxed conditions solved: {report.solves}{stopped.get(report.budget_hit or '', '')}."]
    return "\n".join(out) + "\n"


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
