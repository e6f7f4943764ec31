"""Progress of a batch or sweep: a rich progress bar on a terminal, else one line per task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from solver.render.display import for_terminal
from solver.runs.rows import DEGREES, OK_STATUSES


def _describe(row: dict[str, Any]) -> str:
    if row["status"] in OK_STATUSES:
        shape = " ".join(f"{d}{row[d]}" for d in DEGREES if row.get(d) and row[d] > 1) or "1 GPU"
        return (
            f"{shape}, batch {row['batch']}, {row['gpus_used']}/{row['gpus_available']} GPUs, "
            f"{row['throughput_per_gpu']:,.1f} tok/s/GPU"
        )
    error = " ".join(str(row.get("error") or "").split())
    return shorten(error, ERROR_CHARS)


ERROR_CHARS = 160  # of an error on a progress line; summary.csv and report.html have all of it


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, never mid-word, with a note
    that the rest is in the summary."""
    if len(text) <= limit:
        return text
    tail = " … (all of it in summary.csv)"
    head = text[:limit - len(tail) + 1]
    head = head.rsplit(" ", 1)[0] if " " in head else head
    return head.rstrip(",;:") + tail


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
