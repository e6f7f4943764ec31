"""paraplan: choose how to parallelize an LLM for inference, and prove the choice optimal.

Data flow (one direction, see docs/design.md):
condition -> architecture -> cost -> shapes -> formulation -> decode -> plan -> verify -> report.
"""

__version__ = "0.1.0"
