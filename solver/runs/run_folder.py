"""The output folder of a batch or sweep: opened and locked before anything is solved, each plan
folder written as its task returns, then the summary files and the run's manifest."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from solver.errors import ParaplanError
from solver.render.output_folder import OutputFolder, open_output
from solver.render.writer import (
    MANIFEST,
    PLAN_FOLDER_FILES,
    REPORT_HTML,
    SUMMARY_CSV,
    SUMMARY_PARQUET,
    Content,
)
from solver.runs.executors import ExecutorSpec, run_tasks
from solver.runs.rows import FAILED_STATUSES, OK_STATUSES, empty_row
from solver.runs.summary import frame_csv, frame_parquet
from solver.runs.tasks import Task, run_task


@dataclass
class RunOutcome:
    frame: pd.DataFrame
    written: list[Path]
    notes: list[str]
    seconds: float

    @property
    def failed(self) -> int:
        return int(self.frame["status"].isin(FAILED_STATUSES).sum())

    @property
    def solved(self) -> int:
        return int(self.frame["status"].isin(OK_STATUSES).sum())

    def summary_lines(self, outdir: Path, what: str) -> list[str]:
        """What the console says after a batch or sweep: counts, notes, the files written."""
        counts = self.frame["status"].value_counts().to_dict()
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines = [f"{what}: {self.solved} of {len(self.frame)} solved ({detail}) in {self.seconds:.1f} s"]
        skipped = [n for n in self.notes if n.startswith("skipped")]
        lines += [f"  note: {note}" for note in self.notes if note not in skipped]
        if skipped:
            lines.append(f"  skipped {len(skipped)} file(s) that are not conditions (cards, other "
                         f"mappings; listed in {MANIFEST})")
        lines.append(f"  wrote {len(self.written)} files: {outdir / SUMMARY_CSV}, "
                     f"{outdir / REPORT_HTML}, ... (every path in {outdir / MANIFEST})")
        return lines


@contextmanager
def open_run_folder(outdir: Path, folders: Sequence[str], top: Sequence[str]) -> Iterator[OutputFolder]:
    """The output folder of a batch or sweep, checked, created and locked before anything is
    solved: `top` summary files and `folders` plan folders must be paraplan's where they exist."""
    with open_output(Path(outdir), [*top, MANIFEST], folders, PLAN_FOLDER_FILES) as out:
        out.plan_ahead(folders)
        yield out


def execute(
    tasks: Sequence[Task],
    folders: Sequence[str | None],
    out: OutputFolder,
    spec: ExecutorSpec,
    advance: Callable[[dict[str, Any]], None],
    rows: list[dict[str, Any]],
    slots: Sequence[int],
) -> None:
    """Run tasks; write each returned plan folder as it arrives; fill rows[slots[i]]. On Ctrl-C
    (or any error here) the task runner is closed at once, which stops its workers."""
    with contextlib.closing(run_tasks(run_task, tasks, spec)) as results:
        for i, outcome in results:
            _record(i, outcome, tasks, folders, out, advance, rows, slots)


def _record(
    i: int,
    outcome: Any,
    tasks: Sequence[Task],
    folders: Sequence[str | None],
    out: OutputFolder,
    advance: Callable[[dict[str, Any]], None],
    rows: list[dict[str, Any]],
    slots: Sequence[int],
) -> None:
    """One finished task: its row, and its plan folder written (or an earlier one cleared)."""
    task = tasks[i]
    if isinstance(outcome, BaseException):
        row = empty_row(
            task.name,
            task.source,
            "error",
            f"worker failed: {type(outcome).__name__}: {outcome}",
        )
    else:
        row = outcome.row
        folder = folders[i]
        if outcome.files and folder:
            try:
                out.write_plan_folder(folder, outcome.files)
                row["plan_dir"] = folder
            except (OSError, ParaplanError) as exc:
                row.update(status="error", error=f"solved, but writing {folder} failed: {exc}")
    if row["status"] not in OK_STATUSES and folders[i]:
        out.clear_plan_folder(str(folders[i]))
    rows[slots[i]] = row
    advance(row)


def finish(
    out: OutputFolder,
    frame: pd.DataFrame,
    html: str,
    notes: list[str],
    extra: dict[str, str] | None = None,
) -> list[Path]:
    """summary.csv, summary.parquet, report.html and extra files, then manifest.json (listing the
    plan folders too); the previous run's files and plan folders this run did not write go."""
    files: dict[str, Content] = {SUMMARY_CSV: frame_csv(frame)}
    parquet = frame_parquet(frame)
    if isinstance(parquet, str):
        notes.append(parquet)
    else:
        files[SUMMARY_PARQUET] = parquet
    files |= extra or {}
    files[REPORT_HTML] = html
    written = out.commit(files, notes)
    notes += [n for n in out.notes if n not in notes]
    return written
