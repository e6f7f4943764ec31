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

import contextlib
import glob
import io
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from solver.errors import InfeasibleError, InputError, ParaplanError, VerificationError
from solver.inputs.card_library import searching
from solver.inputs.condition import build_condition
from solver.inputs.loading import parse_mapping, read_text
from solver.render.display import for_terminal
from solver.render.writer import (
    MANIFEST,
    PLAN_FOLDER_FILES,
    RUN_FOLDER_FILES,
    SUMMARY_FILES,
    Content,
    OutputFolder,
    open_output,
)
from solver.runs.executors import ExecutorSpec, run_tasks

OK_STATUSES = ("optimal", "feasible")
FAILED_STATUSES = ("infeasible", "invalid", "error")
CONDITION_KEYS = ("model", "hardware", "workload")
CONDITION_SUFFIXES = (".yaml", ".yml", ".json")
PLAN_SUFFIXES = (".plan.yaml", ".plan.yml", ".plan.json")
DEGREES = ("tp", "pp", "dp", "ep", "etp", "attn_dp", "sp")
INT_COLUMNS = (*DEGREES, "batch", "gpus_used", "gpus_available", "microbatches")
SUMMARY_COLUMNS = (
    "name",
    "path",
    "status",
    *DEGREES,
    "batch",
    "microbatches",
    "gpus_used",
    "gpus_available",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "throughput",
    "throughput_per_gpu",
    "tokens_per_s_per_user",
    "balance_max_mean",
    "balance_memory_max_mean",
    "balance_comm_max_mean",
    "max_memory_gb",
    "solve_seconds",
    "plan_dir",
    "error",
)
COLUMN_NOTES = {
    "throughput": "output tokens/s of the whole deployment",
    "throughput_per_gpu": "output tokens/s per GPU used",
    "tokens_per_s_per_user": "1000 / TPOT: decode speed one user sees",
    "balance_max_mean": "per-GPU decode compute time, max / mean (1 = perfectly balanced)",
    "balance_memory_max_mean": "per-GPU memory, max / mean",
    "balance_comm_max_mean": "per-GPU decode communication bytes, max / mean",
    "solve_seconds": "condition validation + solve (+ rendering when plan folders are written)",
}


# ---- the unit of work (runs in a worker) ---------------------------------------------------------


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


def empty_row(name: str, path: str, status: str = "error", error: str = "") -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(name=name, path=path, status=status, error=error)
    return row


def _max_over_mean(values: Sequence[float]) -> float:
    values = [float(v) for v in values]
    mean = sum(values) / len(values) if values else 0.0
    return max(values) / mean if mean > 0 else 1.0


def plan_row(plan: Any) -> dict[str, Any]:
    """The summary columns a solved plan fills (balance figures from report.balance_frame)."""
    from solver.render.report import balance_frame

    frame = balance_frame(plan)
    p, m = plan.parallelism, plan.metrics
    row: dict[str, Any] = {d: getattr(p, d) for d in DEGREES}
    row.update(
        status=plan.status,
        batch=plan.batch_size,
        microbatches=plan.microbatches,
        gpus_used=plan.gpus.used,
        gpus_available=plan.gpus.available,
        ttft_ms=m.ttft_ms,
        tpot_ms=m.tpot_ms,
        e2e_ms=m.e2e_latency_ms,
        throughput=m.throughput_tokens_per_s,
        throughput_per_gpu=m.throughput_tokens_per_s_per_gpu,
        tokens_per_s_per_user=1000.0 / m.tpot_ms if m.tpot_ms > 0 else None,
        balance_max_mean=_max_over_mean(frame["decode_compute_ms"]),
        balance_memory_max_mean=_max_over_mean(frame["memory_gb"]),
        balance_comm_max_mean=_max_over_mean(frame["decode_comm_bytes"]),
        max_memory_gb=float(frame["memory_gb"].max()),
    )
    return row


def run_task(task: Task) -> TaskResult:
    """Validate, solve and (optionally) render one condition. Never raises for a bad condition."""
    from solver.optimize.settings import SolverSettings
    from solver.planning.planner import solve

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
        solution = solve(condition, method=o.method, settings=settings)
        row.update(plan_row(solution.plan))
        if task.render:
            files = render_plan_files(condition, solution)
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


