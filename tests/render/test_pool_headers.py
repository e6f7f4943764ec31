"""What every pool script of a disaggregated plan says of its engine's batching (render/
launch_facts.batching_loss): both pools batch continuously; a decode pool (serving mode
decode-only) has its max-num-seqs as its concurrency, never a static batch's cap."""

from __future__ import annotations

import pytest

from solver.render.export_pools import render_pools_launch
from tests.render.pool_plans import PLANS

ENGINES = ("vllm", "sglang", "trtllm")




@pytest.mark.parametrize("case", list(PLANS))
def test_a_decode_pool_is_continuous_batching_with_max_num_seqs_as_its_concurrency(case) -> None:
    """The decode pool's plan serves decode-only steps under continuous batching: its scripts say
    so, with its max-num-seqs as the concurrency and its operating load, never a static batch; the
    prefill pool's scripts state their operating load."""
    condition, plan = PLANS[case]()
    files = render_pools_launch(condition, plan)
    decode = plan.pools.decode.plan.serving
    for engine in ENGINES:
        text = files[f"launch/decode-{engine}.sh"]
        assert "static batch" not in text, engine
        assert (f"decode pool: continuous batching of decode steps; the plan's max-num-seqs, "
                f"{decode.max_num_seqs} sequences per instance, is its concurrency") in text, engine
        assert f"hold at {decode.utilization:.0%} of the {decode.max_num_seqs} slots" in text, engine
        prefill = files[f"launch/prefill-{engine}.sh"]
        assert "static batch" not in prefill and "the operating load: the plan's numbers hold" in prefill
