"""`paraplan sweep`: the cross product of condition values, solved in parallel; its Pareto front.

    paraplan sweep conditions/llama70b-h100x8.yaml --set hardware.num_nodes=1,2,4 \
        --set precision.weights=fp8,bf16 --set slo.tpot_ms=20,50 -o sweeps/llama70b

Each `--set KEY=V1,V2,...` names a dotted key of the condition file and its values; every value is
parsed as YAML on its own (`2` is an int, `0.5` a float, `fp8` a string, `null` removes an optional
key, `[2,4]` a list: commas inside brackets do not split values). Every point is validated before
anything is solved: an unknown key or a value of the wrong type stops the sweep (exit 1) naming the
key. The summary marks the Pareto front of tokens/s per user (1000 / TPOT) against tokens/s per GPU,
the two numbers serving engineers trade against each other, and draws it (pareto.svg, report.html).
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel

from solver.errors import InputError, ParaplanError
from solver.inputs.condition import ConditionFile, build_condition
from solver.render.writer import PARETO_CHART, SUMMARY_FILES, OutputFolder
from solver.runs.batch import (
    OK_STATUSES,
    RunOutcome,
    SolveOptions,
    Task,
    condition_data,
    empty_row,
    execute,
    finish,
    open_run_folder,
    progress,
    safe_name,
    summary_frame,
    unique_folder,
)
from solver.runs.executors import ExecutorSpec, default_jobs

MAX_POINTS = 10_000
CONFIRM_POINTS = 1_000  # above this many points a sweep starts only with --yes


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]  # as typed, for names and the table


def split_values(text: str) -> list[str]:
    """Split on commas that are not inside [] or {} or quotes."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    return found


