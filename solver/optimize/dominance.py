"""Dominance among candidates described by integer keys (one row each, every column: smaller is
better), within groups (candidates of one GPU count).

    first_minimal     the rows no earlier row of their group matches or beats in every column,
                      "earlier" in the order (key, row): of equal keys the first row stays
    surely_beaten     rows known only within [lo, hi] per column (grid numbers before the exact
                      evaluation): those some other row beats for every value in the intervals

A row is left out by `first_minimal` exactly when some row before it in that order matches or beats
it (a row left out was beaten by one that stayed, and "matches or beats" is transitive), so the
kept rows of any subset that holds every kept row are the same rows: screening may drop rows that
are surely beaten before their exact keys are known.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 64  # rows compared at once with the rows kept so far
QUERY_ROWS = 4096  # queries answered at once by Dominators.beat (bounds the bitsets' memory)
INDEX_EVERY = 64  # rows kept since the last index that are compared one by one


class Dominators:
    """Rows that may beat others (their upper keys `hi` and their row numbers), indexed for many
    queries: per column the rows in increasing order, and for every prefix of that order the set of
    its rows as a bitset; the rows with hi_j <= x in a column are one prefix, so a query is a few
    lookups and ANDs of bitsets instead of a comparison with every row."""

    def __init__(self, hi: np.ndarray, rows: np.ndarray) -> None:
        self.hi, self.rows = hi, rows
        self.columns = [np.sort(hi[:, d], kind="stable") for d in range(hi.shape[1])]
        self.prefixes = [_prefix_bits(hi[:, d]) for d in range(hi.shape[1])]
        self.sorted_rows, self.row_prefix = np.sort(rows), _prefix_bits(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def beat(self, lo: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each query (lower keys `lo`, row number): whether some row j here has hi_j <= lo in
        every column and comes first (row_j < row, or hi_j < lo in some column)."""
        if len(self) == 0:
            return np.zeros(len(lo), dtype=bool)
        below = equal = None
        for d, (column, prefix) in enumerate(zip(self.columns, self.prefixes, strict=True)):
            at_most = prefix[np.searchsorted(column, lo[:, d], side="right")]
            same = at_most & ~prefix[np.searchsorted(column, lo[:, d], side="left")]
            below = at_most if below is None else below & at_most
            equal = same if equal is None else equal & same
        assert below is not None and equal is not None
        earlier = self.row_prefix[np.searchsorted(self.sorted_rows, rows, side="left")]
        return (below & (~equal | earlier)).any(axis=1)


def _prefix_bits(values: np.ndarray) -> np.ndarray:
    """Row k: the bitset of the rows among the k smallest values (ties in row order)."""
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(values, kind="stable")] = np.arange(len(values))
    return np.packbits(np.arange(len(values) + 1)[:, None] > rank[None, :], axis=1)


def first_minimal(keys: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """A mask of the rows no row before them, in the order (group, key, row), matches or beats in
    every column of the same group."""
    n = len(keys)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort((np.arange(n), *keys.T[::-1], groups))
    ordered = groups[order]
    starts = [*np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]).tolist(), n]
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        keep[order[a:b]] = _minimal_in_order(keys[order[a:b]], order[a:b])
    return keep


def _minimal_in_order(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """first_minimal of one group whose rows are already in (key, row) order: each block against
    the rows kept before it (indexed, plus the latest ones directly) and its own earlier rows."""
    kept = np.zeros(len(keys), dtype=bool)
    indexed = Dominators(keys[:0], rows[:0])
    latest = keys[:0]
    for start in range(0, len(keys), BLOCK_ROWS):
        block = keys[start:start + BLOCK_ROWS]
        beaten = indexed.beat(block, rows[start:start + BLOCK_ROWS])
        beaten |= np.any(np.all(latest[None, :, :] <= block[:, None, :], axis=2), axis=1)
        within = (block[None, :, :] <= block[:, None, :]).all(axis=2)  # [i, j]: j matches or beats i
        beaten |= np.tril(within, -1).any(axis=1)
        kept[start:start + len(block)] = ~beaten
        latest = np.concatenate([latest, block[~beaten]])
        if len(latest) > INDEX_EVERY:  # index every kept row (earlier rows: "beat" is "matches or beats")
            indexed = Dominators(keys[:start + len(block)][kept[:start + len(block)]],
                                 rows[:start + len(block)][kept[:start + len(block)]])
            latest = keys[:0]
    return kept


def surely_beaten(lo: np.ndarray, hi: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Rows whose exact key (somewhere in [lo, hi], column by column) another row of the group
    matches or beats and comes before, whatever the exact keys are: hi_j <= lo_i in every column,
    and j < i or hi_j < lo_i in some column. Such a row is not a `first_minimal` row of any set
    holding j."""
    beaten = np.zeros(len(lo), dtype=bool)
    rows = np.arange(len(lo))
    for group in np.unique(groups).tolist():
        mine = rows[groups == group]
        best = mine[first_minimal(hi[mine], groups[mine])]  # every row that could beat another
        dominators = Dominators(hi[best], best)
        for start in range(0, len(mine), QUERY_ROWS):
            block = mine[start:start + QUERY_ROWS]
            beaten[block] = dominators.beat(lo[block], block)
    return beaten
