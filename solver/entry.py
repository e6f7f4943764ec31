"""Console entry point: an interrupt during start-up (imports) exits 130 quietly, like one later."""

from __future__ import annotations

import gc
import signal
import sys

# Start-up allocates some 10^6 objects (modules, classes, pydantic schemas), none of them garbage:
# with the default threshold (700) the cyclic collector runs about 150 times and a full collection
# once, some 25 ms of a 450 ms dense solve (counted with gc.callbacks). A higher first threshold
# keeps collecting, rarely; reference counting frees everything else as before.
GC_THRESHOLDS = (10_000, 10, 10)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        from solver.runtime.interrupts import checkpoint  # standard library only: imports in a moment

        checkpoint("start-up")  # test hook (solver/runtime/interrupts.py); nothing without it
        from solver.cli import app

        app()
    except KeyboardInterrupt as exc:
        sys.stderr.write(f"interrupted: {getattr(exc, 'account', 'nothing was written')}\n")
        sys.exit(130)
    finally:  # the command has ended and said so: a Ctrl-C while Python shuts down changes nothing
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":  # pragma: no cover
    main()
