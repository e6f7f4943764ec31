"""`paraplan sweep`: the cross product of condition values, solved in parallel; its Pareto front.

    paraplan sweep conditions/llama70b-h100x8.yaml --set hardware.num_nodes=1,2,4 \
        --set precision.weights=fp8,bf16 --set slo.tpot_ms=20,50 -o sweeps/llama70b

Each `--set KEY=V1,V2,...` names a dotted key of the condition file and its values; every value is
parsed as YAML on its own (`2` is an int, `0.5` a float, `fp8` a string, `null` removes an optional
key, `[2,4]` a list: commas inside brackets do not split values). Every point is validated before
anything is solved: an unknown key or a value of the wrong type stops the sweep (exit 1) naming the
key. The summary marks the Pareto front: tokens/s per user (1000 / TPOT) and the deployment's capacity
(tokens/s, requests/s at the SLOs) up, GPUs used and the GPU time of a million tokens down, so a
sweep over GPU counts shows what each count buys; pareto.svg and report.html draw it.
sweep_points.py makes the points; this module solves them and writes the sweep's folder.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from solver.errors import InputError
from solver.render.output_folder import OutputFolder
from solver.render.writer import PARETO_CHART, SUMMARY_FILES
from solver.runs.discovery import condition_data
from solver.runs.executors import ExecutorSpec, default_jobs
from solver.runs.progress import progress
from solver.runs.rows import OK_STATUSES, empty_row
from solver.runs.run_folder import RunOutcome, execute, finish, open_run_folder
from solver.runs.summary import summary_frame
from solver.runs.sweep_points import Axis, SweepPoint, expand, parse_set, validate
from solver.runs.tasks import SolveOptions, Task

CONFIRM_POINTS = 1_000  # above this many points a sweep starts only with --yes


def pareto_mask(xs: Sequence[float | None], ys: Sequence[float | None]) -> list[bool]:
    """True where no other point is at least as good on both axes and better on one (both
    maximized); None marks a point without a plan."""
    return pareto_front([xs, ys], [True, True])


def pareto_front(columns: Sequence[Sequence[float | None]], maximize: Sequence[bool]) -> list[bool]:
    """True where no other point is at least as good on every criterion and better on one; a
    criterion is maximized or minimized as `maximize` says; None marks a point without a plan.
    Compared in blocks of points (numpy), so a sweep of 10,000 points takes a moment."""
    import numpy as np

    n = len(columns[0])
    ok = np.array([all(c[i] is not None for c in columns) for i in range(n)], dtype=bool)
    values = np.zeros((n, len(columns)))
    for k, column in enumerate(columns):
        sign = 1.0 if maximize[k] else -1.0
        values[:, k] = [sign * float(v) if v is not None else 0.0 for v in column]
    good = values[ok]
    mask = np.zeros(n, dtype=bool)
    on_front = np.ones(len(good), dtype=bool)
    for start in range(0, len(good), 512):
        block = good[start:start + 512, None, :]
        at_least = (good[None, :, :] >= block).all(axis=2)
        better = (good[None, :, :] > block).any(axis=2)
        on_front[start:start + 512] = ~(at_least & better).any(axis=1)
    mask[np.flatnonzero(ok)] = on_front
    return mask.tolist()


def _column_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def sweep_columns(
    rows: list[dict[str, Any]], points: Sequence[SweepPoint], axes: Sequence[Axis]
) -> None:
    """One column per swept key; mixed types in a column become text (parquet needs one type)."""
    for axis in axes:
        values = [_column_value(p.values[axis.key]) for p in points]
        kinds = {type(v) for v in values if v is not None}
        if kinds == {int, float}:
            values = [None if v is None else float(v) for v in values]
        elif len(kinds) > 1:
            values = [None if v is None else str(v) for v in values]
        for row, v in zip(rows, values, strict=True):
            row[axis.key] = v


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{max(1, round(seconds))} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def confirm_size(count: int, options: SolveOptions, jobs: int, confirmed: bool) -> None:
    """Above CONFIRM_POINTS points, refuse without --yes, saying how long it could take."""
    if count <= CONFIRM_POINTS or confirmed:
        return
    worst = count * options.time_limit_s / jobs
    raise InputError(
        "--set", "", f"{count:,} points; a sweep of more than {CONFIRM_POINTS:,} points starts "
        f"only with --yes (each point may use its {options.time_limit_s:g} s time limit: up to "
        f"{_duration(worst)} on {jobs} job(s))"
    )


def _solve_points(
    tasks: list[Task],
    points: Sequence[SweepPoint],
    plans: bool,
    out: OutputFolder,
    spec: ExecutorSpec,
    echo: Callable[[str], None],
    tty: bool | None,
) -> list[dict[str, Any]]:
    """The first point alone (its time gives the estimate, printed before the rest start), then
    the others in parallel; plan folders written as points finish."""
    rows: list[dict[str, Any]] = [empty_row(p.name, t.source) for p, t in zip(points, tasks, strict=True)]
    folders = [p.folder if plans else None for p in points]
    jobs = min(spec.jobs or default_jobs(), max(1, len(tasks) - 1))
    tty = sys.stdout.isatty() if tty is None else tty
    with progress(len(tasks), echo, tty, label="sweep") as advance:
        first = time.perf_counter()
        execute(tasks[:1], folders[:1], out, ExecutorSpec(jobs=1), advance, rows, [0])
        if len(tasks) > 1:
            each = time.perf_counter() - first
            echo(f"sweep: first point took {each:.1f} s; the other {len(tasks) - 1:,} on {jobs} "
                 f"job(s): about {_duration(each * (len(tasks) - 1) / jobs)}")
            execute(tasks[1:], folders[1:], out, spec, advance, rows, list(range(1, len(tasks))))
    return rows


def run_sweep(
    condition: Path,
    sets: Sequence[str],
    outdir: Path,
    *,
    plans: bool = False,
    options: SolveOptions | None = None,
    spec: ExecutorSpec | None = None,
    echo: Callable[[str], None] = print,
    tty: bool | None = None,
    confirmed: bool = False,
) -> RunOutcome:
    started = time.perf_counter()
    options = (options or SolveOptions()).validate()
    spec = (spec or ExecutorSpec()).validate()
    axes = _axes(sets)
    keys = [a.key for a in axes]
    path = Path(condition)
    base, _, default_name = condition_data(path)
    declared = base.get("name")
    base_name = declared if isinstance(declared, str) and declared.strip() else default_name
    points = expand(base, base_name, axes)
    confirm_size(len(points), options, spec.jobs or default_jobs(), confirmed)
    validate(points, axes, str(path), default_name)
    tasks = [
        Task(
            name=p.name,
            source=f"{path} [{', '.join(f'{k}={v}' for k, v in p.texts.items())}]",
            data=p.data,
            default_name=default_name,
            render=plans,
            rename=True,
            options=options,
        )
        for p in points
    ]
    folders = [p.folder for p in points] if plans else []
    with open_run_folder(outdir, folders, [*SUMMARY_FILES, PARETO_CHART]) as out:
        echo(f"sweep: {len(points):,} points of {base_name}")
        rows = _solve_points(tasks, points, plans, out, spec, echo, tty)
        frame = _sweep_frame(rows, points, axes, keys, path)
        notes: list[str] = []
        every = _finish_sweep(out, frame, axes, base_name, path, started, notes)
    return RunOutcome(frame, every, notes, time.perf_counter() - started)


def _axes(sets: Sequence[str]) -> list[Axis]:
    """The --set options as axes: at least one, each key once, never `name`."""
    if not sets:
        raise InputError("--set", "", "give at least one --set KEY=V1,V2,...")
    axes = [parse_set(s) for s in sets]
    keys = [a.key for a in axes]
    if "name" in keys:
        raise InputError(
            "--set",
            "name",
            "points are named after the condition and their values; sweep another key",
        )
    duplicate = next((k for k in keys if keys.count(k) > 1), None)
    if duplicate:
        raise InputError("--set", duplicate, "given twice; list all its values in one --set")
    return axes


def _finish_sweep(out: OutputFolder, frame: pd.DataFrame, axes: Sequence[Axis], base_name: str,
                  path: Path, started: float, notes: list[str]) -> list[Path]:
    """pareto.svg, report.html and the summary files, then the manifest."""
    from solver.render.run_page import pareto_svg, summary_html

    keys = [a.key for a in axes]
    chart = pareto_svg(frame, keys, title=f"Pareto front: {base_name}")
    html = summary_html(
        frame,
        kind="sweep",
        title=f"Sweep of {base_name}: {len(frame)} points",
        seconds=time.perf_counter() - started,
        notes=[],
        axes=[(a.key, list(a.texts)) for a in axes],
        pareto=chart,
        source=str(path),
    )
    svg = '<?xml version="1.0" encoding="UTF-8"?>\n' + chart + "\n"
    return finish(out, frame, html, notes, extra={PARETO_CHART: svg})


def _sweep_frame(
    rows: list[dict[str, Any]],
    points: Sequence[SweepPoint],
    axes: Sequence[Axis],
    keys: Sequence[str],
    path: Path,
) -> pd.DataFrame:
    """The summary table: one column per swept key and the Pareto flag."""
    for row in rows:
        row["path"] = str(path)
    sweep_columns(rows, points, axes)
    ok = [r["status"] in OK_STATUSES for r in rows]

    def column(name: str) -> list[float | None]:
        return [r.get(name) if good else None for r, good in zip(rows, ok, strict=True)]

    # the user's speed and the deployment's capacity up, GPUs and the cost of a token down: a
    # sweep over GPU counts keeps every count on the front (more capacity for more GPUs), where
    # per-GPU figures alone made the larger clusters look the same as the smaller
    mask = pareto_front([column("tokens_per_s_per_user"), column("throughput"),
                         column("gpus_used"), column("gpu_hours_per_million_tokens")],
                        [True, True, False, False])
    frame = summary_frame(rows, extra_columns=keys)
    for key in keys:  # whole numbers stay whole when a point removes the key (null)
        kinds = {type(r[key]) for r in rows if r[key] is not None}
        if kinds == {int}:
            frame[key] = pd.array([r[key] for r in rows], dtype="Int64")
    frame.insert(frame.columns.get_loc("status") + 1, "pareto", mask)
    return frame