def render_plan_files(condition: Any, solution: Any) -> dict[str, str]:
    """The plan folder `paraplan solve` writes: render_all's files plus report.html."""
    from solver.render.html import plan_html
    from solver.render.report import plan_with_run_limits, render_all

    deadline = solution.settings.deadline  # the condition's --time-limit covers rendering too
    files = render_all(condition, solution.plan, solution.checks, solution.problem, deadline)
    plan = plan_with_run_limits(solution.plan, deadline)
    files["report.html"] = plan_html(condition, plan, solution.checks, solution.problem)
    return files


# ---- finding condition files ---------------------------------------------------------------------


@dataclass
class Entry:
    """One input of the batch: a parsed condition, or why it could not be read."""

    source: str
    data: dict[str, Any] | None = None
    error: str = ""
    name: str = ""
    folder: str = ""
    default_name: str = ""
    missing: bool = False  # a named path that does not exist, or a pattern that matches nothing


def _is_plan_file(path: Path) -> bool:
    return path.name.lower().endswith(PLAN_SUFFIXES)


def condition_data(path: Path) -> tuple[dict[str, Any], str, str]:
    """(data, source, default name) of a condition file, self-contained (a `model:` that points at
    a Hugging Face config.json is inlined), so a worker on another machine can build it. Uses the
    importers' reader (seed markdown, JSON trio, ...) when present, else plain YAML/JSON."""
    try:
        from solver.importers.registry import condition_data as read_any
    except ImportError:
        return parse_mapping(read_text(path), str(path)), str(path), path.stem
    return read_any(path)


def _read(path: Path, named: bool) -> tuple[dict[str, Any] | None, str, str, bool]:
    """(data, error, default name, is a condition). Found in a folder or by a glob, a file is kept
    when it has the condition keys or cannot be parsed (then it is reported as broken rather than
    silently skipped); cards, plans and other mappings are not conditions."""
    try:
        if not named:
            plain = parse_mapping(read_text(path), str(path))
            if not all(k in plain for k in CONDITION_KEYS):
                return plain, "", path.stem, False
        data, _, default_name = condition_data(path)
        return data, "", default_name, True
    except ParaplanError as exc:
        return None, str(exc), path.stem, True
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}", path.stem, True


def _folder_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and path.suffix.lower() in CONDITION_SUFFIXES and not _is_plan_file(path):
            found.append(path)
    return found


def _glob(pattern: str) -> list[Path]:
    """Matches of a glob pattern (`**` for any depth) that do not descend into symlinked folders,
    so a symlink loop cannot make it run forever; hidden files and folders are left out."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = "/".join(parts[fixed:])
    if not rest:
        return [root] if root.exists() else []
    try:
        found = sorted(root.glob(rest))
    except (OSError, ValueError):
        return []
    return [p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def _expand(matches: Sequence[Path]) -> Iterator[Path]:
    """Folders (recursively) and glob matches -> candidate condition files."""
    for match in matches:
        if match.is_dir():
            yield from _folder_files(match)
        elif match.suffix.lower() in CONDITION_SUFFIXES and not _is_plan_file(match):
            yield match


def discover(inputs: Sequence[str | Path]) -> tuple[list[Entry], list[str]]:
    """Expand files, folders (recursive) and globs into entries, in the order given.

    Named files are always tried. Files found in folders or by globs are kept when they parse to a
    mapping with the condition keys (model, hardware, workload), or fail to parse (reported);
    GPU and model cards, *.plan.yaml files and other mappings are skipped (and listed in `skipped`).
    """
    entries: list[Entry] = []
    skipped: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, named: bool) -> None:
        key = path.resolve()
        if key in seen:
            return
        data, error, default_name, is_condition = _read(path, named)
        if not is_condition:
            skipped.append(str(path))
            return
        seen.add(key)
        entries.append(Entry(str(path), data, error, default_name=default_name))

    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_file():
            add(path, named=True)
        elif path.is_dir() or glob.has_magic(text):
            matches = [path] if path.is_dir() else _glob(text)
            for found in _expand(matches):
                add(found, named=False)
            if not matches:
                entries.append(Entry(text, error=f"{text}: no file matches this pattern",
                                     missing=True))
        else:
            entries.append(Entry(text, error=f"{text}: no such file or folder", missing=True))
    _name_entries(entries)
    return entries, skipped


def safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in name).strip("._")
    return cleaned[:150] or "plan"


def _name_entries(entries: list[Entry]) -> None:
    """Row name = the condition's `name:` or the file stem; folder = a unique file-safe name."""
    used: set[str] = set()
    for e in entries:
        declared = e.data.get("name") if isinstance(e.data, dict) else None
        e.name = (
            declared
            if isinstance(declared, str) and declared.strip()
            else e.default_name or Path(e.source).stem
        )
        e.folder = unique_folder(safe_name(e.name), used)


