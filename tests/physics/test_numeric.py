"""Array helpers of physics/numeric.py that stand in for numpy functions."""

from __future__ import annotations

import numpy as np
import pytest

from solver.physics.numeric import distinct


@pytest.mark.parametrize("shape", [(0,), (1,), (50,), (7, 3), (200, 3)])
def test_distinct_is_numpy_unique_with_inverse(shape: tuple[int, ...]) -> None:
    """Same distinct values (rows), same order, same inverse as np.unique(axis=0)."""
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    for _ in range(20):
        values = rng.integers(0, 5, size=shape)
        values = values.astype(float) / 4 if len(shape) > 1 else values
        found, where = distinct(values)
        expected, inverse = np.unique(values, axis=0, return_inverse=True)
        assert np.array_equal(found, expected)
        assert np.array_equal(where, inverse.reshape(-1))
        assert np.array_equal(found[where], values)
