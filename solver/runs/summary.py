"""The summary table of a batch or sweep: one row per condition or point, as a DataFrame with
stable column types, written as summary.csv and summary.parquet."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from solver.runs.rows import INT_COLUMNS, SUMMARY_COLUMNS


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
