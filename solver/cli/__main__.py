"""`python -m solver.cli`."""

from solver.cli import main

main()
