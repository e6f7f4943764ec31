"""Console entry point: an interrupt during start-up (imports) exits 130 quietly, like one later."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from solver.cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written\n")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
