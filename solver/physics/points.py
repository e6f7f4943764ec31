"""The operating point of a replica under a load: static batching or continuous batching."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solver.physics.continuous import ContinuousLoad, DecodeLoad, continuous_point, decode_point
from solver.physics.serving import ServingPoint, StaticLoad, static_point

if TYPE_CHECKING:
    from solver.inputs.condition import Condition

Load = StaticLoad | ContinuousLoad | DecodeLoad


def serving_point(load: Load, pp: Any, condition: Condition) -> ServingPoint:
    """The operating point of a replica with `pp` stages under `load` (arrays on a grid)."""
    w = condition.workload
    if isinstance(load, DecodeLoad):
        return decode_point(load, pp, w.input_tokens, w.output_tokens, condition.slo.percentile)
    if isinstance(load, ContinuousLoad):
        return continuous_point(load, pp, w.input_tokens, w.output_tokens, condition.slo.percentile)
    return static_point(load.batch, pp, w.input_tokens, w.output_tokens)
