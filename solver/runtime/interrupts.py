"""Ctrl-C (SIGINT) handling: it stays Python's KeyboardInterrupt everywhere, stops a running CP-SAT
search at once, and waits while paraplan renames its files into place.

- CP-SAT would install its own SIGINT handler for every solve and leave the default one behind
  (after the first solve, Ctrl-C killed the process without a word). Every CpSolver is therefore
  made with `catch_sigint_signal = False` and registered with `stop_on_sigint`: a watcher thread,
  woken through Python's signal wake-up fd, calls `stop_search()` on the running solvers, so the
  solve returns within milliseconds and Python raises KeyboardInterrupt right after it.
- `keeps_python_sigint` re-installs Python's handler after a call (the planner's `solve`), in case
  a native library replaced it anyway.
- `deferred_sigint` holds a Ctrl-C back while the output files are renamed into place (a few
  renames) or a worker pool starts: the KeyboardInterrupt is raised when the block ends.
- `sigint_ignored` starts helper processes (the pool's forkserver) that ignore Ctrl-C.
- `checkpoint(name)` is a test hook (PARAPLAN_TEST_PAUSE, below), a no-op otherwise.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# PARAPLAN_TEST_PAUSE=NAME or NAME:N makes the N-th pass (default the first) through
# checkpoint(NAME) print "paraplan-test: paused at NAME" on stderr and sleep up to
# TEST_PAUSE_S seconds, so tests send signals at a known moment instead of after a guessed delay.
# Points: start-up (before the imports), solved (a plan found, nothing rendered yet), relaxing
# (before each relaxation solve), writing (between the renames of a plan folder), plan-folder
# (batch/sweep: after a plan folder is written).
TEST_PAUSE_ENV = "PARAPLAN_TEST_PAUSE"
TEST_PAUSE_S = 60.0

_solvers: weakref.WeakSet[Any] = weakref.WeakSet()
_watcher_pid: int | None = None  # the process whose watcher thread runs (not inherited by forks)
_deferral: dict[str, bool] = {"active": False, "pending": False}
_passes: Counter[str] = Counter()


def stop_on_sigint(solver: Any) -> None:
    """Stop this CP-SAT solver's search when Ctrl-C arrives (its catch_sigint_signal is False)."""
    _solvers.add(solver)
    _start_watcher()


def _start_watcher() -> None:
    """A daemon thread reading the signal wake-up fd; only from the main thread, and only when no
    one else (an event loop) uses that fd. Without it a Ctrl-C still works, after the solve."""
    global _watcher_pid
    if _watcher_pid == os.getpid() or threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        os.close(read_fd)
        os.close(write_fd)
        return
    if previous != -1:  # someone else's wake-up fd: give it back
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
        return
    _watcher_pid = os.getpid()
    threading.Thread(target=_watch, args=(read_fd,), name="paraplan-sigint", daemon=True).start()


def _watch(read_fd: int) -> None:
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return
        if int(signal.SIGINT) in data:
            for solver in list(_solvers):
                solver.stop_search()


def keeps_python_sigint(func: F) -> F:
    """Re-install Python's SIGINT handler after `func`, whatever a native library did to it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            _reinstall_sigint()

    return wrapper  # type: ignore[return-value]


def _reinstall_sigint() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is not None:  # None: installed from outside Python; leave it
        signal.signal(signal.SIGINT, handler)


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold a Ctrl-C back for the duration of the block, then raise it. Nested blocks and other
    threads (where Python runs no signal handler) pass through."""
    if _deferral["active"] or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def hold(signum: int, frame: Any) -> None:
        _deferral["pending"] = True

    signal.signal(signal.SIGINT, hold)
    _deferral.update(active=True, pending=False)
    try:
        yield
    finally:
        pending = _deferral["pending"]
        _deferral.update(active=False, pending=False)
        try:  # a Ctrl-C not yet seen by `hold` surfaces here, through the restored handler
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        except KeyboardInterrupt:
            pending = True
        if pending:
            raise KeyboardInterrupt


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored for the block (main thread only). A program started inside inherits the
    ignored signal and Python then leaves it ignored: helper processes (a worker pool's forkserver
    and resource tracker) never die of a terminal's Ctrl-C, even while their interpreter is still
    starting (where Python could only stop with a "Fatal Python error"). Keep the block to a
    fork and exec: a Ctrl-C for this process during it is lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def checkpoint(name: str) -> None:
    """The test hook described at TEST_PAUSE_ENV. A pause inside `deferred_sigint` ends early when
    a Ctrl-C is held back, so the run goes on to finish its files and then stops."""
    wanted = os.environ.get(TEST_PAUSE_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if str(_passes[name]) != (nth or "1"):
        return
    sys.stderr.write(f"paraplan-test: paused at {name}\n")
    sys.stderr.flush()
    deadline = time.monotonic() + TEST_PAUSE_S
    while time.monotonic() < deadline and not _deferral["pending"]:
        time.sleep(0.02)
