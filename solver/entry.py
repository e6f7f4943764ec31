"""Console entry point: an interrupt during start-up (imports) exits 130 quietly, like one later;
and once the command has ended, the process ends without tearing down its modules."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading

# Start-up allocates some 10^6 objects (modules, classes, pydantic schemas), none of them garbage:
# with the default threshold (700) the cyclic collector runs about 150 times and a full collection
# once, some 25 ms of a 450 ms dense solve (counted with gc.callbacks). A higher first threshold
# keeps collecting, rarely; reference counting frees everything else as before.
GC_THRESHOLDS = (10_000, 10, 10)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    code: int | str | None = 0
    try:
        from solver.runtime.interrupts import checkpoint  # standard library only: imports in a moment

        checkpoint("start-up")  # test hook (solver/runtime/interrupts.py); nothing without it
        from solver.cli import app

        app()
    except KeyboardInterrupt as exc:
        sys.stderr.write(f"interrupted: {getattr(exc, 'account', 'nothing was written')}\n")
        code = 130
    except SystemExit as exc:  # click ends every command with one
        code = exc.code
    finally:  # the command has ended and said so: a Ctrl-C while Python shuts down changes nothing
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    end(code)


def end(code: int | str | None) -> None:
    """Exit with `code` as sys.exit would, but without the interpreter's teardown of every module
    (OR-Tools, numpy, pydantic: about 45 ms of a 400 ms dense solve, measured from the last line
    of main to the parent's wait): the atexit handlers run first (logging, multiprocessing's
    children, weakref finalizers, any a caller registered) and stdout/stderr are flushed. Every file
    paraplan writes is closed and renamed into place before this point (render/writer.py). When
    another non-daemon thread is still running, the ordinary exit waits for it instead."""
    if any(t is not threading.current_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    if not isinstance(code, int):
        if code is not None and sys.stderr is not None:
            sys.stderr.write(f"{code}\n")
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):  # None when the descriptor was closed (`>&-`)
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a closed pipe (`| head`)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
