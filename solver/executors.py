"""Where batch and sweep tasks run: local processes (default) or a Ray cluster.

`run_tasks(fn, tasks, spec)` yields `(index, result)` as tasks finish, in completion order. A task
that could not run (its worker process died, a Ray task failed) yields `(index, exception)`
instead, so the caller turns it into an error row and the other tasks go on. `fn` must be a
module-level function and the tasks plain picklable data: both travel to other processes.

Local processes use the `forkserver` start method where it exists: a clean server process imports
paraplan once (`solver.batch`, preloaded) and forks every worker from it, so workers start in
milliseconds without inheriting the parent's threads (a progress bar, Ray's client, pytest's), which
plain `fork` would copy in an undefined state.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError
from solver.interrupts import deferred_sigint, sigint_ignored

EXECUTORS = ("local", "ray")
PRELOAD = ["solver.batch"]


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


def _run_inline(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
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
        with sigint_ignored():  # the server (and every worker it forks) ignores Ctrl-C from birth
            forkserver.ensure_running()
        return ctx
    return multiprocessing.get_context("spawn")


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the driver, which stops them (a worker interrupted while idle would
    print a traceback). Forked from a forkserver started with sigint_ignored they already do; the
    spawn start method (no forkserver) needs this."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_processes(
    fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int
) -> Iterator[tuple[int, Any]]:
    finished = False
    pool: ProcessPoolExecutor | None = None
    try:
        # Ctrl-C waits until the workers are up (about the forkserver's imports): interrupted while
        # a worker is being forked, the driver would lose track of it and the orphan would print a
        # traceback.
        with deferred_sigint():
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(),
                                       initializer=_ignore_sigint)
            futures: dict[Future[Any], int] = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
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
        if pool is not None and not finished:  # Ctrl-C or an error in the driver: stop the solves
            _terminate_workers(pool)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Workers only return strings (the driver writes every file), so stopping them loses nothing
    but their unfinished solves. Python 3.14 has pool.terminate_workers(); before, the pool's
    process table is the only handle on them."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            process.terminate()
        except (OSError, AttributeError):
            continue


def ray_available() -> str | None:
    """None when Ray can be imported, else the reason it cannot."""
    try:
        import ray  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install
        return f"Ray is not importable ({type(exc).__name__}: {exc}); pip install 'paraplan[ray]'"
    return None


def _run_ray(
    fn: Callable[[Any], Any], tasks: Sequence[Any], spec: ExecutorSpec
) -> Iterator[tuple[int, Any]]:
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
