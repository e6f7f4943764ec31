#!/usr/bin/env python3
"""Fit the cost model's efficiency parameters on the published measurements (issue 6).

Usage: python scripts/calibrate.py [MEASURED_CSV] [--write-cards] [--verbose]

The same library as `paraplan calibrate` (solver/calibration/): prints the fitted parameters and the
held-out error; --write-cards writes them into conditions/hardware/*.yaml. Then run
scripts/accuracy.py to regenerate docs/accuracy.md from the cards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solver.calibration.calibrate import calibrate, summary_lines  # noqa: E402
from solver.calibration.card_writer import write_cards  # noqa: E402
from solver.calibration.measurements import DATA_SOURCE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measured", nargs="?", type=Path, default=None,
                        help=f"measurements CSV (default: {DATA_SOURCE})")
    parser.add_argument("--write-cards", action="store_true",
                        help="write the fitted values into conditions/hardware/*.yaml")
    parser.add_argument("--verbose", action="store_true", help="print the fit's progress")
    args = parser.parse_args(argv)
    result = calibrate(args.measured, progress=print if args.verbose else None)
    print("\n".join(summary_lines(result)))
    if args.write_cards:
        for path in write_cards(result):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
