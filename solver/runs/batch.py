"""`paraplan batch`: solve many condition files in parallel and summarize them.

The driver (this process) finds the files, parses them, hands plain data to workers (local
processes or Ray tasks, see executors.py), and writes everything: workers return the rendered
files as strings, so they never touch the output folder (on a Ray cluster they may not even share
its file system). One bad, infeasible or crashing condition becomes a row that says why; it never
stops the others.

Outputs in OUTDIR: one folder per condition as `paraplan solve` writes it (plan.json, plan.md,
balance.csv, report.html, manifest.json), summary.csv and summary.parquet (one row per condition,
SUMMARY_COLUMNS), report.html (the batch at a glance) and manifest.json (every path written).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from solver.errors import InputError
from solver.render.output_folder import OutputFolder
from solver.render.writer import SUMMARY_FILES
from solver.runs.discovery import Entry, discover
from solver.runs.executors import ExecutorSpec
from solver.runs.progress import progress
from solver.runs.rows import empty_row
from solver.runs.run_folder import RunOutcome, execute, finish, open_run_folder
from solver.runs.summary import summary_frame
from solver.runs.tasks import SolveOptions, Task


def run_batch(
    inputs: Sequence[str | Path],
    outdir: Path,
    *,
    options: SolveOptions | None = None,
    spec: ExecutorSpec | None = None,
    echo: Callable[[str], None] = print,
    tty: bool | None = None,
) -> RunOutcome:
    started = time.perf_counter()
    options = (options or SolveOptions()).validate()
    spec = (spec or ExecutorSpec()).validate()
    entries, skipped = discover(inputs)
    if not entries:
        raise InputError(
            ", ".join(map(str, inputs)) or "(no paths)",
            "",
            "no condition files found (looked for *.yaml, *.yml, *.json with model, "
            "hardware and workload keys)",
        )
    missing = [e for e in entries if e.missing]
    if missing:
        raise InputError(", ".join(e.source for e in missing), "",
                         "; ".join(e.error.removeprefix(f"{e.source}: ") for e in missing)
                         + " (nothing was solved)")
    notes = [f"skipped (not a condition file): {s}" for s in skipped]
    with open_run_folder(outdir, [e.folder for e in entries], SUMMARY_FILES) as out:
        echo(f"batch: {len(entries)} condition(s) into {outdir}")
        frame = _solve_entries(entries, out, options, spec, echo, tty)
        from solver.render.run_page import summary_html

        seconds = time.perf_counter() - started
        html = summary_html(
            frame, kind="batch", title=f"Batch: {len(entries)} conditions", seconds=seconds,
            notes=notes
        )
        every = finish(out, frame, html, notes)
    return RunOutcome(frame, every, notes, time.perf_counter() - started)


def _solve_entries(
    entries: Sequence[Entry],
    out: OutputFolder,
    options: SolveOptions,
    spec: ExecutorSpec,
    echo: Callable[[str], None],
    tty: bool | None,
) -> pd.DataFrame:
    """Unreadable entries become rows at once; the others are solved and their plan folders
    written as they finish."""
    rows: list[dict[str, Any]] = [{} for _ in entries]
    tasks, slots, folders = [], [], []
    for k, e in enumerate(entries):
        if e.data is None:
            rows[k] = empty_row(e.name, e.source, "invalid", e.error)
            out.clear_plan_folder(e.folder)
            continue
        tasks.append(
            Task(
                name=e.name,
                source=e.source,
                data=e.data,
                default_name=e.default_name or Path(e.source).stem,
                options=options,
            )
        )
        slots.append(k)
        folders.append(e.folder)
    tty = sys.stdout.isatty() if tty is None else tty
    with progress(len(entries), echo, tty) as advance:
        for row in rows:
            if row:
                advance(row)
        execute(tasks, folders, out, spec, advance, rows, slots)
    return summary_frame(rows)
