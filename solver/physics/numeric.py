"""Arithmetic that works on one candidate (plain numbers) or every candidate at once (numpy arrays).

The cost model and the integer tables are written once and run on either: shape degrees and batch
sizes may be arrays, and the few operations that differ (max, min, conditionals, ceil) go through
these helpers, which keep plain Python arithmetic for scalars (so both paths agree to the bit).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Num = Any  # a float or int, or a numpy array with one value per candidate (candidate_grid)


def is_array(*values: Num) -> bool:
    return any(isinstance(v, np.ndarray) for v in values)


def vmax(a: Num, b: Num) -> Num:
    return np.maximum(a, b) if is_array(a, b) else max(a, b)


def vmin(a: Num, b: Num) -> Num:
    return np.minimum(a, b) if is_array(a, b) else min(a, b)


def vwhere(condition: Num, a: Num, b: Num) -> Num:
    return np.where(condition, a, b) if is_array(condition) else (a if condition else b)


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, axis=0, return_inverse=True) for a 1-D array or the rows of a 2-D one:
    the distinct values (rows) ascending, and where each input falls among them. numpy 2's
    np.unique imports numpy.ma (some 5 ms of every solve's start-up); this does not."""
    keys = values.reshape(len(values), -1 if len(values) else 1)
    order = np.lexsort(keys.T[::-1]) if len(values) else np.arange(0)
    ordered = keys[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return values[order[first]], inverse


def ceil_div(a: Num, b: Num) -> Num:
    """Exact ceil(a / b) of non-negative integers (or integer arrays)."""
    return -(-a // b)


def ceil_log2(n: Num) -> Num:
    return np.ceil(np.log2(n)) if is_array(n) else math.ceil(math.log2(n))
