"""Where batch and sweep tasks run: local processes (default) or a Ray cluster.

`run_tasks(fn, tasks, spec)` yields `(index, result)` as tasks finish, in completion order. A task
that could not run (its worker process died, a Ray task failed) yields `(index, exception)`
instead, so the caller turns it into an error row and the other tasks go on. `fn` must be a
module-level function and the tasks plain picklable data: both travel to other processes.

Local processes use the `forkserver` start method where it exists: a clean server process imports
paraplan once (`solver.runs.tasks`, preloaded) and forks every worker from it, so workers start in
milliseconds without inheriting the parent's threads (a progress bar, Ray's client, pytest's), which
plain `fork` would copy in an undefined state. Ctrl-C: see `_task_running` and docs/design.md
("Outputs", interrupts); closing the generator run_tasks returns stops the running tasks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError
from solver.runtime.interrupts import deferred_sigint, sigint_ignored

EXECUTORS = ("local", "ray")
# The worker's module, and pandas, which OR-Tools' cp_model imports: loaded once by the forkserver
# rather than by every worker.
PRELOAD = ["solver.runs.tasks", "pandas"]


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str = "local"  # local | ray
    jobs: int | None = None  # local: worker processes (default: CPU count); ray: tasks in flight
    address: str | None = None  # ray: cluster address (None: start a local Ray instance)

    def validate(self) -> ExecutorSpec:
        if self.kind not in EXECUTORS:
            raise InputError("--executor", "", f"unknown executor {self.kind!r}; use local or ray")
        if self.jobs is not None and self.jobs < 1:
            raise InputError("--jobs", "", "must be at least 1")
        if self.address and self.kind != "ray":
            raise InputError("--address", "", "only used with --executor ray")
        return self


def default_jobs() -> int:
    return os.cpu_count() or 1


def run_tasks(
    fn: Callable[[Any], Any], tasks: Sequence[Any], spec: ExecutorSpec | None = None
) -> Generator[tuple[int, Any], None, None]:
    """A generator: closing it (or an exception in it) stops the tasks still running."""
    spec = (spec or ExecutorSpec()).validate()
    if not tasks:
        return _run_inline(fn, tasks)
    if spec.kind == "ray":
        return _run_ray(fn, tasks, spec)
    jobs = min(spec.jobs or default_jobs(), len(tasks))
    if jobs == 1:
        return _run_inline(fn, tasks)
    return _run_processes(fn, tasks, jobs)


def _run_inline(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Generator[tuple[int, Any], None, None]:
    for i, task in enumerate(tasks):
        try:
            yield i, fn(task)
        except Exception as exc:  # noqa: BLE001 - reported as that task's row
            yield i, exc


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        from multiprocessing import forkserver

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        with sigint_ignored():  # the server ignores Ctrl-C, its workers until _worker_start
            forkserver.ensure_running()
        return ctx
    return multiprocessing.get_context("spawn")


# Ctrl-C in a worker: a KeyboardInterrupt while one of our tasks runs (it stops the CP-SAT search at
# once, see interrupts.py, and the task's exception goes back to the driver), nothing otherwise.
# Raised anywhere else, it would kill an idle worker with a traceback, or cut a result in half
# while the worker sends it, after which the pool waits forever for the rest.
_task_running = False


def _worker_start() -> None:
    signal.signal(signal.SIGINT, _interrupt_task)


def _interrupt_task(signum: int, frame: Any) -> None:
    if _task_running:
        raise KeyboardInterrupt


def _call(fn: Callable[[Any], Any], task: Any) -> Any:
    """fn(task) in a worker, interruptible by Ctrl-C (and only it)."""
    global _task_running
    _task_running = True
    try:
        return fn(task)
    finally:
        _task_running = False


def _run_processes(
    fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int
) -> Generator[tuple[int, Any], None, None]:
    finished = False
    pool: ProcessPoolExecutor | None = None
    try:
        # Ctrl-C waits until the workers are up (about the forkserver's imports): interrupted while
        # a worker is being forked, the driver would lose track of it and the orphan would print a
        # traceback.
        with deferred_sigint():
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(),
                                       initializer=_worker_start)
            futures, refused = _submit(pool, fn, tasks)
        yield from refused
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, pickling errors
                    yield futures[future], exc
        finished = True
    finally:
        if pool is not None and not finished:  # Ctrl-C or an error in the driver
            _interrupt_workers(pool)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, fn: Callable[[Any], Any], tasks: Sequence[Any],
            ) -> tuple[dict[Future[Any], int], list[tuple[int, BaseException]]]:
    """Every task submitted: {future: index}, and (index, exception) of the tasks the pool refused.
    A worker that dies while tasks are still being submitted breaks the pool at once (its next
    `submit` raises BrokenProcessPool): that is the refused task's error, not the whole batch's."""
    futures: dict[Future[Any], int] = {}
    refused: list[tuple[int, BaseException]] = []
    for i, task in enumerate(tasks):
        try:
            futures[pool.submit(_call, fn, task)] = i
        except BrokenExecutor as exc:
            refused.append((i, exc))
    return futures, refused


def _interrupt_workers(pool: ProcessPoolExecutor) -> None:
    """Ctrl-C to every worker (a terminal sends it to them too; `kill -INT` on the driver does
    not): their running tasks stop and return, queued ones are cancelled by the shutdown. Workers
    only return strings (the driver writes every file), so nothing is lost but unfinished solves.
    The pool's process table is private; without it the shutdown waits for the running tasks."""
    for pid in list(getattr(pool, "_processes", {}) or {}):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGINT)


def ray_available() -> str | None:
    """None when Ray can be imported, else the reason it cannot."""
    try:
        import ray  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install
        return f"Ray is not importable ({type(exc).__name__}: {exc}); pip install 'paraplan[ray]'"
    return None


def _run_ray(
    fn: Callable[[Any], Any], tasks: Sequence[Any], spec: ExecutorSpec
) -> Generator[tuple[int, Any], None, None]:
    reason = ray_available()
    if reason:
        raise InputError("--executor ray", "", reason)
    import ray

    started_here = False
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": "warning",
        }
        if spec.address:
            options["address"] = spec.address
        elif spec.jobs:
            options["num_cpus"] = spec.jobs
        try:
            ray.init(**options)
        except Exception as exc:  # noqa: BLE001 - connection refused, bad address
            raise InputError("--address", "", f"cannot start or reach Ray: {exc}") from None
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        limit = spec.jobs or len(tasks)
        index: dict[Any, int] = {}
        queue = list(enumerate(tasks))
        queue.reverse()
        while queue or index:
            while queue and len(index) < limit:
                i, task = queue.pop()
                index[remote.remote(task)] = i
            done, _ = ray.wait(list(index), num_returns=1)
            for ref in done:
                i = index.pop(ref)
                try:
                    yield i, ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - task or worker failure
                    yield i, exc
    finally:
        if started_here:
            ray.shutdown()
