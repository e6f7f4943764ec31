"""What every pool script of a disaggregated plan says of its engine's batching (render/
launch_facts.batching_loss): both pools batch continuously; a decode pool (serving mode
decode-only) has its max-num-seqs as its concurrency, never a static batch's cap."""

from __future__ import annotations

import pytest

from solver.inputs.condition import build_condition, load_condition
from solver.render.export_pools import render_pools_launch
from solver.review.check import check_given, load_plan_file
from solver.review.check_pools import PoolsShortPlan
from tests.render.test_export_flags import PUBLISHED

ENGINES = ("vllm", "sglang", "trtllm")


def _deepseek():
    condition = load_condition(PUBLISHED / "deepseek-v3-disagg-h800x176.yaml")
    return condition, check_given(condition, load_plan_file(
        PUBLISHED / "deepseek-v3-disagg-h800x176.plan.yaml")).plan


def _dense():
    """Llama-3.1-8B on 2 x 2 L40S: two TP1 prefill instances, one TP2 decode instance."""
    condition = build_condition({
        "model": "llama-3.1-8b", "hardware": {"gpu": "l40s", "num_nodes": 2, "gpus_per_node": 2},
        "workload": {"input_tokens": 1024, "output_tokens": 128},
        "serving": {"mode": "disaggregated"}}, "c.yaml", "c")
    short = PoolsShortPlan.model_validate({"prefill": {"tp": 1, "instances": 2, "batch_size": 16},
                                           "decode": {"tp": 2, "instances": 1, "batch_size": 384}})
    return condition, check_given(condition, short).plan


PLANS = {"deepseek-v3 published, 176 x H800": _deepseek, "llama-3.1-8b, 4 x L40S": _dense}


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
