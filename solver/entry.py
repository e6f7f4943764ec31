"""Console entry point: an interrupt during start-up (imports) exits 130 quietly, like one later."""

from __future__ import annotations

import signal
import sys


def main() -> None:
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
