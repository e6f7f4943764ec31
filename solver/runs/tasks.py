"""The unit of work of a batch or sweep: one condition validated, solved and (optionally) rendered,
in a worker process or a Ray task. Tasks and results are plain picklable data; a worker returns the
plan folder's files as strings and never touches the output folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from solver.errors import InfeasibleError, InputError, ParaplanError, VerificationError
from solver.inputs.card_library import searching
from solver.inputs.condition import build_condition
from solver.runs.rows import empty_row, plan_row


@dataclass(frozen=True)
class SolveOptions:
    method: str = "cp-sat"
    time_limit_s: float = 60.0
    workers: int = 1  # CP-SAT threads per solve; the batch is parallel across conditions
    seed: int = 0
    card_dirs: tuple[str, ...] = ()  # absolute --cards / PARAPLAN_CARDS folders of the driver

    def validate(self) -> SolveOptions:
        if self.method not in ("cp-sat", "exhaustive"):
            raise InputError("--method", "", "must be cp-sat or exhaustive")
        return self


@dataclass(frozen=True)
class Task:
    name: str  # the row's name; with `rename` also the plan's condition name
    source: str  # where the condition came from (messages, the row's path)
    data: dict[str, Any]  # parsed condition file
    default_name: str  # the file stem: a condition without `name:` is named after it
    render: bool = True  # return the plan folder's files
    rename: bool = False  # sweep points: name the plan after the point, not the base file
    options: SolveOptions = field(default_factory=SolveOptions)


@dataclass
class TaskResult:
    row: dict[str, Any]
    files: dict[str, str] | None = None



def run_task(task: Task) -> TaskResult:
    """Validate, solve and (optionally) render one condition. Never raises for a bad condition."""
    from solver.optimize.settings import SolverSettings
    from solver.planning.modes import plan_serving

    started = time.perf_counter()
    row = empty_row(task.name, task.source)
    files = None
    try:
        with searching(task.options.card_dirs):  # cards are looked up while building
            condition = build_condition(task.data, task.source, task.default_name)
        if task.rename:
            condition = condition.model_copy(update={"name": task.name})
        row["name"] = condition.name
        o = task.options
        settings = SolverSettings(
            time_limit_s=o.time_limit_s, num_workers=o.workers, random_seed=o.seed
        )
        # the plan folder's runner-up table is searched within the condition's time limit
        solution = plan_serving(condition, o.method, settings, with_runner_ups=task.render)
        row.update(plan_row(solution, condition))
        if task.render:
            from solver.render.outputs import plan_folder_files

            files = plan_folder_files(condition, solution)
    except InfeasibleError as exc:
        row.update(status="infeasible", error="; ".join([str(exc), *exc.binding]))
    except VerificationError as exc:
        row.update(status="error", error=str(exc))
    except ParaplanError as exc:
        row.update(status="invalid", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one condition's crash is its own row
        row.update(status="error", error=f"internal error: {type(exc).__name__}: {exc}")
    row["solve_seconds"] = time.perf_counter() - started
    return TaskResult(row, files)