def check_key(key: str) -> None:
    """The dotted key must name a field of the condition file (descending into nested sections and
    inline cards); otherwise an InputError with a did-you-mean."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise InputError(
            "--set", key or "(empty)", "expected a dotted key such as hardware.num_nodes"
        )
    models: list[type[BaseModel]] = [ConditionFile]
    for depth, part in enumerate(parts):
        fields = {name: f for m in models for name, f in m.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:depth]) or "the top level"
            guess = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{'.'.join([*parts[:depth], guess[0]])}'?"
                if guess
                else (f"; keys under {where}: {', '.join(sorted(fields))}")
            )
            raise InputError("--set", key, f"unknown key{hint}")
        models = _models_in(fields[part].annotation)
        if depth < len(parts) - 1 and not models:
            raise InputError(
                "--set",
                key,
                f"'{'.'.join(parts[: depth + 1])}' holds a value, not a "
                "section: nothing below it can be set",
            )


def parse_set(spec: str) -> Axis:
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep:
        raise InputError("--set", spec, "expected KEY=V1,V2,... (e.g. hardware.num_nodes=1,2,4)")
    check_key(key)
    texts = split_values(values)
    if any(not t for t in texts):
        raise InputError("--set", key, f"empty value in {values!r}")
    parsed = []
    for text in texts:
        try:
            parsed.append(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise InputError(
                "--set", key, f"value {text!r} is not valid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    if len(set(texts)) != len(texts):
        raise InputError("--set", key, f"a value is repeated in {values!r}")
    return Axis(key, tuple(parsed), tuple(texts))


def apply(data: dict[str, Any], key: str, value: Any) -> None:
    """Set data[a][b][c] = value for key 'a.b.c' (creating missing sections); None deletes."""
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise InputError(
                "--set",
                key,
                f"'{'.'.join(parts[: depth + 1])}' is {child!r} in the "
                "condition, not a mapping (set the whole value instead)",
            )
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key shares (names stay readable)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if sum(1 for k in keys if k == suffix or k.endswith("." + suffix)) == 1:
                out[key] = suffix
                break
        else:
            out[key] = key
    return out


@dataclass
class SweepPoint:
    name: str
    folder: str
    values: dict[str, Any]  # swept key -> value
    texts: dict[str, str]
    data: dict[str, Any]


def expand(base: dict[str, Any], base_name: str, axes: Sequence[Axis]) -> list[SweepPoint]:
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_POINTS:
        raise InputError("--set", "", f"{count} points; the limit is {MAX_POINTS}")
    short = short_keys([a.key for a in axes])
    points, used = [], set()
    for combo in itertools.product(*[range(len(a.values)) for a in axes]):
        data = copy.deepcopy(base)
        values, texts = {}, {}
        for axis, k in zip(axes, combo, strict=True):
            apply(data, axis.key, copy.deepcopy(axis.values[k]))
            values[axis.key], texts[axis.key] = axis.values[k], axis.texts[k]
        suffix = "_".join(f"{short[a.key]}={texts[a.key]}" for a in axes)
        name = f"{base_name}_{suffix}"
        points.append(SweepPoint(name, unique_folder(safe_name(name), used), values, texts, data))
    return points


def _matching_axis(key: str, axes: Sequence[Axis]) -> str | None:
    for axis in axes:
        if key == axis.key or key.startswith((axis.key + ".", axis.key + "[")):
            return axis.key
    return None


def _problems(exc: ParaplanError) -> list[tuple[str, str]]:
    """(key, reason) pairs of a validation error; one InputError may list several keys."""
    if not isinstance(exc, InputError):
        return [("", str(exc))]
    lines = exc.reason.splitlines()
    if len(lines) > 1:  # "invalid values:" then "  key: reason" per problem
        pairs = [tuple(line.strip().split(": ", 1)) for line in lines[1:] if ": " in line]
        if pairs:
            return [(k, r) for k, r in pairs]
    return [(exc.key, exc.reason)]


def validate(
    points: Sequence[SweepPoint], axes: Sequence[Axis], source: str, default_name: str
) -> None:
    """build_condition on every point before solving; the first failures, naming the key."""
    problems: list[str] = []
    first_key = ""
    for point in points:
        try:
            build_condition(point.data, f"{source} [{point.name}]", default_name)
        except ParaplanError as exc:
            for key, reason in _problems(exc):
                swept = _matching_axis(key, axes)
                if swept is not None:
                    value = point.values[swept]
                    message = (
                        f"--set {key}: value {point.texts[swept]} "
                        f"({type(value).__name__}): {reason}"
                    )
                else:
                    where = ", ".join(f"{k}={v}" for k, v in point.texts.items())
                    message = f"point {where}: {key + ': ' if key else ''}{reason}"
                if message not in problems:
                    problems.append(message)
                    first_key = first_key or swept or key
        if len(problems) >= 8:
            break
    if problems:
        raise InputError("sweep", first_key, "invalid sweep point(s):\n  " + "\n  ".join(problems))


def pareto_mask(xs: Sequence[float | None], ys: Sequence[float | None]) -> list[bool]:
    """True where no other point is at least as good on both axes and better on one (both
    maximized); None marks a point without a plan."""
    pts = [
        (x, y, i)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        if x is not None and y is not None
    ]
    mask = [False] * len(xs)
    # sort by x descending, then y descending: a point is on the front iff its y beats every y seen
    pts.sort(key=lambda p: (-p[0], -p[1]))
    best_y = float("-inf")
    k = 0
    while k < len(pts):  # points with equal x form a group; only the best y of a group can be on it
        group = [p for p in pts[k:] if p[0] == pts[k][0]]
        top = group[0][1]
        if top > best_y:
            for p in group:
                if p[1] == top:
                    mask[p[2]] = True
            best_y = top
        k += len(group)
    return mask


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
        from solver.render.html import pareto_svg, summary_html

        chart = pareto_svg(frame, keys, title=f"Pareto front: {base_name}")
        html = summary_html(
            frame,
            kind="sweep",
            title=f"Sweep of {base_name}: {len(points)} points",
            seconds=time.perf_counter() - started,
            notes=[],
            axes=[(a.key, list(a.texts)) for a in axes],
            pareto=chart,
            source=str(path),
        )
        notes: list[str] = []
        svg = '<?xml version="1.0" encoding="UTF-8"?>\n' + chart + "\n"
        every = finish(out, frame, html, notes, extra={PARETO_CHART: svg})
    return RunOutcome(frame, every, notes, time.perf_counter() - started)


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
    mask = pareto_mask(
        [r["tokens_per_s_per_user"] if good else None for r, good in zip(rows, ok, strict=True)],
        [r["throughput_per_gpu"] if good else None for r, good in zip(rows, ok, strict=True)],
    )
    frame = summary_frame(rows, extra_columns=keys)
    for key in keys:  # whole numbers stay whole when a point removes the key (null)
        kinds = {type(r[key]) for r in rows if r[key] is not None}
        if kinds == {int}:
            frame[key] = pd.array([r[key] for r in rows], dtype="Int64")
    frame.insert(frame.columns.get_loc("status") + 1, "pareto", mask)
    return frame
