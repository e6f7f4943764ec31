"""Executors: a task whose worker dies is that task's error, never the whole batch's."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

import solver.runs.executors as executors
from solver.runs.executors import ExecutorSpec, run_tasks


def test_a_crashed_worker_is_that_task_s_error() -> None:
    """os._exit in a worker breaks the pool: every affected task comes back as an exception."""
    outcomes = dict(run_tasks(os._exit, [3, 3], ExecutorSpec(jobs=2)))
    assert set(outcomes) == {0, 1}
    assert all(isinstance(v, BaseException) for v in outcomes.values())


class _SubmitsAfterTheFirstTaskEnds(ProcessPoolExecutor):
    """A pool whose later submits wait until the first task has ended: when that task kills its
    worker, the pool is broken before the next submit (what a loaded machine did by chance)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first: Any = None

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self.first is not None:
            wait([self.first])
        future = super().submit(fn, *args, **kwargs)
        self.first = self.first or future
        return future


def test_a_worker_that_dies_before_the_next_submit_fails_only_its_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executors, "ProcessPoolExecutor", _SubmitsAfterTheFirstTaskEnds)
    outcomes = dict(run_tasks(os._exit, [3, 3, 3], ExecutorSpec(jobs=2)))
    assert set(outcomes) == {0, 1, 2}
    assert all(isinstance(v, BrokenProcessPool) for v in outcomes.values()), outcomes


def test_tasks_the_pool_accepted_still_return_their_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first task ends normally; the pool breaks only for a later one (its submit refused)."""

    class RefusesTheThird(ProcessPoolExecutor):
        submitted = 0

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            RefusesTheThird.submitted += 1
            if RefusesTheThird.submitted == 3:
                raise BrokenProcessPool("A child process terminated abruptly")
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(executors, "ProcessPoolExecutor", RefusesTheThird)
    outcomes = dict(run_tasks(abs, [-1, -2, -3, -4], ExecutorSpec(jobs=2)))
    assert outcomes[0] == 1 and outcomes[1] == 2 and outcomes[3] == 4
    assert isinstance(outcomes[2], BrokenProcessPool)
