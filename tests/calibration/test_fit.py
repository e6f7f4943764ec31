"""The fit: physical bounds, and a lower training error than the uncalibrated defaults."""

from __future__ import annotations

from solver.calibration.fit import BOUNDS, fit, objective
from solver.calibration.measurements import ROLE_TRAIN, role
from solver.calibration.parameters import baseline_params


def test_fit_stays_physical_and_lowers_the_training_error(sample) -> None:
    rows, _ = sample
    train = [r for r in rows if role(r) == ROLE_TRAIN]
    start = baseline_params(rows)
    result = fit(train, start, tolerance=0.1)
    assert result.objective < result.start_objective
    fitted = {**start, **result.params}
    assert objective(train, fitted) < objective(train, start)
    for p in result.params.values():
        assert 0 < p.memory_bandwidth_utilization <= 1
        assert all(0 < v <= 1 for v in p.mfu.values())
        assert 0 <= p.layer_overhead_us <= BOUNDS["overhead"][1]
        assert 0 <= p.collective_latency_us <= BOUNDS["alpha"][1]
        assert 0 < p.link_bandwidth_utilization <= 1