def unique_folder(base: str, used: set[str]) -> str:
    folder, k = base, 2
    while folder.lower() in used or folder.lower() in RUN_FOLDER_FILES:
        folder, k = f"{base}-{k}", k + 1
    used.add(folder.lower())
    return folder


# ---- progress ------------------------------------------------------------------------------------


def _describe(row: dict[str, Any]) -> str:
    if row["status"] in OK_STATUSES:
        shape = " ".join(f"{d}{row[d]}" for d in DEGREES if row.get(d) and row[d] > 1) or "1 GPU"
        return (
            f"{shape}, batch {row['batch']}, {row['gpus_used']}/{row['gpus_available']} GPUs, "
            f"{row['throughput_per_gpu']:,.1f} tok/s/GPU"
        )
    error = str(row.get("error") or "").splitlines()[0] if row.get("error") else ""
    return error[:160]


@contextmanager
def progress(
    total: int, echo: Callable[[str], None], tty: bool, label: str = "solving"
) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A rich progress bar on a terminal; otherwise one plain line per finished task."""
    done = {"n": 0}
    width = len(str(total))
    if tty and total:
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"),
            transient=False,
        )
        with bar:
            task_id = bar.add_task(label, total=total, last="")

            def advance_bar(row: dict[str, Any]) -> None:
                name = escape(for_terminal(row["name"]))  # user text: no escapes, no markup
                if row["status"] not in OK_STATUSES:
                    bar.console.print(
                        f"[red]{row['status']}[/red] {name}: {escape(for_terminal(_describe(row)))}",
                        markup=True,
                        highlight=False,
                        soft_wrap=True,
                    )
                bar.update(task_id, advance=1, last=f"{name}: {row['status']}")

            yield advance_bar
        return

    def advance_line(row: dict[str, Any]) -> None:
        done["n"] += 1
        seconds = row.get("solve_seconds")
        took = f" ({seconds:.2f} s)" if isinstance(seconds, float) else ""
        echo(
            f"[{done['n']:>{width}}/{total}] {row['status']:<10} {row['name']}: "
            f"{_describe(row)}{took}"
        )

    yield advance_line


# ---- the summary table ---------------------------------------------------------------------------


def summary_frame(
    rows: Sequence[dict[str, Any]], extra_columns: Sequence[str] = ()
) -> pd.DataFrame:
    columns = [*SUMMARY_COLUMNS[:2], *extra_columns, *SUMMARY_COLUMNS[2:]]
    for row in rows:
        for c in columns:
            row.setdefault(c, None)
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    for c in INT_COLUMNS:
        frame[c] = pd.array(frame[c].tolist(), dtype="Int64")
    for c in ("name", "path", "status", "plan_dir", "error"):
        frame[c] = frame[c].astype("string")
    for c in SUMMARY_COLUMNS:
        if c not in INT_COLUMNS and c not in (
            "name",
            "path",
            "status",
            "plan_dir",
            "error",
            "pareto",
        ):
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    return frame


def frame_csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g", lineterminator="\n")
    return buffer.getvalue()


def frame_parquet(frame: pd.DataFrame) -> bytes | str:
    """summary.parquet's bytes, or why it cannot be written (pyarrow missing)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "summary.parquet not written: pyarrow is not installed (pip install pyarrow)"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# ---- the batch -----------------------------------------------------------------------------------


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
    files: dict[str, Content] = {"summary.csv": frame_csv(frame)}
    parquet = frame_parquet(frame)
    if isinstance(parquet, str):
        notes.append(parquet)
    else:
        files["summary.parquet"] = parquet
    files |= extra or {}
    files["report.html"] = html
    written = out.commit(files, notes)
    notes += [n for n in out.notes if n not in notes]
    return written


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
        from solver.render.html import summary_html

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
